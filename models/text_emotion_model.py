"""The text emotion model: a MiniLM sentence encoder with a line head, and a scene head over lines.

Two parts, exported as two ONNX graphs and run by :mod:`engine.story.text_model`:

* :class:`LineEncoder` — the all-MiniLM-L6-v2 encoder (a 6-layer BERT, 384 wide), fine-tuned, mean
  pooled; its line head gives the line's own valence and arousal in [-1, 1] and a log-variance for
  each (the line's confidence). Each line is encoded once, live or offline.
* :class:`SceneHead` — reads the embeddings and line estimates of the last ``context_lines`` lines
  (Bardo used the last 10–20) and says whether the scene is positive in valence and in arousal:
  a line's emotion is the scene's more than its own words. Live lines have only their past.
* :class:`ReadAheadSceneHead` — for a whole text (a file to score), the same question asked of
  the ``read_ahead_lines`` before *and* after, as a composer reads the whole script before
  scoring it.

:class:`SceneEnsemble` averages the logits of a few heads of one kind trained from different seeds
(one graph): with six episodes to learn from, one head's accuracy depends on its seed by several
points.

The encoder's layer names follow the BERT checkpoint layout, so the released weights load as they
are (:func:`load_minilm`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class TextEmotionConfig:
    """The architecture; saved inside every checkpoint (export and resume read it from there)."""

    vocab_size: int = 30522
    hidden: int = 384
    layers: int = 6
    heads: int = 12
    intermediate: int = 1536
    max_positions: int = 512
    max_tokens: int = 64  # a line is cut to this many tokens (subtitle lines are ~10)
    context_lines: int = 16  # the scene head reads this many lines, the current one last
    read_ahead_lines: int = 32  # the read-ahead head reads this many before and after, each with the current
    scene_width: int = 64
    dropout: float = 0.1

    def to_dict(self) -> dict[str, int | float]:
        return asdict(self)


class _Attention(nn.Module):
    def __init__(self, cfg: TextEmotionConfig) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.query = nn.Linear(cfg.hidden, cfg.hidden)
        self.key = nn.Linear(cfg.hidden, cfg.hidden)
        self.value = nn.Linear(cfg.hidden, cfg.hidden)
        self.out = nn.Linear(cfg.hidden, cfg.hidden)
        self.norm = nn.LayerNorm(cfg.hidden, eps=1e-12)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape  # (B, T, D)
        h = self.heads

        def split(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, h, d // h).transpose(1, 2)  # (B, H, T, D/H)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // h) + bias  # (B, H, T, T)
        y = self.dropout(scores.softmax(-1)) @ v  # (B, H, T, D/H)
        y = y.transpose(1, 2).reshape(b, t, d)
        return self.norm(x + self.dropout(self.out(y)))


class _Layer(nn.Module):
    def __init__(self, cfg: TextEmotionConfig) -> None:
        super().__init__()
        self.attention = _Attention(cfg)
        self.up = nn.Linear(cfg.hidden, cfg.intermediate)
        self.down = nn.Linear(cfg.intermediate, cfg.hidden)
        self.norm = nn.LayerNorm(cfg.hidden, eps=1e-12)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = self.attention(x, bias)
        return self.norm(x + self.dropout(self.down(F.gelu(self.up(x)))))


class LineEncoder(nn.Module):
    """Token ids of one line → (embedding, valence/arousal, log-variance)."""

    def __init__(self, cfg: TextEmotionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.word = nn.Embedding(cfg.vocab_size, cfg.hidden)
        self.position = nn.Embedding(cfg.max_positions, cfg.hidden)
        self.token_type = nn.Embedding(2, cfg.hidden)
        self.norm = nn.LayerNorm(cfg.hidden, eps=1e-12)
        self.dropout = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(_Layer(cfg) for _ in range(cfg.layers))
        self.head = nn.Linear(cfg.hidden, 4)  # valence, arousal, log-var valence, log-var arousal

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Args: ``input_ids`` (B, T) int64, ``attention_mask`` (B, T) int64 (1 = a token).

        Returns: embedding (B, D) unit length, valence/arousal (B, 2) in [-1, 1], log-variance (B, 2).
        """
        t = input_ids.shape[1]
        positions = torch.arange(t, device=input_ids.device).unsqueeze(0)  # (1, T)
        x = self.word(input_ids) + self.position(positions) + self.token_type(torch.zeros_like(input_ids))
        x = self.dropout(self.norm(x))  # (B, T, D)
        mask = attention_mask.to(x.dtype)  # (B, T)
        bias = ((1.0 - mask) * -1e4)[:, None, None, :]  # (B, 1, 1, T)
        for layer in self.layers:
            x = layer(x, bias)
        pooled = (x * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1.0)  # (B, D)
        out = self.head(self.dropout(pooled))  # (B, 4)
        embedding = F.normalize(pooled, dim=-1)
        return embedding, torch.tanh(out[:, :2]), out[:, 2:].clamp(-6.0, 4.0)


