"""YAML arcs for ``affetto play --arc``: valid files load, bad ones name the file, the line, the cue
and the field, and what is allowed."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

import engine.sessions.scene_file as scene_file
from engine.cli import main
from engine.sessions.ops import Cue
from engine.sessions.scene_file import MAX_SCENE_CHARS, SceneFileError, load_scene
from engine.sessions.yaml_source import MAX_MESSAGE_CHARS

GOOD = """
end_beat: 64
start_state: calm
cues:
  - {beat: 14, op: state, name: danger}
  - {beat: 30, op: emotion, valence: -0.6, arousal: 1, tension: 0.8, sync: bar, seek_per_s: 1.0}
  - {beat: 32, op: stinger, name: hit}
  - {beat: 40, op: tempo, tempo_bpm: 150}
"""


def test_a_good_scene_loads(tmp_path: Path) -> None:
    path = tmp_path / "arc.yaml"
    path.write_text(GOOD)
    scene = load_scene(path)
    assert scene.end_beat == 64.0 and scene.start_state == "calm"
    assert [c.op for c in scene.cues] == ["state", "emotion", "stinger", "tempo"]
    assert scene.cues[1].arousal == 1.0 and scene.cues[1].sync == "bar"


# Each case is an arc with its mistake on the line marked "#<" (the expected line), and a piece of
# the expected message.
BAD = {
    "broken YAML": ("cues: [  #<", "not valid YAML"),
    "not a mapping": ("- 1  #<\n- 2", "expected a mapping with keys cues, end_beat, start_state, got a list"),
    "empty file": ("# nothing  #<", "the arc file is empty (allowed: a mapping with cues,"),
    "unknown key": (
        "cues: []\nextra: 1  #<",
        "extra: unknown key 'extra' (allowed: cues, end_beat, start_state)",
    ),
    "cues not a list": ("cues: {beat: 1}  #<", "cues: expected a list of cues like {beat: 8,"),
    "cue not a mapping": ("cues:\n  - 3  #<", "cues[0]: expected a mapping, like {beat: 8, op: state,"),
    "unknown op": (
        "cues:\n  - {beat: 1, op: explode}  #<",
        "cues[0].op: unknown cue op 'explode' (allowed: ",
    ),
    "state without a name": ("cues:\n  - {beat: 1, op: state}  #<", "cues[0]: a state cue needs a name"),
    "word for a number": (
        "cues:\n  - {beat: 1, op: emotion, valence: high}  #<",
        "cues[0].valence: expected a number, got 'high' (allowed: a number in [-1, 1])",
    ),
    "missing beat": (
        "cues:\n  - {op: state, name: x}  #<",
        "cues[0]: missing required key 'beat' (allowed: beat,",
    ),
    "unknown field": (
        "cues:\n  - {beat: 1, op: state, name: x, colour: red}  #<",
        "cues[0].colour: unknown key 'colour' (allowed: beat, op, name,",
    ),
    "bad sync": (
        "cues:\n  - {beat: 1, op: emotion, sync: later}  #<",
        "cues[0].sync: unknown sync point 'later' (allowed: immediate, beat, bar, phrase)",
    ),
    "negative end": (
        "end_beat: -3  #<\ncues: []",
        "end_beat: -3 is out of range (allowed: a number in (0, 1000000])",
    ),
    "python tag": ("cues:\n  - !!python/object/apply:os.system ['echo hi']  #<", "is not allowed"),
    "duplicate key": ("cues: []\ncues: []  #<", "duplicate key 'cues' (first at line 1)"),
    # the line of the bad field, not that of the file or the cue
    "emotion out of range": (
        "cues:\n  - {beat: 1, op: state, name: a}\n  - beat: 2\n    op: emotion\n    valence: 1.5  #<",
        "cues[1].valence: 1.5 is out of range (allowed: a number in [-1, 1])",
    ),
    "negative beat": (
        "cues:\n  - op: state\n    name: a\n    beat: -1  #<",
        "cues[0].beat: -1 is out of range",
    ),
    "tempo out of range": (
        "cues:\n  - {beat: 4, op: tempo, tempo_bpm: 500}  #<",
        "cues[0].tempo_bpm: 500 is out of range (allowed: a number in [20, 400])",
    ),
    "seek of zero": (
        "cues:\n  - {beat: 4, op: emotion, seek_per_s: 0}  #<",
        "cues[0].seek_per_s: 0 is out of range (allowed: a number in (0, 100] or null)",
    ),
    "NaN beat": ("cues:\n  - {beat: .nan, op: state, name: a}  #<", "nan is not a finite number"),
    "bool for a number": ("cues:\n  - {beat: yes, op: state, name: a}  #<", "expected a number, got True"),
    "empty name": (
        "cues:\n  - {beat: 1, op: stinger, name: ''}  #<",
        "cues[0].name: expected a name, got ''",
    ),
    "long name": (
        f"cues:\n  - {{beat: 1, op: stinger, name: {'x' * 65}}}  #<",
        "cues[0].name: expected a name, got 65 characters (allowed: 1..64 characters)",
    ),
    "start state not a name": ("start_state: [a]  #<", "start_state: expected a state name, got a list"),
    # no anchors or aliases: no shared nodes, no alias bombs
    "anchor": (
        "cues:\n  - &c {beat: 1, op: state, name: danger}  #<\n  - *c",
        "anchors (&name) are not allowed in arc files",
    ),
    "alias": ("x: 1\ncues:\n  - *c  #<", "not valid YAML"),
}


@pytest.mark.parametrize(("text", "message"), BAD.values(), ids=BAD.keys())
def test_bad_scenes_name_the_file_the_line_and_the_problem(tmp_path: Path, text: str, message: str) -> None:
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "#<" in row)
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SceneFileError) as info:
        load_scene(path)
    assert str(info.value).startswith(f"{path}:{line}: "), str(info.value)
    assert message in str(info.value), str(info.value)


def test_an_anchored_cue_is_not_shared_by_an_alias(tmp_path: Path) -> None:
    path = tmp_path / "arc.yaml"
    path.write_text("base: &b {beat: 1, op: state, name: a}\ncues: [*b, *b]\n")
    with pytest.raises(SceneFileError, match=re.escape(f"{path}:1: not valid YAML (anchors (&name)")):
        load_scene(path)


def test_oversized_and_unreadable_files_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("#" * (MAX_SCENE_CHARS + 1))
    with pytest.raises(SceneFileError, match=re.escape(f"{big}: too large")):
        load_scene(big)
    missing = tmp_path / "missing.yaml"
    with pytest.raises(SceneFileError, match=re.escape(f"{missing}: cannot read")):
        load_scene(missing)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"start_state: caf\xe9\n")
    with pytest.raises(SceneFileError, match=re.escape(f"{latin}: not UTF-8")):
        load_scene(latin)


def test_nulls_keep_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "arc.yaml"
    path.write_text(
        "end_beat: null\ncues:\n  - {beat: 0, op: tempo, tempo_bpm: null, sync: null}\n"
        "  - {beat: 2, op: emotion, tension: null, seek_per_s: null}\n"
    )
    scene = load_scene(path)
    assert scene.end_beat is None and scene.start_state == "explore"
    tempo, emotion = scene.cues
    assert tempo.tempo_bpm is None and tempo.sync is None and tempo.beat == 0.0
    assert emotion.tension is None and emotion.seek_per_s is None and emotion.valence == 0.0
    empty = tmp_path / "empty.yaml"
    empty.write_text("cues:\n")
    assert load_scene(empty).cues == ()


def test_every_cue_field_is_read() -> None:
    assert list(scene_file._CUE_FIELDS) == [f.name for f in fields(Cue)]


def test_the_module_docstring_example_is_a_valid_scene(tmp_path: Path) -> None:
    doc = scene_file.__doc__ or ""
    path = tmp_path / "doc.yaml"
    path.write_text(doc.split("Example::\n", 1)[1].split("\nA cue's fields", 1)[0])
    scene = load_scene(path)
    assert scene.end_beat == 64.0 and [c.op for c in scene.cues] == ["state", "emotion", "stinger", "tempo"]


def test_play_refuses_clearly_without_a_terminal_or_with_a_bad_arc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["play"]) == 1  # pytest's stdin is not a terminal
    assert "needs a terminal" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("cues:\n  - {beat: 1, op: explode}")
    assert main(["play", "--arc", str(bad)]) == 1
    assert "cues[0].op: unknown cue op 'explode'" in capsys.readouterr().err
    assert main(["play", "--no-audio"]) == 1
    assert "--no-audio needs --midi-port" in capsys.readouterr().err


def test_the_example_arc_loads_and_plays(tmp_path: Path) -> None:
    from engine.model.composer import Composer
    from engine.sessions.render import render

    scene = load_scene(Path(__file__).resolve().parents[2] / "examples" / "arc.yaml")
    composer = Composer(max_streams=1, intra_op_threads=1)
    assert scene.end_beat is not None
    r = render(composer, scene.cues, scene.end_beat, seed=1, start_state=scene.start_state, audio=False)
    assert [cue.op for cue, _ in r.landed] == [c.op for c in scene.cues]
    assert {info.state for info in r.bars.values()} >= {"stealth", "danger", "combat", "victory"}


def _billion_laughs() -> str:
    """The alias bomb: nine levels of nine aliases each, 9**9 "lol"s from a few hundred bytes."""
    rows = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    rows += [f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]" for a, b in zip("abcdefgh", "bcdefghi", strict=True)]
    return "\n".join(rows) + "\n"


#: file text, what the one line says after "PATH:"
HOSTILE = {
    "alias bomb": (_billion_laughs(), "1: not valid YAML (anchors (&name) are not allowed in arc files)"),
    "deep lists": ("cues: " + "[" * 50_000, " nested too deeply"),
    "deep mappings": ("cues: " + "{a: " * 20_000, " nested too deeply"),
    "huge int": ("end_beat: " + "9" * 100_000, "1: end_beat: a number of 100000 characters is too long"),
    "huge hex": ("end_beat: 0x" + "f" * 5_000, "1: end_beat: a number of 5002 characters is too long"),
    "huge base 60": (
        "end_beat: 1" + ":59" * 100_000,
        "1: end_beat: a number of 300001 characters is too long",
    ),
    "long op": (
        "cues:\n  - {beat: 1, op: " + "x" * 100_000 + "}",
        "2: cues[0].op: unknown cue op 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'... (100000 characters) "
        "(allowed: emotion, state, stinger, leitmotif, tempo)",
    ),
    "long tag": ("end_beat: !" + "t" * 100_000 + " 1", "1: end_beat: YAML tag !tttt"),
    "NUL": ("cues:\n  - {beat: 1, op: state, name: a\x00b}\n", "2:33: control character '\\x00' (U+0000)"),
    "BEL": ("end_beat: 4\x07\n", "1:12: control character '\\x07' (U+0007) is not allowed"),
    "ESC": ("cues:\n  - {beat: 1, op: \x1b[31mstate}\n", "2:19: control character '\\x1b' (U+001B)"),
    "DEL": ("start_state: a\x7f\n", "1:15: control character '\\x7f' (U+007F)"),
    "C1": ("start_state: a\x9b\n", "1:15: control character '\\x9b' (U+009B)"),
}


@pytest.mark.parametrize(("text", "message"), HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_arcs_are_one_short_line(tmp_path: Path, text: str, message: str) -> None:
    """Every one said so in one line of at most MAX_MESSAGE_CHARS (the alias bomb printed a
    34.7 MB line; control characters and huge numbers gave tracebacks)."""
    path = tmp_path / "arc.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SceneFileError) as info:
        load_scene(path)
    error = str(info.value)
    assert error.startswith(f"{path}:{message}"), error
    assert "\n" not in error and len(error) <= len(str(path)) + MAX_MESSAGE_CHARS, error


def test_invalid_utf8_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "arc.yaml"
    path.write_bytes(b"cues: \xff\xfe\n")
    with pytest.raises(SceneFileError) as info:
        load_scene(path)
    assert str(info.value) == f"{path}: not UTF-8 text (invalid start byte at byte 6)"


def test_arcs_that_are_not_regular_files_are_refused_without_opening_them(
    tmp_path: Path, special_files: list[tuple[Path, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    """A directory, a FIFO (opening it blocks) or a device (/dev/zero never ends; its size reads 0)."""
    for path, kind in special_files:
        why = f"{kind}, not an arc file"
        with pytest.raises(SceneFileError) as info:
            load_scene(path)
        assert str(info.value) == f"{path} {why}"
        assert main(["play", "--arc", str(path)]) == 1
        err = capsys.readouterr().err
        assert err == f"affetto play: error: {path} {why}\n"
