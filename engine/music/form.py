"""Form: which earlier bar's rhythm a bar restates, so the music states ideas and returns to them.

Music is heard as composed when its ideas come back. Game music restates a bar's onset pattern
in about two bars of three (rhythm repetition 0.66 ± 0.21 on listener-labelled VGMIDI pieces);
a language model sampling bar after bar almost never does (0.08). The conductor therefore plans
rhythm at the phrase level and makes the composer keep it through the grammar
(:meth:`engine.model.composer.Composer.set_bar_rhythm`): the bar's notes start exactly where the
earlier bar's did, while the pitches, chords, durations and dynamics stay the model's own, so a
return is a variation, never a copy.

The plan, over groups of ``GROUP_PHRASES`` phrases counted from the start of the section (the
bar after the last change of emotion or state)::

    phrase 0:  a  a  b  c      the basic idea, restated; a continuation; a free cadence bar
    phrase 1:  a  a  b  d      the first phrase returns (a period), with a new cadence
    phrase 2:  e  e  b  f      a contrasting idea, restated; the continuation comes back
    phrase 3:  a  a  b  d      the return, closing as the period did

so 10 of every 16 bars restate an earlier bar (with 4-bar phrases). The bars left free but for
the phrase's first (the new idea, the contrasting idea) restate the head of the bar before them
(:func:`head_source`: its onsets in the first half of the bar, one onset being enough: a held
chord's head is a held chord) and go their own way from the middle of the bar: a continuation
that starts as the idea did, a cadence that grows out of its continuation. Consecutive bars
share most of their onsets then, as game music's do (muspy's groove consistency 0.85 ± 0.07 on
the held-out VGMIDI pieces). In a major key the contrast (phrase 2) is in the dominant and the
return comes home (:func:`in_contrast`; the conductor moves the key pull,
:data:`engine.music.keys.CONTRAST_KEYS`), so the harmony moves as a rounded binary form's does;
minor stays home (two minor scales together read as their relative major).

A phrase's last bar restates only a head (cadences differ) except in the return, which closes
on the period's cadence. A bar is left free when its source has fewer than ``MIN_ONSETS``
onsets (a rest, a held chord; for a head, none in its first half), was composed under an
emotion more than ``EMOTION_TOLERANCE`` away (its density would not fit), or was a theme (the
conductor does not plan bars it forces). Longer phrases keep the shape: within a phrase, odd
bars restate the bar before them and even bars are the continuation (returning in later
phrases, as ``b`` does).
"""

from __future__ import annotations

from typing import Final

#: Phrases per form group; the plan starts again after them (ideas stay a few phrases old).
GROUP_PHRASES: Final = 4
#: A source bar needs this many onsets to be worth restating.
MIN_ONSETS: Final = 2
#: Largest |Δ valence| or |Δ arousal| between a source bar's emotion and the current one.
EMOTION_TOLERANCE: Final = 0.25


def rhythm_source(bar: int, section_start: int, phrase_bars: int) -> int | None:
    """The earlier bar whose rhythm bar ``bar`` restates, or None when it is free.

    Args:
        bar: the bar being opened (index >= 0).
        section_start: the first bar of the current section (<= ``bar``).
        phrase_bars: bars per phrase (>= 1).

    Returns:
        A bar index in ``section_start .. bar - 1``, or None.
    """
    if phrase_bars < 2 or bar <= section_start:
        return None
    span = GROUP_PHRASES * phrase_bars
    group = section_start + span * ((bar - section_start) // span)
    phrase, j = divmod(bar - group, phrase_bars)
    if j == phrase_bars - 1:  # the cadence bar: the return closes as the period did
        return group + phrase_bars + j if phrase == GROUP_PHRASES - 1 else None
    if j % 2 == 1:
        return bar - 1  # the idea restated
    if phrase == 0:
        return None  # a new idea or continuation
    if phrase == 2 and j == 0:
        return None  # the contrasting idea
    return group + j  # the first phrase's bar at this place returns


def head_source(bar: int, section_start: int, phrase_bars: int) -> int | None:
    """The earlier bar whose head (its onsets before the middle of the bar) bar ``bar`` restates,
    going its own way from there; None when the bar restates a whole bar (:func:`rhythm_source`)
    or starts an idea (a phrase's first bar that is not a return).

    Args:
        bar: the bar being opened (index >= 0).
        section_start: the first bar of the current section (<= ``bar``).
        phrase_bars: bars per phrase (>= 1).

    Returns:
        ``bar - 1``, or None.
    """
    if phrase_bars < 2 or bar <= section_start:
        return None
    if (bar - section_start) % phrase_bars == 0 or rhythm_source(bar, section_start, phrase_bars) is not None:
        return None
    return bar - 1


def in_contrast(bar: int, section_start: int, phrase_bars: int) -> bool:
    """Whether bar ``bar`` lies in its form group's contrasting phrase (phrase 2: ``e e b f``),
    the phrase the conductor plays in a related key (:data:`engine.music.keys.CONTRAST_KEYS`):
    the group states its idea at home, moves away for the contrast and returns home for the
    return, as a rounded binary form does.

    Args:
        bar: a bar index (>= 0).
        section_start: the first bar of the current section (<= ``bar``).
        phrase_bars: bars per phrase (>= 1); with fewer than 2 there is no plan and no contrast.
    """
    if phrase_bars < 2 or bar < section_start:
        return False
    return ((bar - section_start) % (GROUP_PHRASES * phrase_bars)) // phrase_bars == 2


def positions(mask: int) -> list[int]:
    """The onset positions (sixteenths) set in a rhythm bit mask."""
    return [p for p in range(mask.bit_length()) if (mask >> p) & 1]