class _LineReader(nn.Module):
    """A window of lines (B, K, D) and their estimates (B, K, 2) → the GRU's last state (B, W)."""

    def __init__(self, cfg: TextEmotionConfig) -> None:
        super().__init__()
        self.project = nn.Linear(cfg.hidden + 2, cfg.scene_width)
        self.recur = nn.GRU(cfg.scene_width, cfg.scene_width, batch_first=True)
        self.dropout = nn.Dropout(0.3)

    def forward(self, embeddings: torch.Tensor, line_va: torch.Tensor) -> torch.Tensor:
        x = torch.tanh(self.project(self.dropout(torch.cat([embeddings, line_va], -1))))  # (B, K, W)
        _, h = self.recur(x)  # h: (1, B, W)
        return self.dropout(h[0])  # (B, W)


class SceneHead(nn.Module):
    """The last ``context_lines`` lines (oldest first, the current line last) → scene logits."""

    def __init__(self, cfg: TextEmotionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.past = _LineReader(cfg)
        self.out = nn.Linear(cfg.scene_width, 2)

    def forward(self, embeddings: torch.Tensor, line_va: torch.Tensor) -> torch.Tensor:
        """Args: ``embeddings`` (B, K, D), ``line_va`` (B, K, 2); lines before a story's start are zeros.

        Returns: (B, 2) logits of a positive scene valence and a positive scene arousal.
        """
        return self.out(self.past(embeddings, line_va))  # (B, 2)


class ReadAheadSceneHead(nn.Module):
    """The last ``read_ahead_lines`` lines and the next ones → scene logits (a whole text only)."""

    def __init__(self, cfg: TextEmotionConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.past = _LineReader(cfg)
        self.ahead = _LineReader(cfg)
        self.out = nn.Linear(2 * cfg.scene_width, 2)

    def forward(
        self,
        embeddings: torch.Tensor,
        line_va: torch.Tensor,
        ahead_embeddings: torch.Tensor,
        ahead_line_va: torch.Tensor,
    ) -> torch.Tensor:
        """Args: ``embeddings`` (B, R, D), ``line_va`` (B, R, 2): the current line and the ones
        before it, as :class:`SceneHead`'s; ``ahead_embeddings`` (B, R, D), ``ahead_line_va``
        (B, R, 2): the current line and the ones after it, the farthest first and the current line
        last (zeros past the text's end), so the ahead reader reads toward the current line as
        the past reader does. R is ``read_ahead_lines``.

        Returns: (B, 2) logits of a positive scene valence and a positive scene arousal.
        """
        past = self.past(embeddings, line_va)  # (B, W)
        ahead = self.ahead(ahead_embeddings, ahead_line_va)  # (B, W)
        return self.out(torch.cat([past, ahead], -1))  # (B, 2)


class SceneEnsemble(nn.Module):
    """Scene heads of one kind (trained from different seeds); their mean logits."""

    def __init__(self, heads: Sequence[SceneHead | ReadAheadSceneHead]) -> None:
        super().__init__()
        if not heads:
            raise ValueError("a scene ensemble needs at least one head")
        if len({type(h) for h in heads}) != 1:
            raise ValueError("a scene ensemble's heads must be of one kind")
        self.heads = nn.ModuleList(heads)

    def forward(self, *windows: torch.Tensor) -> torch.Tensor:
        """The heads' inputs (:meth:`SceneHead.forward` or :meth:`ReadAheadSceneHead.forward`)
        → (B, 2) logits, the heads' mean."""
        return torch.stack([head(*windows) for head in self.heads]).mean(0)  # (B, 2)


_BERT_NAMES = {
    "embeddings.word_embeddings.weight": "word.weight",
    "embeddings.position_embeddings.weight": "position.weight",
    "embeddings.token_type_embeddings.weight": "token_type.weight",
    "embeddings.LayerNorm.weight": "norm.weight",
    "embeddings.LayerNorm.bias": "norm.bias",
}
_BERT_LAYER_NAMES = {
    "attention.self.query": "attention.query",
    "attention.self.key": "attention.key",
    "attention.self.value": "attention.value",
    "attention.output.dense": "attention.out",
    "attention.output.LayerNorm": "attention.norm",
    "intermediate.dense": "up",
    "output.dense": "down",
    "output.LayerNorm": "norm",
}


def load_minilm(encoder: LineEncoder, safetensors_path: Path) -> None:
    """Load released BERT-layout weights (all-MiniLM-L6-v2's ``model.safetensors``) into ``encoder``.

    Raises:
        ValueError: a weight of the encoder is missing from the file, or has another shape.
    """
    from safetensors.torch import load_file

    released = load_file(str(safetensors_path))
    renamed: dict[str, torch.Tensor] = {}
    for name, tensor in released.items():
        if name in _BERT_NAMES:
            renamed[_BERT_NAMES[name]] = tensor
        elif name.startswith("encoder.layer."):
            _, _, index, rest = name.split(".", 3)
            part, _, kind = rest.rpartition(".")
            if part in _BERT_LAYER_NAMES:
                renamed[f"layers.{index}.{_BERT_LAYER_NAMES[part]}.{kind}"] = tensor
    own = encoder.state_dict()
    for name, tensor in own.items():
        if name.startswith("head."):
            continue
        if name not in renamed:
            raise ValueError(f"{safetensors_path}: no weight for {name}")
        if renamed[name].shape != tensor.shape:
            raise ValueError(
                f"{safetensors_path}: {name} is {tuple(renamed[name].shape)}, not {tuple(tensor.shape)}"
            )
    encoder.load_state_dict({**own, **renamed})
