"""The composer: an LSTM language model over engine.tokens.vocab, conditioned on (valence, arousal).

Streaming by construction: ``forward`` takes the recurrent state and returns the new one, so
the runtime feeds one token per step and carries ``(h, c)``. The conditioning enters every
step: it is projected and concatenated to the token embedding, and added to the output.

Shapes: B batch, T time steps, L layers, H hidden, V vocabulary, E embedding, C = 2.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from engine.tokens import vocab as V


@dataclass(frozen=True)
class ComposerConfig:
    """Architecture; saved inside every checkpoint, read back by resume and export."""

    vocab_size: int = V.VOCAB_SIZE
    vocab_version: str = V.VOCAB_VERSION
    embed_dim: int = 128
    cond_dim: int = 2  # (valence, arousal), each in [-1, 1]
    cond_embed_dim: int = 32
    hidden_size: int = 384
    num_layers: int = 2
    dropout: float = 0.1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ComposerConfig:
        return cls(**data)


class ComposerLSTM(nn.Module):
    def __init__(self, config: ComposerConfig) -> None:
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.embed_dim)
        self.cond_in = nn.Linear(config.cond_dim, config.cond_embed_dim)
        self.lstm = nn.LSTM(
            config.embed_dim + config.cond_embed_dim,
            config.hidden_size,
            num_layers=config.num_layers,
            dropout=config.dropout if config.num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.drop = nn.Dropout(config.dropout)
        self.cond_out = nn.Linear(config.cond_dim, config.hidden_size)
        self.head = nn.Linear(config.hidden_size, config.vocab_size)

    def zero_state(self, batch: int, device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (self.config.num_layers, batch, self.config.hidden_size)
        return torch.zeros(shape, device=device), torch.zeros(shape, device=device)

    def forward(
        self,
        tokens: torch.Tensor,  # (B, T) int64
        cond: torch.Tensor,  # (B, T, C) float
        state: tuple[torch.Tensor, torch.Tensor] | None = None,  # (L, B, H) each
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        x = torch.cat([self.embed(tokens), torch.tanh(self.cond_in(cond))], dim=-1)  # (B, T, E + Ce)
        if state is None:
            state = self.zero_state(tokens.shape[0], tokens.device)
        out, (h, c) = self.lstm(x, state)  # (B, T, H)
        out = self.drop(out) + self.cond_out(cond)
        return self.head(out), (h, c)  # (B, T, V)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class ComposerStep(nn.Module):
    """One streaming step, the exported graph: (token, cond, h, c) → (logits, h', c')."""

    def __init__(self, model: ComposerLSTM) -> None:
        super().__init__()
        self.model = model

    def forward(
        self,
        token: torch.Tensor,  # (B,) int64
        cond: torch.Tensor,  # (B, C) float32
        h: torch.Tensor,  # (L, B, H)
        c: torch.Tensor,  # (L, B, H)
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, (h2, c2) = self.model(token[:, None], cond[:, None, :], (h, c))
        return logits[:, 0, :], h2, c2  # (B, V), (L, B, H), (L, B, H)


def save_checkpoint(path: str, model: ComposerLSTM, **extra: Any) -> None:
    """Save weights with the config (and any training state in ``extra``)."""
    raw = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    torch.save({"config": raw.config.to_dict(), "model": raw.state_dict(), **extra}, path)


def load_checkpoint(
    path: str, map_location: str | torch.device = "cpu"
) -> tuple[ComposerLSTM, dict[str, Any]]:
    """Rebuild the model from a checkpoint's own config.

    Raises:
        ValueError: the checkpoint was made for another vocabulary version.
    """
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    config = ComposerConfig.from_dict(ckpt["config"])
    if config.vocab_version != V.VOCAB_VERSION:
        raise ValueError(
            f"{path}: checkpoint vocabulary {config.vocab_version!r} != engine vocabulary {V.VOCAB_VERSION!r}"
        )
    model = ComposerLSTM(config)
    model.load_state_dict(ckpt["model"])
    return model, ckpt
