"""Train the composer LSTM: seeded, resumable, logged, and distributed with torchrun.

Single process::

    python -m models.train --out runs/h384 --hidden 384 --max-steps 6000

Distributed (DDP; gloo on CPU, NCCL on GPUs), same flags::

    torchrun --nproc-per-node 4 -m models.train --out runs/h384 --hidden 384

Re-running the same command resumes from ``OUT/last.pt`` (model, optimizer, step, every RNG).
``OUT/log.jsonl`` gets one JSON line per log/eval; ``OUT/best.pt`` keeps the lowest
validation loss. Training windows start on bar lines, are transposed by a random interval
(-5..+6 semitones, kept inside the piano range) and drawn from the sources with fixed weights.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from engine.tokens import vocab as V
from models.composer_lstm import ComposerConfig, ComposerLSTM, load_checkpoint, save_checkpoint
from models.corpus import Corpus, load_corpus

#: Share of training windows drawn from each source (renormalized over the sources present).
SOURCE_WEIGHTS = {"vgmidi_labelled": 0.3, "vgmidi_unlabelled": 0.1, "emopia": 0.35, "pop909": 0.25}
SPLIT_TRAIN, SPLIT_VAL = 0, 1


@dataclass
class WindowSampler:
    """Draws (tokens, cond) windows of ``length + 1`` tokens starting at bar lines."""

    corpus: Corpus
    split: int
    length: int
    transpose: bool

    def __post_init__(self) -> None:
        c = self.corpus
        is_bar = (c.tokens >= V.BAR_OFFSET) & (c.tokens < V.POS_OFFSET)
        is_bar |= c.tokens == V.BOS
        starts = np.flatnonzero(is_bar)
        piece_of = np.searchsorted(c.offsets, starts, side="right") - 1
        keep = (c.split[piece_of] == self.split) & (starts + self.length + 1 <= c.offsets[piece_of + 1])
        # Pieces shorter than a window still contribute their first token onwards (padded).
        short = (c.split[piece_of] == self.split) & (c.tokens[starts] == V.BOS) & ~keep
        self.starts = starts[keep | short]
        self.piece_of = piece_of[keep | short]
        if self.starts.size == 0:
            raise ValueError(f"no windows of {self.length} tokens in split {self.split}")
        names = [str(n) for n in c.source_names]
        weights = np.zeros(self.starts.size)
        src = c.source[self.piece_of]
        present = [s for s in range(len(names)) if np.any(src == s)]
        total = sum(SOURCE_WEIGHTS.get(names[s], 0.1) for s in present)
        for s in present:
            sel = src == s
            weights[sel] = SOURCE_WEIGHTS.get(names[s], 0.1) / total / sel.sum()
        self.probs = weights / weights.sum()

    def sample(self, rng: np.random.Generator, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """(tokens int64[B, length + 1], cond float32[B, length + 1, 2]); PAD past a piece's end."""
        c = self.corpus
        idx = rng.choice(self.starts.size, size=batch, p=self.probs)
        tokens = np.full((batch, self.length + 1), V.PAD, dtype=np.int64)
        cond = np.zeros((batch, self.length + 1, 2), dtype=np.float32)
        for row, i in enumerate(idx):
            start = self.starts[i]
            end = min(start + self.length + 1, c.offsets[self.piece_of[i] + 1])
            window = c.tokens[start:end].astype(np.int64)
            if self.transpose:
                span = V.pitch_span(window)
                if span is not None:
                    low = max(-5, V.PITCH_MIN - span[0])
                    high = min(6, V.PITCH_MAX - span[1])
                    if low <= high:
                        window = V.transpose_tokens(window, int(rng.integers(low, high + 1)))
            tokens[row, : end - start] = window
            cond[row, : end - start] = c.cond[start:end]
        return tokens, cond


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m models.train", description=__doc__.split("\n")[0])
    p.add_argument("--corpus", default="data/corpus.npz")
    p.add_argument("--out", required=True, help="run folder: checkpoints and log.jsonl")
    p.add_argument(
        "--init", default=None,
        help="start from this checkpoint's weights and architecture (fine-tuning: fresh optimizer and "
        "schedule; --hidden/--layers/--embed/--dropout are then ignored)",
    )  # fmt: skip
    p.add_argument("--hidden", type=int, default=384)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--embed", type=int, default=128)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--seq-len", type=int, default=256)
    p.add_argument("--batch", type=int, default=32, help="windows per step per process")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--max-steps", type=int, default=8000, help="schedule length; training stops here")
    p.add_argument("--stop-at", type=int, default=0, help="stop (resumably) at this step; 0: at --max-steps")
    p.add_argument(
        "--max-minutes", type=float, default=0.0, help="stop (resumably) after this long; 0: no limit"
    )
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--val-windows", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads per process; 0: torch default")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    return p.parse_args(argv)


def lr_at(step: int, args: argparse.Namespace) -> float:
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = min(1.0, (step - args.warmup) / max(1, args.max_steps - args.warmup))
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def loss_fn(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=V.PAD
    )


