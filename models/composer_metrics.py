"""The training record a composer artifact's manifest carries: stages, validation loss, sweep.

Used by ``models/make_composer.sh`` (the export step's ``--metrics``)::

    python -m models.composer_metrics runs/sweep/h512 runs/h512-ft --sweep runs/sweep/sweep.json

Each run folder is one training stage (``models.train``: ``log.jsonl`` and ``best.pt``), in order;
a later stage starts from the earlier one's ``best.pt`` (``--init``). The shipped weights are the
last stage's ``best.pt``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch


def stage_record(run: Path) -> dict[str, Any]:
    """Step, validation loss and tokens seen at a run's best checkpoint.

    Raises:
        FileNotFoundError: the run has no ``best.pt`` or ``log.jsonl``.
        ValueError: the log has no validation row at the best step.
    """
    best = torch.load(run / "best.pt", map_location="cpu", weights_only=True)
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    at_best = [r for r in rows if "val_loss" in r and r["step"] == best["step"]]
    if not at_best:
        raise ValueError(f"{run}/log.jsonl has no validation row at best step {best['step']}")
    args = best.get("args", {})
    return {
        "run": str(run),
        "init": args.get("init"),
        "step": int(best["step"]),
        "val_loss": float(best["val_loss"]),
        "tokens_seen": int(at_best[-1]["tokens_seen"]),
        "peak_lr": args.get("lr"),
    }


def composer_metrics(runs: list[Path], sweep: Path | None = None) -> dict[str, Any]:
    """The manifest metrics of the weights in ``runs[-1]/best.pt`` (see the module docstring).

    Raises:
        ValueError: ``runs`` is empty.
    """
    if not runs:
        raise ValueError("give at least one run folder")
    stages = [stage_record(run) for run in runs]
    metrics: dict[str, Any] = {
        "val_loss_per_token": stages[-1]["val_loss"],
        "val_step": stages[-1]["step"],
        "train_tokens_seen": sum(s["tokens_seen"] for s in stages),
        "stages": stages,
    }
    if sweep is not None:
        metrics["size_sweep"] = json.loads(sweep.read_text())
    return metrics


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m models.composer_metrics", description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path, help="training stages, in order")
    p.add_argument("--sweep", type=Path, default=None, help="the size sweep's sweep.json")
    args = p.parse_args(argv)
    print(json.dumps(composer_metrics(args.runs, args.sweep)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
