"""A story's lines → each line's emotion and the scene arc: the Python API of ``analyze-text``.

from engine.story import analyse_file
analysis = analyse_file("examples/stories/the_lighthouse.srt")
for line in analysis.lines: print(line.start_s, line.valence, line.scene_valence, line.text)
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from engine.story.arc import Arc, ArcConfig, Scene, build_arc
from engine.story.lines import DEFAULT_WPM, Line, read_lines
from engine.story.text_model import TextEmotionModel


@dataclass(frozen=True)
class AnalysedLine:
    """One line with its own emotion and its scene's (see :class:`engine.story.text_model.LineEmotion`)."""

    start_s: float
    end_s: float
    text: str
    valence: float
    arousal: float
    confidence: float
    scene_valence: float
    scene_arousal: float
    scene: int  # index into StoryAnalysis.scenes

    def to_json(self) -> dict[str, Any]:
        return {
            "start_s": round(self.start_s, 3),
            "end_s": round(self.end_s, 3),
            "text": self.text,
            "valence": round(self.valence, 3),
            "arousal": round(self.arousal, 3),
            "confidence": round(self.confidence, 3),
            "scene_valence": round(self.scene_valence, 3),
            "scene_arousal": round(self.scene_arousal, 3),
            "scene": self.scene,
        }


def scene_json(scene: Scene) -> dict[str, Any]:
    return {
        "start_s": round(scene.start_s, 3),
        "end_s": round(scene.end_s, 3),
        "quadrant": scene.quadrant,
        "valence": round(scene.valence, 3),
        "arousal": round(scene.arousal, 3),
        "first_line": scene.first_line,
        "last_line": scene.last_line,
    }


@dataclass(frozen=True)
class StoryAnalysis:
    lines: list[AnalysedLine]
    scenes: list[Scene]
    source: str

    @property
    def end_s(self) -> float:
        return max((line.end_s for line in self.lines), default=0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "lines": [line.to_json() for line in self.lines],
            "scenes": [scene_json(s) for s in self.scenes],
        }


#: the read-ahead head is used where a scene is expected to hold at least this many of its windows
READ_AHEAD_WINDOWS_PER_SCENE: Final = 2.0


def reads_ahead(lines: int, length_s: float, scene_s: float, read_ahead_lines: int) -> bool:
    """Whether a text is read with the lines ahead: where its scenes are long against the
    read-ahead window, as in the transcripts it was trained on (a 35-minute Call of the Wild
    episode: ~90 lines in a 240 s scene against a 32-line window), so each window lies mostly in
    one scene. A short story whose scenes change every few lines (the example story: ~8 lines a
    scene) is read as live lines are: there the lines ahead are the next scenes, and the head,
    trained on long scenes, reads the story's ending into its middle.

    Args:
        lines: lines in the text.
        length_s: the text's length, seconds.
        scene_s: the arc's mean scene length, seconds (:class:`ArcConfig`).
        read_ahead_lines: the read-ahead head's window, lines.
    """
    if lines == 0 or not (math.isfinite(length_s) and length_s > 0):
        return False
    return lines * scene_s / length_s >= READ_AHEAD_WINDOWS_PER_SCENE * read_ahead_lines


def analyse_lines(
    lines: Sequence[Line],
    model: TextEmotionModel | None = None,
    arc_config: ArcConfig | None = None,
    *,
    source: str = "<lines>",
) -> StoryAnalysis:
    """Each line's emotion and the arc of scenes. In a long text (:func:`reads_ahead`) a line's
    scene is read from the lines before it and the lines after it (the model's read-ahead head,
    where it has one): the whole text is known, as a composer knows the script.

    Args:
        lines: timed lines in order of start (:func:`engine.story.lines.read_lines`).
        model: the text emotion model (None: the shipped one).
        arc_config: how readily the arc changes (None: :meth:`ArcConfig.for_length` of the text).
        source: a name for the lines (a file name), kept in the result.

    Raises:
        ValueError: lines out of order or with non-finite times.
    """
    model = model or TextEmotionModel()
    length_s = max((line.end_s for line in lines), default=0.0)
    if arc_config is None:
        arc_config = ArcConfig.for_length(length_s)
    read_ahead = reads_ahead(len(lines), length_s, arc_config.scene_s, model.read_ahead_lines)
    emotions = model.analyse([line.text for line in lines], read_ahead=read_ahead)
    arc: Arc = build_arc(
        [line.start_s for line in lines],
        [line.end_s for line in lines],
        [e.p_scene_valence for e in emotions],
        [e.p_scene_arousal for e in emotions],
        arc_config,
    )
    index = {id(s): i for i, s in enumerate(arc.scenes)}
    out = [
        AnalysedLine(
            line.start_s,
            line.end_s,
            line.text,
            e.valence,
            e.arousal,
            e.confidence,
            scene.valence,
            scene.arousal,
            index[id(scene)],
        )
        for line, e, scene in zip(lines, emotions, arc.line_scenes, strict=True)
    ]
    return StoryAnalysis(out, arc.scenes, source)


def analyse_file(
    path: str | os.PathLike[str],
    model: TextEmotionModel | None = None,
    arc_config: ArcConfig | None = None,
    *,
    wpm: float = DEFAULT_WPM,
) -> StoryAnalysis:
    """:func:`analyse_lines` of a story file (SRT, WebVTT, CSV or plain text).

    Raises:
        engine.story.lines.StoryFileError: the file cannot be read as a story (one line, with its
            line number).
    """
    return analyse_lines(read_lines(path, wpm=wpm), model, arc_config, source=os.fspath(path))