@torch.no_grad()
def evaluate(model: ComposerLSTM, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> float:
    """Mean cross-entropy per target token (nats) over fixed validation windows."""
    model.eval()
    total, count = 0.0, 0
    for tokens, cond in batches:
        logits, _ = model(tokens[:, :-1], cond[:, :-1])
        targets = tokens[:, 1:]
        n = int((targets != V.PAD).sum())
        total += float(loss_fn(logits, targets)) * n
        count += n
    model.train()
    return total / max(count, 1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if world > 1:
        dist.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        torch.cuda.set_device(device)
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    is_main = rank == 0
    if is_main:
        out.mkdir(parents=True, exist_ok=True)

    corpus = load_corpus(args.corpus)
    train = WindowSampler(corpus, SPLIT_TRAIN, args.seq_len, transpose=True)
    val = WindowSampler(corpus, SPLIT_VAL, args.seq_len, transpose=False)
    val_rng = np.random.default_rng(12345)
    val_batches = []
    for _ in range(math.ceil(args.val_windows / args.batch)):
        t, c = val.sample(val_rng, args.batch)
        val_batches.append((torch.from_numpy(t).to(device), torch.from_numpy(c).to(device)))

    last = out / "last.pt"
    state: dict[str, Any] = {}
    if last.exists():
        model, state = load_checkpoint(str(last), map_location=device)
        if is_main:
            print(f"resuming {last} at step {state['step']}", file=sys.stderr)
    elif args.init is not None:
        torch.manual_seed(args.seed)
        model, _ = load_checkpoint(args.init, map_location=device)
        if is_main:
            print(f"starting from the weights of {args.init}", file=sys.stderr)
    else:
        torch.manual_seed(args.seed)
        config = ComposerConfig(
            embed_dim=args.embed, hidden_size=args.hidden, num_layers=args.layers, dropout=args.dropout
        )
        model = ComposerLSTM(config)
    # a resumed or --init run takes its architecture from the checkpoint: record that, not the
    # CLI's (ignored) architecture arguments
    cfg = model.config
    args.hidden, args.layers = cfg.hidden_size, cfg.num_layers
    args.embed, args.dropout = cfg.embed_dim, cfg.dropout
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    step = 0
    best_val = math.inf
    tokens_seen = 0
    rng = np.random.default_rng([args.seed, rank])
    if state:
        optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
        best_val = state["best_val"]
        tokens_seen = state["tokens_seen"]
        rng.bit_generator.state = state["rng"][rank] if rank < len(state["rng"]) else rng.bit_generator.state
        torch.set_rng_state(state["torch_rng"])
    ddp: nn.Module = DistributedDataParallel(model) if world > 1 else model
    if is_main:
        print(
            f"model {model.num_parameters():,} params {model.config}; train windows {train.starts.size:,}, "
            f"val windows {len(val_batches) * args.batch}; world {world} on {device}",
            file=sys.stderr,
        )
        log = (out / "log.jsonl").open("a")

    def checkpoint() -> None:
        rng_states: list[Any] = [None] * world
        if world > 1:
            dist.all_gather_object(rng_states, rng.bit_generator.state)
        else:
            rng_states = [rng.bit_generator.state]
        if is_main:
            tmp = out / "last.pt.tmp"
            save_checkpoint(
                str(tmp),
                model,
                optimizer=optimizer.state_dict(),
                step=step,
                best_val=best_val,
                tokens_seen=tokens_seen,
                rng=rng_states,
                torch_rng=torch.get_rng_state(),
                args=vars(args),
            )
            os.replace(tmp, last)

    started = time.monotonic()
    window_t0, window_tokens, window_loss, window_n = time.monotonic(), 0, 0.0, 0
    model.train()
    stop = min(args.max_steps, args.stop_at or args.max_steps)
    while step < stop:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, args)
        t_np, c_np = train.sample(rng, args.batch)
        tokens = torch.from_numpy(t_np).to(device)
        cond = torch.from_numpy(c_np).to(device)
        logits, _ = ddp(tokens[:, :-1], cond[:, :-1])
        loss = loss_fn(logits, tokens[:, 1:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step += 1
        n = int((tokens[:, 1:] != V.PAD).sum()) * world
        tokens_seen += n
        window_tokens += n
        window_loss += float(loss.detach())
        window_n += 1
        elapsed_min = (time.monotonic() - started) / 60
        time_up = bool(args.max_minutes) and elapsed_min >= args.max_minutes
        if is_main and (step % args.log_every == 0 or step == stop):
            rate = window_tokens / (time.monotonic() - window_t0)
            eta = (args.max_steps - step) * args.batch * args.seq_len * world / max(rate, 1) / 60
            row = {
                "step": step,
                "train_loss": window_loss / window_n,
                "lr": lr_at(step, args),
                "tokens_seen": tokens_seen,
                "tokens_per_s": round(rate),
                "time_s": round(time.monotonic() - started, 1),
            }
            print(
                f"step {step}/{args.max_steps} loss {row['train_loss']:.4f} {rate:,.0f} tok/s "
                f"lr {row['lr']:.2e} eta {eta:.0f} min",
                file=sys.stderr,
                flush=True,
            )
            log.write(json.dumps(row) + "\n")
            log.flush()
            window_t0, window_tokens, window_loss, window_n = time.monotonic(), 0, 0.0, 0
        if step % args.eval_every == 0 or step == stop or time_up:
            if is_main:
                val_loss = evaluate(model, val_batches)
                improved = val_loss < best_val
                best_val = min(best_val, val_loss)
                print(
                    f"step {step} val_loss {val_loss:.4f} (best {best_val:.4f})", file=sys.stderr, flush=True
                )
                log.write(
                    json.dumps(
                        {
                            "step": step,
                            "val_loss": val_loss,
                            "tokens_seen": tokens_seen,
                            "params": model.num_parameters(),
                        }
                    )
                    + "\n"
                )
                log.flush()
                if improved:
                    save_checkpoint(
                        str(out / "best.pt"), model, step=step, val_loss=val_loss, args=vars(args)
                    )
            checkpoint()
            if world > 1:
                dist.barrier()
        if time_up:
            if is_main:
                print(
                    f"time limit {args.max_minutes} min reached at step {step}; re-run to resume",
                    file=sys.stderr,
                )
            break
    if world > 1:
        dist.barrier()  # every rank is done before gloo's threads go: else one may abort at exit
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
