"""Timed lines of story text, from files (SRT, WebVTT, CSV, plain text) or live (torch-free).

Every reader returns :class:`Line` objects: a start and an end in seconds from the start of the
story, the text (markup and control characters removed, whitespace collapsed to single spaces)
and the line of the file it came from. The lines are in order of start (ties keep file order),
their times are finite, none is empty.

* **SRT** (``.srt``): read by the `srt <https://pypi.org/project/srt/>`_ package; simple markup
  (``<i>``, ``<font ...>``, ``{\\an8}``) is removed and a cue of several lines is one line.
* **WebVTT** (``.vtt``): read by `webvtt-py <https://pypi.org/project/webvtt-py/>`_; cue tags
  (``<v Anna>``, ``<c.yellow>``) and character references (``&amp;``) are resolved, comments
  (``NOTE``), ``STYLE`` and ``REGION`` blocks ignored. A cue block that cannot be read is an error
  (the library alone would leave it out without a word).
* **CSV** (``.csv``): a header naming ``start``, ``duration`` and ``text`` (seconds, seconds,
  words; other columns are ignored); rows with no text are skipped.
* **Plain text** (anything else: ``.txt``, ``.md``): split into sentences, each timed at a reading
  pace of ``wpm`` words per minute (at least :data:`MIN_SENTENCE_S`), one after the other, with
  :data:`PARAGRAPH_PAUSE_S` between paragraphs.

A file that cannot be read as a story raises :class:`StoryFileError`, one line that starts with
the file's name and, where it is about one place, the line number: ``story.srt:12: ...``.

:data:`DEFAULT_WPM` is 150 words per minute, a natural narration pace: the pace usually
recommended for audiobooks is 150-160 words per minute (the National Center for Voice and
Speech's figure), well below silent reading (about 240).
"""

from __future__ import annotations

import codecs
import csv
import html
import io
import itertools
import math
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import srt
import webvtt
from webvtt.errors import MalformedCaptionError, MalformedFileError

from engine.checks import check_real
from engine.input_files import InputFileError, read_input_file

#: words per minute of plain text (audiobook narration, about 150-160 wpm)
DEFAULT_WPM: Final = 150
#: the range of ``wpm``
MIN_WPM: Final = 40
MAX_WPM: Final = 600
#: the largest story file, bytes
MAX_STORY_BYTES: Final = 16 * 1024 * 1024
#: the most lines of text in one story
MAX_LINES: Final = 100_000
#: the longest line of text, characters (after cleaning)
MAX_LINE_CHARS: Final = 2000
#: the shortest a sentence of plain text (or a live line) lasts, seconds
MIN_SENTENCE_S: Final = 1.0
#: the pause between two paragraphs of plain text, seconds
PARAGRAPH_PAUSE_S: Final = 1.0
#: the formats, by the name ``format`` takes
FORMATS: Final = ("srt", "vtt", "csv", "text")

_SUFFIXES: Final = {".srt": "srt", ".vtt": "vtt", ".csv": "csv"}
_NEWLINE = re.compile(r"\r\n|\r|\n")
_NEWLINE_BYTES = re.compile(rb"\r\n|\r|\n")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"\s+")
# SRT markup: HTML-like tags (<i>, </b>, <font color="#fff">) and ASS override blocks ({\an8}).
_SRT_MARKUP = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?>|\{\\[^{}]*\}")
_SRT_TIMING = re.compile(rf"\s*({srt.RGX_TIMESTAMP}) *-[ -] *> *({srt.RGX_TIMESTAMP})")
_VTT_TIMESTAMP = r"(?:(\d+):)?(\d{1,2}):(\d{1,2})\.(\d{1,3})"
_VTT_TIMING = re.compile(rf"\s*{_VTT_TIMESTAMP}\s*-->\s*{_VTT_TIMESTAMP}")

