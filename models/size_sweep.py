"""Choose the composer's size by evidence: train each size on the same token budget, compare.

    python -m models.size_sweep --sizes 256 384 512 --stop-at 600 --out runs/sweep

Each size trains in ``OUT/h<size>`` with the same schedule, seed and data (resumable like any
run); the table gives parameters and validation loss per token (nats) at the stop step. The
chosen size's run continues as the shipped model's run (re-run ``models.train`` on its folder
without ``--stop-at``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from models import train


def summarize(out: Path, sizes: list[int]) -> list[dict[str, float]]:
    rows = []
    for size in sizes:
        log = out / f"h{size}" / "log.jsonl"
        if not log.exists():
            continue
        evals = [json.loads(line) for line in log.read_text().splitlines() if '"val_loss"' in line]
        if evals:
            last = evals[-1]
            rows.append(
                {
                    "hidden": size,
                    "params": last["params"],
                    "step": last["step"],
                    "tokens_seen": last["tokens_seen"],
                    "val_loss": round(last["val_loss"], 4),
                }
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.size_sweep")
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 384, 512])
    p.add_argument("--stop-at", type=int, default=600)
    p.add_argument("--out", default="runs/sweep")
    args, rest = p.parse_known_args(argv)
    out = Path(args.out)
    for size in args.sizes:
        train.main(
            ["--out", str(out / f"h{size}"), "--hidden", str(size), "--stop-at", str(args.stop_at), *rest]
        )
    rows = summarize(out, args.sizes)
    print("hidden  params     step  tokens_seen  val_loss/token")
    for r in rows:
        print(
            f"{r['hidden']:>6}  {r['params']:>9,}  {r['step']:>5}  "
            f"{r['tokens_seen']:>11,}  {r['val_loss']:.4f}"
        )
    (out / "sweep.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
