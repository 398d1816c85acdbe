"""The arc as a picture: each line's valence and arousal, the scenes' arc, the scene changes and a
few line excerpts (matplotlib, drawn off screen)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from engine.story.analysis import StoryAnalysis

EXCERPT_CHARS = 38
MAX_EXCERPTS = 8


def _excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1].rstrip() + "…"


def plot_arc(
    analysis: StoryAnalysis, path: str | os.PathLike[str], *, downbeats_s: Sequence[float] = ()
) -> Path:
    """Draw ``analysis`` to a PNG at ``path``.

    Args:
        downbeats_s: where the music's scene changes landed (drawn as ticks), from a score.

    Raises:
        OSError: the file cannot be written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = analysis.lines
    minutes = [0.5 * (line.start_s + line.end_s) / 60 for line in lines]
    fig, ax = plt.subplots(figsize=(12, 4.8), dpi=100)
    try:
        ax.scatter(
            minutes, [line.valence for line in lines], s=6, color="tab:blue", alpha=0.35, label="line valence"
        )
        ax.scatter(
            minutes, [line.arousal for line in lines], s=6, color="tab:red", alpha=0.35, label="line arousal"
        )
        end_min = analysis.end_s / 60
        for i, scene in enumerate(analysis.scenes):
            x0 = scene.start_s / 60 if i else 0.0
            x1 = analysis.scenes[i + 1].start_s / 60 if i + 1 < len(analysis.scenes) else end_min
            for name, value, color in (
                ("valence", scene.valence, "tab:blue"),
                ("arousal", scene.arousal, "tab:red"),
            ):
                ax.plot([x0, x1], [value] * 2, color=color, lw=3, label=f"scene {name}" if i == 0 else None)
            ax.text(x0, 1.13, scene.quadrant, fontsize=8, va="bottom")
            if i:
                ax.axvline(x0, color="0.3", ls="--", lw=0.8)
        for t in downbeats_s[1:]:
            ax.plot([t / 60], [-1.12], marker="^", color="k", ms=5)
        # excerpts: the first line of each scene, at most MAX_EXCERPTS
        firsts = [s.first_line for s in analysis.scenes][:MAX_EXCERPTS]
        for k, index in enumerate(firsts):
            line = lines[index]
            ax.annotate(
                _excerpt(line.text), (line.start_s / 60, -0.95 + 0.12 * (k % 3)), fontsize=7, color="0.25",
                rotation=0, ha="left",
            )  # fmt: skip
        ax.set_xlim(0, max(end_min, 1e-3))
        ax.set_ylim(-1.2, 1.25)
        ax.set_xlabel("minutes")
        ax.set_ylabel("valence / arousal")
        ax.set_title(f"emotional arc: {os.path.basename(analysis.source)} ({len(analysis.scenes)} scenes)")
        ax.axhline(0, color="0.8", lw=0.8)
        ax.legend(loc="upper right", fontsize=7, ncol=4)
        fig.tight_layout()
        target = Path(path)
        fig.savefig(target, format="png")
    finally:
        plt.close(fig)
    return target