# Plain text: a sentence ends at . ! ? or … (any run of them), with the closing quotes and
# brackets after it, before a space or the end of the paragraph.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’»)\]]*(?=\s|$)")
_OPENERS = "\"'“‘«(["
_NEXT_CHAR = re.compile(r"\s*(\S)")
_LAST_WORD = re.compile(r"\S+$")
# Words whose "." does not end a sentence (lower case, without the dot).
_ABBREVIATIONS: Final = frozenset(
    {
        "mr", "mrs", "ms", "mx", "dr", "st", "jr", "sr", "prof", "rev", "fr", "gen", "col", "capt",
        "lt", "sgt", "mt", "ft", "vs", "e.g", "i.e", "cf", "approx",
    }
)  # fmt: skip


@dataclass(frozen=True)
class Line:
    """One timed line of story text.

    Attributes:
        start_s: when it starts, seconds from the start of the story.
        end_s: when it ends, seconds (``>= start_s``).
        text: the words, one line, no markup, at most :data:`MAX_LINE_CHARS` characters.
        source_line: the 1-based line of the file where it starts (SRT, WebVTT: the cue's timing
            line; CSV: its row; plain text: the sentence's first word); 0 for live lines.
    """

    start_s: float
    end_s: float
    text: str
    source_line: int


class StoryFileError(ValueError):
    """A story file cannot be read: one line, ``f"{path}:{line}: {what}"`` (``f"{path}: {what}"``
    when it is not about one line).

    Attributes:
        line: the 1-based line number the message is about, or None.
    """

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


def _error(name: str, line: int | None, what: str) -> StoryFileError:
    where = f"{name}:{line}" if line is not None else name
    return StoryFileError(f"{where}: {what}", line)


def _snippet(text: str, most: int = 40) -> str:
    """``text`` for a message: quoted, on one line, cut at ``most`` characters."""
    return repr(text if len(text) <= most else text[:most] + "…")


def _line_at(text: str, offset: int) -> int:
    """The 1-based line of ``text`` (CR, LF or CRLF line ends) that character ``offset`` is on."""
    return len(_NEWLINE.findall(text, 0, offset)) + 1


def _split_lines(text: str) -> list[str]:
    """The lines of ``text`` (CR, LF and CRLF end a line; nothing else does)."""
    return _NEWLINE.split(text)


def _clean(text: str) -> str:
    """Control characters out, runs of whitespace one space, no space at either end."""
    return _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip()


def reading_time_s(text: str, wpm: float = DEFAULT_WPM) -> float:
    """How long ``text`` takes to read aloud, seconds: ``words / wpm * 60``, at least
    :data:`MIN_SENTENCE_S`.

    Args:
        text: the words (split on whitespace).
        wpm: the pace, words per minute (not checked here: see :func:`read_lines`).
    """
    return max(MIN_SENTENCE_S, len(text.split()) / wpm * 60.0)


def check_wpm(wpm: object) -> float:
    """``wpm`` as a float in ``[MIN_WPM, MAX_WPM]``.

    Raises:
        TypeError: not a number.
        ValueError: NaN, infinite or outside [40, 600].
    """
    return check_real("wpm", wpm, MIN_WPM, MAX_WPM)


