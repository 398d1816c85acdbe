"""Story files → timed lines: SRT, WebVTT, CSV and plain text, their errors (with line numbers),
live lines, and fuzzing (a parser raises StoryFileError or returns sane lines, nothing else)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.story import lines as lines_module
from engine.story.lines import (
    DEFAULT_WPM,
    MAX_LINE_CHARS,
    MAX_LINES,
    Line,
    LiveLines,
    StoryFileError,
    lines_from_text,
    parse_csv,
    parse_srt,
    parse_vtt,
    read_lines,
    reading_time_s,
)

DND_EP1 = Path("/work/shared/data/dnd/ep1.csv")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "stories"

SRT = """\
1
00:00:01,000 --> 00:00:03,500
<i>The sea was calm</i> {\\an8}that night,
and the lamp <font color="#ffcc00">turned</font> slowly.

2
00:00:04,000 --> 00:00:06,250
<b>Then the wind rose.</b>

3
00:00:07,000 --> 00:00:08,000
It rained.
"""

VTT = """\
WEBVTT - The lighthouse
Kind: captions

NOTE This comment spans
two lines and is not text.

STYLE
::cue { color: white }

intro
00:01.000 --> 00:03.500 align:start position:10%
<v Keeper>The sea was calm &amp; still,
<c.yellow>the lamp turned.</c>