class _Collector:
    """Lines as a reader finds them, checked as they come (count, length, times)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: list[Line] = []

    def add(self, start_s: float, end_s: float, text: str, source_line: int) -> None:
        text = _clean(text)
        if not text:
            return
        where = source_line or None
        if len(text) > MAX_LINE_CHARS:
            raise _error(
                self.name, where, f"a line of text is {len(text)} characters long (allowed: at most "
                f"{MAX_LINE_CHARS})",
            )  # fmt: skip
        if not (math.isfinite(start_s) and math.isfinite(end_s)):
            raise _error(self.name, where, "times must be finite seconds")
        if end_s < start_s:
            raise _error(self.name, where, f"the line ends ({end_s:g} s) before it starts ({start_s:g} s)")
        if len(self.lines) >= MAX_LINES:
            raise _error(self.name, where, f"too many lines of text (allowed: at most {MAX_LINES})")
        self.lines.append(Line(float(start_s), float(end_s), text, source_line))

    def finish(self) -> list[Line]:
        if not self.lines:
            raise _error(self.name, None, "no lines of text")
        return sorted(self.lines, key=lambda line: line.start_s)


def _check_not_empty(text: str, name: str) -> None:
    if not text.strip():
        raise _error(name, None, "no lines of text")


# --- SRT -----------------------------------------------------------------------------------------


def _srt_seconds(timestamp: str) -> float:
    return float(srt.srt_timestamp_to_timedelta(timestamp).total_seconds())


def _srt_timing_line(lines: list[str], cursor: int, start_s: float, end_s: float) -> int:
    """The index of the first line from ``cursor`` that is the timing line of a cue from
    ``start_s`` to ``end_s``; -1 if none is."""
    for i in range(cursor, len(lines)):
        if "-->" not in lines[i] and "->" not in lines[i] and "- >" not in lines[i]:
            continue
        match = _SRT_TIMING.match(lines[i])
        if match is None:
            continue
        try:
            times = _srt_seconds(match.group(1)), _srt_seconds(match.group(2))
        except (ValueError, OverflowError):
            continue
        if abs(times[0] - start_s) < 5e-4 and abs(times[1] - end_s) < 5e-4:
            return i
    return -1


def _next_arrow(lines: list[str], cursor: int) -> int:
    return next((i for i in range(cursor, len(lines)) if "->" in lines[i] or "- >" in lines[i]), cursor)


def parse_srt(text: str, name: str) -> list[Line]:
    """The lines of an SRT file's text.

    Each cue is one line from its start to its end; its text lines are joined with a space and
    simple markup (``<i>``, ``</b>``, ``<font color=...>``, ``{\\an8}``) is removed.

    Args:
        text: the file's text.
        name: the file's name, for messages.

    Raises:
        StoryFileError: text that is not a cue (with its line), a cue that ends before it starts,
            a timestamp too large, a line of text too long, too many lines or none.
    """
    _check_not_empty(text, name)
    lines = _split_lines(text)
    out = _Collector(name)
    cursor = 0
    try:
        for sub in srt.parse(text):
            start_s = float(sub.start.total_seconds())
            end_s = float(sub.end.total_seconds())
            found = _srt_timing_line(lines, cursor, start_s, end_s)
            if found >= 0:
                cursor = found + 1
            content = " ".join(_SRT_MARKUP.sub("", part) for part in _split_lines(sub.content))
            out.add(start_s, end_s, content, found + 1 if found >= 0 else 0)
    except srt.SRTParseError as exc:
        unmatched: str = exc.unmatched_content
        first = _line_at(text, exc.expected_start)
        parts = _split_lines(unmatched)
        # Point at the broken timing line if the block has one, else at its first words.
        index = next((i for i, part in enumerate(parts) if "->" in part), None)
        if index is None:
            index = next((i for i, part in enumerate(parts) if part.strip()), 0)
            what = f"not a subtitle block (an index line, then 'START --> END'): {_snippet(parts[index])}"
        else:
            what = f"cannot read the cue's timing ('HH:MM:SS,mmm --> HH:MM:SS,mmm'): {_snippet(parts[index])}"
        raise _error(name, first + index, what) from None
    except StoryFileError:
        raise
    except (ValueError, OverflowError) as exc:  # srt.TimestampParseError, a timedelta too large
        line = _next_arrow(lines, cursor) + 1
        raise _error(name, line, f"cannot read the cue's timing: {_snippet(lines[line - 1])}") from exc
    return out.finish()


# --- WebVTT --------------------------------------------------------------------------------------


def _vtt_ms(groups: tuple[str | None, ...]) -> int:
    hours, minutes, seconds, fraction = groups
    return ((int(hours or 0) * 60 + int(minutes or 0)) * 60 + int(seconds or 0)) * 1000 + int(
        (fraction or "0").ljust(3, "0")
    )


def parse_vtt(text: str, name: str) -> list[Line]:
    """The lines of a WebVTT file's text.

    Each cue is one line from its start to its end, its text lines joined with a space, cue tags
    removed and character references (``&amp;``) resolved. Comments, styles and regions are
    ignored. Every line with ``-->`` must be the timing line of a cue the library could read.

    Args:
        text: the file's text.
        name: the file's name, for messages.

    Raises:
        StoryFileError: no ``WEBVTT`` header (line 1), a cue block that cannot be read (with its
            line), a cue that ends before it starts, a line of text too long, too many lines or
            none.
    """
    _check_not_empty(text, name)
    lines = _split_lines(text)
    arrows = (i for i, line in enumerate(lines) if "-->" in line)
    too_many = next(itertools.islice(arrows, MAX_LINES, None), None)
    if too_many is not None:  # every "-->" is a cue's: refuse before the library reads them all
        raise _error(name, too_many + 1, f"too many cues (allowed: at most {MAX_LINES} lines of text)")
    try:
        captions = webvtt.WebVTT.from_string(text).captions
    except MalformedFileError as exc:
        raise _error(name, 1, "not a WebVTT file (its first line must start with 'WEBVTT')") from exc
    except (MalformedCaptionError, ValueError, OverflowError) as exc:
        raise _error(name, None, f"cannot read it as WebVTT: {exc}") from exc
    out = _Collector(name)
    cursor = 0
    timing_lines: set[int] = set()
    for caption in captions:
        start_ms = caption.start_time.in_milliseconds()
        end_ms = caption.end_time.in_milliseconds()
        found = -1
        for i in range(cursor, len(lines)):
            match = _VTT_TIMING.match(lines[i]) if "-->" in lines[i] else None
            if match is not None:
                groups = match.groups()
                if _vtt_ms(groups[:4]) == start_ms and _vtt_ms(groups[4:]) == end_ms:
                    found = i
                    break
        if found >= 0:
            cursor = found + 1
            timing_lines.add(found)
        words = html.unescape(" ".join(_split_lines(caption.text)))
        out.add(start_ms / 1000, end_ms / 1000, words, found + 1 if found >= 0 else 0)
    # webvtt-py leaves out a cue block it cannot read without a word: find the first one.
    for i, line in enumerate(lines):
        if "-->" in line and i not in timing_lines:
            raise _error(
                name, i + 1, f"not a cue timing line ('HH:MM:SS.mmm --> HH:MM:SS.mmm', after an empty "
                f"line): {_snippet(line)}",
            )  # fmt: skip
    return out.finish()


# --- CSV -----------------------------------------------------------------------------------------


def _seconds(name: str, line: int, field: str, value: str, *, positive: bool) -> float:
    try:
        number = float(value.strip())
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number < 0 or (positive and number <= 0):
        bound = "> 0" if positive else ">= 0"
        raise _error(name, line, f"{field} must be a number of seconds {bound}, not {_snippet(value)}")
    return number


def parse_csv(text: str, name: str) -> list[Line]:
    """The lines of a CSV file's text: a header row, then a row per line.

    The header names the columns ``start`` (seconds), ``duration`` (seconds) and ``text``, in any
    order and case; other columns are ignored. Rows with no text are skipped.

    Args:
        text: the file's text.
        name: the file's name, for messages.

    Raises:
        StoryFileError: a column missing from the header (line 1), a start that is not a finite
            number >= 0 or a duration that is not one > 0 (with the row's line), a malformed row,
            a line of text too long, too many lines or none.
    """
    _check_not_empty(text, name)
    reader = csv.reader(io.StringIO(text, newline=""))
    out = _Collector(name)
    header_line = 1
    start_i = duration_i = text_i = 0
    try:
        header: list[str] | None = None
        previous = 0
        for row in reader:
            line = previous + 1
            previous = reader.line_num
            if not any(cell.strip() for cell in row):
                continue
            if header is None:
                header_line = line
                header = [cell.strip().lower() for cell in row]
                missing = [column for column in ("start", "duration", "text") if column not in header]
                if missing:
                    raise _error(
                        name, line, f"the header must name the columns start, duration and text "
                        f"(missing: {', '.join(missing)})",
                    )  # fmt: skip
                start_i, duration_i, text_i = (header.index(c) for c in ("start", "duration", "text"))
                continue
            words = row[text_i] if text_i < len(row) else ""
            if not _clean(words):
                continue
            start, duration = (row[i] if i < len(row) else "" for i in (start_i, duration_i))
            start_s = _seconds(name, line, "start", start, positive=False)
            duration_s = _seconds(name, line, "duration", duration, positive=True)
            out.add(start_s, start_s + duration_s, words, line)
    except csv.Error as exc:
        raise _error(name, reader.line_num or header_line, f"not a CSV row: {exc}") from None
    return out.finish()


# --- plain text ----------------------------------------------------------------------------------


def _ends_sentence(paragraph: str, match: re.Match[str]) -> bool:
    """Whether the end mark ``match`` in ``paragraph`` ends a sentence."""
    after = _NEXT_CHAR.match(paragraph, match.end())
    if after is not None and after.group(1).islower():  # "Wait... then she left." / '"Run!" he said.'
        return False
    if match.group().rstrip("\"'”’»)]") != ".":
        return True
    before = _LAST_WORD.search(paragraph, max(0, match.start() - 32), match.start())
    token = before.group().lstrip(_OPENERS) if before is not None else ""
    if token.lower() in _ABBREVIATIONS:
        return False
    return not (len(token) == 1 and token.isupper())  # an initial: "J. Smith"


def _sentences(paragraph: str) -> Iterable[tuple[int, str]]:
    """Each sentence of ``paragraph``: its start offset and its text."""
    start = 0
    for match in _SENTENCE_END.finditer(paragraph):
        if _ends_sentence(paragraph, match):
            yield start, paragraph[start : match.end()]
            start = match.end()
    if paragraph[start:].strip():
        yield start, paragraph[start:]


def lines_from_text(text: str, *, wpm: float = DEFAULT_WPM, name: str = "<text>") -> list[Line]:
    """The sentences of plain text, timed as if read aloud at ``wpm``.

    A sentence ends at ``.``, ``!``, ``?`` or ``…`` (with any closing quotes) before a space,
    unless the next word starts in lower case or the word is a common abbreviation ("Mr.",
    "Dr.", "St.") or an initial; a blank line (a paragraph) always ends one. Each sentence lasts
    ``words / wpm * 60`` seconds, at least :data:`MIN_SENTENCE_S`, from where the last ended;
    paragraphs are :data:`PARAGRAPH_PAUSE_S` apart.

    Args:
        text: the text.
        wpm: reading pace, words per minute, in [40, 600].
        name: a name for messages.

    Raises:
        ValueError: ``wpm`` outside [40, 600] (TypeError: not a number).
        StoryFileError: a sentence too long, too many or none.
    """
    pace = check_wpm(wpm)
    out = _Collector(name)
    t = 0.0
    paragraph: list[str] = []
    first_line = 0

    def flush() -> None:
        nonlocal t
        joined = "\n".join(paragraph)
        had = len(out.lines)
        line, counted = first_line, 0  # the line at offset `counted` of `joined`
        for offset, sentence in _sentences(joined):
            words = _clean(sentence)
            if not words:
                continue
            if out.lines and len(out.lines) == had:
                t += PARAGRAPH_PAUSE_S
            begins = offset + len(sentence) - len(sentence.lstrip())
            line += joined.count("\n", counted, begins)
            counted = begins
            duration = reading_time_s(words, pace)
            out.add(t, t + duration, words, line)
            t += duration

    for number, raw in enumerate(_split_lines(text), start=1):
        if _clean(raw):
            if not paragraph:
                first_line = number
            paragraph.append(raw)
        elif paragraph:
            flush()
            paragraph = []
    if paragraph:
        flush()
    return out.finish()


# --- files ---------------------------------------------------------------------------------------


def _decode(data: bytes, name: str) -> str:
    """``data`` as UTF-8 text (a byte order mark allowed)."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = len(_NEWLINE_BYTES.findall(data, 0, exc.start)) + 1
        raise _error(name, line, f"not UTF-8 text (byte {data[exc.start]:#04x} cannot be read)") from None


def _format_of(path: Path, format: str | None) -> str:
    if format is None:
        return _SUFFIXES.get(path.suffix.lower(), "text")
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    return format


def read_lines(
    path: str | os.PathLike[str], *, wpm: float = DEFAULT_WPM, format: str | None = None
) -> list[Line]:
    """The timed lines of a story file.

    Args:
        path: the file (UTF-8, a byte order mark allowed; at most :data:`MAX_STORY_BYTES`).
        wpm: plain text's reading pace, words per minute, in [40, 600].
        format: ``"srt"``, ``"vtt"``, ``"csv"`` or ``"text"``; None: by the suffix (``.srt``,
            ``.vtt``, ``.csv``, anything else plain text).

    Raises:
        ValueError: an unknown ``format`` or ``wpm`` outside [40, 600] (TypeError: not a number).
        StoryFileError: the file is missing, not a regular file (a directory, FIFO or device),
            larger than 16 MiB, not UTF-8, or cannot be read in its format; the message is one
            line that starts with the path (and the line number, where there is one).
    """
    p = Path(path)
    pace = check_wpm(wpm)
    kind = _format_of(p, format)
    name = os.fspath(p)
    try:
        data = read_input_file(p, "story file", MAX_STORY_BYTES, allowed="at most 16 MiB")
    except InputFileError as exc:
        raise StoryFileError(str(exc)) from exc
    text = _decode(data, name)
    if kind == "srt":
        return parse_srt(text, name)
    if kind == "vtt":
        return parse_vtt(text, name)
    if kind == "csv":
        return parse_csv(text, name)
    return lines_from_text(text, wpm=pace, name=name)


# --- live ----------------------------------------------------------------------------------------


class LiveLines:
    """Lines typed or sent as the story goes, each stamped when it comes.

    Args:
        now_s: the clock, seconds (e.g. since the story started); a line starts at ``now_s()``
            (never before the line before it) and lasts its reading time at :data:`DEFAULT_WPM`.
    """

    def __init__(self, now_s: Callable[[], float]) -> None:
        self._now_s = now_s
        self._last_s = 0.0

    def add(self, text: str) -> Line:
        """The line for ``text``, starting now.

        Args:
            text: one line: 1..2000 characters after stripping, no control characters but tabs.

        Raises:
            TypeError: ``text`` is not a str.
            ValueError: empty, longer than 2000 characters, with control characters, or the clock
                gave a time that is not finite.
        """
        if not isinstance(text, str):
            kind = type(text).__name__
            raise TypeError(f"text must be a str of 1..{MAX_LINE_CHARS} characters, got {kind}")
        words = text.strip()
        if not 1 <= len(words) <= MAX_LINE_CHARS:
            raise ValueError(f"text must be 1..{MAX_LINE_CHARS} characters (stripped), got {len(words)}")
        if _CONTROL.search(words.replace("\t", " ")):
            raise ValueError("text must have no control characters (other than tabs)")
        now = float(self._now_s())
        if not math.isfinite(now):
            raise ValueError(f"the clock must give finite seconds, got {now}")
        start = max(now, self._last_s)
        self._last_s = start
        return Line(start, start + reading_time_s(words), _clean(words), 0)