00:00:04.000 --> 00:00:06.000
Then the wind rose.
"""


def _write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


def _error(path: Path, **kwargs: object) -> str:
    with pytest.raises(StoryFileError) as info:
        read_lines(path, **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


def _sane(lines: list[Line]) -> None:
    assert lines
    starts = [line.start_s for line in lines]
    assert starts == sorted(starts)
    for line in lines:
        assert math.isfinite(line.start_s) and math.isfinite(line.end_s) and line.end_s >= line.start_s
        assert line.text and line.text == line.text.strip() and len(line.text) <= MAX_LINE_CHARS
        assert not any(ord(c) < 32 or 127 <= ord(c) < 160 for c in line.text)
        assert line.source_line >= 0


# --- the formats ---------------------------------------------------------------------------------


def test_srt_markup_removed_and_multi_line_cues_joined(tmp_path: Path) -> None:
    lines = read_lines(_write(tmp_path, "story.srt", SRT))
    assert lines == [
        Line(1.0, 3.5, "The sea was calm that night, and the lamp turned slowly.", 2),
        Line(4.0, 6.25, "Then the wind rose.", 7),
        Line(7.0, 8.0, "It rained.", 11),
    ]


def test_srt_with_bom_and_crlf_and_out_of_order_cues(tmp_path: Path) -> None:
    text = (
        "2\r\n00:00:05,000 --> 00:00:06,000\r\nSecond\r\n\r\n1\r\n00:00:01,000 --> 00:00:02,000\r\nFirst\r\n"
    )
    lines = read_lines(_write(tmp_path, "story.SRT", b"\xef\xbb\xbf" + text.encode()))
    assert [(line.text, line.source_line) for line in lines] == [("First", 6), ("Second", 2)]


def test_vtt_header_notes_styles_and_cue_tags(tmp_path: Path) -> None:
    lines = read_lines(_write(tmp_path, "story.vtt", VTT))
    assert lines == [
        Line(1.0, 3.5, "The sea was calm & still, the lamp turned.", 11),
        Line(4.0, 6.0, "Then the wind rose.", 15),
    ]


def test_csv_columns_in_any_order_extra_columns_and_empty_text_skipped(tmp_path: Path) -> None:
    text = 'Text,valence,Start,duration\nhello there,1,2.5,1.5\n,0,4,1\n"two\nlines",0,6,2\nlast,0,5,0.5\n'
    lines = read_lines(_write(tmp_path, "story.csv", text))
    assert lines == [
        Line(2.5, 4.0, "hello there", 2),
        Line(5.0, 5.5, "last", 6),
        Line(6.0, 8.0, "two lines", 4),
    ]


@pytest.mark.skipif(not DND_EP1.is_file(), reason=f"the D&D transcripts are not here ({DND_EP1})")
def test_the_dnd_transcript_reads_as_is() -> None:
    lines = read_lines(DND_EP1)
    assert len(lines) == 803
    _sane(lines)
    assert lines[0] == Line(2.389, 2.389 + 5.41, "hello everybody and welcome to a night", 2)


def test_plain_text_sentences_abbreviations_paragraphs_and_timing(tmp_path: Path) -> None:
    text = (
        "Mr. Hale kept the light on St. Agnes Rock. Dr. Moss came by boat!\n"
        '"Is that you?" he called. She waved... then rowed on.\n'
        "\n\n"
        "The storm came at dusk? It did."
    )
    lines = read_lines(_write(tmp_path, "story.txt", text), wpm=120)
    assert [(line.text, line.source_line) for line in lines] == [
        ("Mr. Hale kept the light on St. Agnes Rock.", 1),
        ("Dr. Moss came by boat!", 1),
        ('"Is that you?" he called.', 2),
        ("She waved... then rowed on.", 2),
        ("The storm came at dusk?", 5),
        ("It did.", 5),
    ]
    durations = [line.end_s - line.start_s for line in lines]
    assert durations == pytest.approx([9 / 2, 5 / 2, 5 / 2, 5 / 2, 5 / 2, 1.0])  # words / 120 * 60, >= 1 s
    assert lines[0].start_s == 0
    for before, after, pause in zip(lines[:-1], lines[1:], [0, 0, 0, 1.0, 0], strict=True):
        assert after.start_s == pytest.approx(before.end_s + pause)


def test_format_option_overrides_the_suffix_and_md_is_plain_text(tmp_path: Path) -> None:
    assert read_lines(_write(tmp_path, "story.txt", SRT), format="srt")[0].start_s == 1.0
    assert [line.text for line in read_lines(_write(tmp_path, "notes.md", "One. Two."))] == ["One.", "Two."]
    with pytest.raises(ValueError, match="srt, vtt, csv, text"):
        read_lines(tmp_path / "notes.md", format="docx")


@pytest.mark.parametrize("wpm", [39.9, 601, math.nan])
def test_wpm_out_of_range(tmp_path: Path, wpm: float) -> None:
    with pytest.raises(ValueError, match=r"\[40, 600\]"):
        read_lines(_write(tmp_path, "a.txt", "Words."), wpm=wpm)
    with pytest.raises(ValueError, match=r"\[40, 600\]"):
        lines_from_text("Words.", wpm=wpm)


def test_reading_time() -> None:
    assert reading_time_s("one two three", 60) == pytest.approx(3.0)
    assert reading_time_s("hi") == 1.0
    assert reading_time_s(" ".join(["w"] * 300)) == pytest.approx(300 / DEFAULT_WPM * 60)


@pytest.mark.parametrize("name", ["the_lighthouse.txt", "the_lighthouse.srt"])
def test_the_example_stories_read(name: str) -> None:
    path = EXAMPLES / name
    if not path.is_file():
        pytest.skip(f"{path} is not here")
    lines = read_lines(path)
    _sane(lines)
    assert 120 <= lines[-1].end_s <= 240  # a few minutes


# --- errors, each at its line --------------------------------------------------------------------


def test_srt_bad_timestamp_at_its_line(tmp_path: Path) -> None:
    text = SRT.replace("00:00:04,000 --> 00:00:06,250", "00:00:04,000 --> 00:0O:06,250")
    assert ":7: cannot read the cue's timing" in _error(_write(tmp_path, "a.srt", text))


def test_srt_garbage_and_a_cue_ending_before_it_starts(tmp_path: Path) -> None:
    assert ":3: not a subtitle block" in _error(_write(tmp_path, "a.srt", "\n\nnot subtitles\n"))
    backwards = "1\n00:00:05,000 --> 00:00:04,000\nback\n"
    assert ":2: the line ends (4 s) before it starts (5 s)" in _error(_write(tmp_path, "b.srt", backwards))


def test_vtt_errors_at_their_lines(tmp_path: Path) -> None:
    assert ":1: not a WebVTT file" in _error(_write(tmp_path, "a.vtt", "00:01.000 --> 00:02.000\nhi\n"))
    bad_minutes = VTT.replace("00:00:04.000 --> 00:00:06.000", "00:00:04.000 --> 00:61:06.000")
    assert ":15: not a cue timing line" in _error(_write(tmp_path, "b.vtt", bad_minutes))
    arrow_in_text = VTT + "then a --> b\n"
    assert ":17: not a cue timing line" in _error(_write(tmp_path, "c.vtt", arrow_in_text))


@pytest.mark.parametrize(
    ("cell", "what"),
    [
        ("x", "start must be a number of seconds >= 0, not 'x'"),
        ("-1", "start must be a number of seconds >= 0, not '-1'"),
        ("nan", "start must be a number of seconds >= 0, not 'nan'"),
        ("1e999", "start must be a number of seconds >= 0, not '1e999'"),
    ],
)
def test_csv_bad_start_at_its_line(tmp_path: Path, cell: str, what: str) -> None:
    text = f"start,duration,text\n1,1,a\n\n2,1,b\n{cell},1,c\n"
    assert _error(_write(tmp_path, "a.csv", text)).endswith(f"a.csv:5: {what}")


def test_csv_bad_duration_and_missing_column(tmp_path: Path) -> None:
    assert "a.csv:3: duration must be a number of seconds > 0, not '0'" in _error(
        _write(tmp_path, "a.csv", "start,duration,text\n1,1,a\n2,0,b\n")
    )
    message = _error(_write(tmp_path, "b.csv", "\nstart,length,text\n1,1,a\n"))
    assert "b.csv:2: the header must name the columns start, duration and text (missing: duration)" in message


def test_invalid_utf8_at_its_line(tmp_path: Path) -> None:
    data = b"One line.\r\nTwo lines.\nThree \xff here.\n"
    assert ":3: not UTF-8 text" in _error(_write(tmp_path, "a.txt", data))
    assert ":2: not UTF-8 text" in _error(_write(tmp_path, "a.srt", b"\xef\xbb\xbf1\n\xc3("))


@pytest.mark.parametrize("name", ["a.srt", "a.vtt", "a.csv", "a.txt"])
@pytest.mark.parametrize("text", ["", " \n\n\t\n", "\ufeff"])
def test_empty_files(tmp_path: Path, name: str, text: str) -> None:
    assert _error(_write(tmp_path, name, text)) == f"{tmp_path / name}: no lines of text"


def test_header_only_or_markup_only_has_no_lines(tmp_path: Path) -> None:
    assert _error(_write(tmp_path, "a.csv", "start,duration,text\n1,1,\n")).endswith(": no lines of text")
    only_tags = "1\n00:00:01,000 --> 00:00:02,000\n<i></i>\n"
    assert _error(_write(tmp_path, "b.srt", only_tags)).endswith(": no lines of text")


def test_a_line_too_long_and_too_many_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    long = "start,duration,text\n1,1,ok\n2,1," + "w" * (MAX_LINE_CHARS + 1) + "\n"
    assert f":3: a line of text is {MAX_LINE_CHARS + 1} characters long" in _error(
        _write(tmp_path, "a.csv", long)
    )
    assert MAX_LINES == 100_000
    monkeypatch.setattr(lines_module, "MAX_LINES", 10)  # the same check, faster
    many = "start,duration,text\n" + "1,1,a\n" * 11
    assert ":12: too many lines of text (allowed: at most 10)" in _error(_write(tmp_path, "b.csv", many))
    assert len(read_lines(_write(tmp_path, "c.txt", "One. " * 10))) == 10


def test_missing_file_directory_and_fifo(tmp_path: Path, fifo: Path) -> None:
    assert "no such file" in _error(tmp_path / "nope.srt")
    assert "is a directory" in _error(tmp_path)
    assert "is a FIFO" in _error(fifo)  # refused without blocking


# --- live lines ----------------------------------------------------------------------------------


def test_live_lines_are_stamped_by_the_clock() -> None:
    now = [10.0]
    live = LiveLines(lambda: now[0])
    first = live.add("  The storm broke over the rock.\r")
    assert first == Line(
        10.0, 10.0 + reading_time_s("The storm broke over the rock."), "The storm broke over the rock.", 0
    )
    now[0] = 5.0  # a clock that goes back does not reorder the lines
    assert live.add("Then\tcalm.").start_s == 10.0
    with pytest.raises(TypeError, match=r"str of 1\.\.2000"):
        live.add(b"bytes")  # type: ignore[arg-type]
    for bad in ["", "   ", "x" * (MAX_LINE_CHARS + 1)]:
        with pytest.raises(ValueError, match=r"1\.\.2000 characters"):
            live.add(bad)
    with pytest.raises(ValueError, match="control characters"):
        live.add("a\x00b")


# --- fuzzing -------------------------------------------------------------------------------------

_FRAGMENTS = st.sampled_from(
    ["1", "2", "\n", "\r\n", "\r", " ", "\n\n", "-->", " --> ", "00:00:01,000", "00:00:02.500", "00:01.000",
     "99:99:99,999", "WEBVTT", "NOTE ", "STYLE", "REGION", "<i>", "</i>", "{\\an8}", "<v A>", "&amp;",
     "start,duration,text", ",", '"', "1.5", "-1", "nan", "Mr.", ". ", "! ", "…", "\x00", "\ufeff", "é"]
)  # fmt: skip
_TEXT = st.one_of(
    st.text(max_size=200), st.lists(st.one_of(_FRAGMENTS, st.text(max_size=4)), max_size=40).map("".join)
)
_PARSERS = {
    "srt": lambda text: parse_srt(text, "f.srt"),
    "vtt": lambda text: parse_vtt(text, "f.vtt"),
    "csv": lambda text: parse_csv(text, "f.csv"),
    "text": lambda text: lines_from_text(text, name="f.txt"),
}


@pytest.mark.parametrize("kind", list(_PARSERS))
@settings(max_examples=100, deadline=None)
@given(text=_TEXT)
def test_fuzz_text(kind: str, text: str) -> None:
    try:
        lines = _PARSERS[kind](text)
    except StoryFileError as exc:
        assert "\n" not in str(exc) and str(exc).startswith("f.")
        return
    _sane(lines)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(st.binary(max_size=200), _TEXT.map(lambda t: t.encode("utf-8", "surrogatepass"))))
def test_fuzz_bytes(tmp_path: Path, data: bytes) -> None:
    for name in ("f.srt", "f.vtt", "f.csv", "f.txt"):
        path = tmp_path / name
        path.write_bytes(data)
        try:
            lines = read_lines(path)
        except StoryFileError as exc:
            assert "\n" not in str(exc) and str(exc).startswith(str(path))
            continue
        _sane(lines)
