"""A :class:`SessionHost` under heavy use: each session's requests wait in its own inbox and the
sessions take turns (one session's flood never holds up another's change), every inbox and
registry has a limit, a switch frees the client's own slot, and a subscriber that leaves a
session with the ``notes`` output hears every note it heard start end."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from engine.model.composer import Composer
from engine.server.protocol import ProtocolError, Request
from engine.sessions import host as host_mod
from engine.sessions.host import MAX_SESSION_PENDING, MAX_SESSION_THEMES, TURN_REQUESTS, SessionHost


@pytest.fixture(scope="module")
def composer() -> Iterator[Composer]:
    yield Composer(max_streams=3, intra_op_threads=1)


def emotion(valence: float) -> Request:
    return Request("emotion", {"valence": valence, "arousal": 0.5})


def test_a_flooding_session_waits_for_its_own_requests_not_the_others(composer: Composer) -> None:
    """The composing thread's batch is stepped here (the host is not started): each step is one
    session's turn at least."""
    host = SessionHost(composer)
    try:
        flood, other = host.open("flood"), host.open("other")
        host._apply_batch(math.inf)  # both start
        for i in range(MAX_SESSION_PENDING):
            host.submit(flood, emotion((i % 200) / 100 - 1))
        with pytest.raises(ProtocolError) as full:
            host.submit(flood, emotion(0.0))
        assert full.value.code == "rate_limited"
        host.submit(other, Request("state", {"name": "combat", "sync": "immediate"}))
        host._apply_batch(0.0)  # the flooder's turn: TURN_REQUESTS of its requests
        assert len(flood.inbox) == MAX_SESSION_PENDING - TURN_REQUESTS and len(other.inbox) == 1
        host._apply_batch(0.0)  # the other session's turn comes next, whatever the flood left
        assert len(other.inbox) == 0 and len(flood.inbox) == MAX_SESSION_PENDING - TURN_REQUESTS
        assert [e["op"] for _, _, e in other.notices] == ["state"]  # applied: its transition is due
        host.submit(flood, emotion(0.0))  # room again in its inbox
        host._apply_batch(math.inf)
        assert len(flood.inbox) == 0 and not host.errors
        # one change per turn reached its conductor (the rest were superseded before they could land)
        turns = math.ceil((MAX_SESSION_PENDING + 1) / TURN_REQUESTS)
        assert [e["op"] for _, _, e in flood.notices] == ["emotion"] * turns
    finally:
        host.stop()


def test_a_state_flood_costs_one_change_per_turn() -> None:
    states = [Request("state", {"name": n, "sync": "bar"}) for n in ("combat", "explore") * 8]
    states.append(Request("state", {"name": "combat", "sync": "beat"}))
    from engine.sessions.host import _superseded
    from engine.sessions.profile import DEFAULT_PROFILE, ParamMapper
    from engine.sessions.session import Session

    s = Session("a", 0, DEFAULT_PROFILE, ParamMapper(DEFAULT_PROFILE))
    out = _superseded(s, [*states, emotion(0.1), Request("param", {"name": "x", "value": 1.0})])
    assert out[:16] == [True] * 15 + [False]  # the last state at the bar stands
    assert out[16] is False  # a state at another sync point is not replaced by one at the bar
    assert out[17:] == [True, False]  # an emotion is replaced by a later parameter


def test_a_client_alone_in_its_session_may_switch_when_every_slot_is_used(composer: Composer) -> None:
    host = SessionHost(composer)
    host.start()
    try:
        a, b, c = host.open("a"), host.open("b"), host.open("c")  # every slot of the composer
        with pytest.raises(ProtocolError, match="slots"):
            host.open("d")
        joined = host.open("a")  # joining a session takes no slot
        assert joined is a and a.clients == 2
        d = host.switch(c, "d")  # c's client was alone: its slot is the one d takes
        assert c.closing and d.name == "d" and not d.closing
        with pytest.raises(ProtocolError, match="slots"):
            host.switch(a, "e")  # a has another client: its slot stays taken
        host.leave(b)
        e = host.open("e")  # a slot just freed is free at once
        deadline = time.monotonic() + 5.0
        while not (d.playing and e.playing):
            assert time.monotonic() < deadline, "the sessions did not start"
            time.sleep(0.01)
        assert sorted(host.sessions) == ["a", "d", "e"] and not host.errors
    finally:
        host.stop()


def test_leitmotif_registrations_are_limited_per_session_and_in_all(
    composer: Composer, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = SessionHost(composer)
    try:
        a, b = host.open("a"), host.open("b")

        def register(session: Any, name: str) -> dict[str, Any]:
            return host.submit(session, Request("leitmotif", {"name": name, "notes": [(0.0, 60, 1.0, 90)]}))

        for i in range(MAX_SESSION_THEMES):
            register(a, f"theme-{i}")
        with pytest.raises(ProtocolError, match=f"at most {MAX_SESSION_THEMES}") as refused:
            register(a, "one-more")
        assert refused.value.code == "busy"
        assert register(a, "theme-0")["event"] == "ok"  # replacing one by its name is fine
        monkeypatch.setattr(host_mod, "MAX_THEMES", MAX_SESSION_THEMES + 1)
        register(b, "b-0")
        with pytest.raises(ProtocolError, match="leitmotifs, its limit"):
            register(b, "b-1")
    finally:
        host.stop()


def test_a_subscriber_leaving_a_session_hears_its_notes_end(composer: Composer) -> None:
    host = SessionHost(composer)
    host.start()
    notes: list[dict[str, Any]] = []
    lock = threading.Lock()

    def listen(event: dict[str, Any]) -> None:
        if event["event"] == "note":
            with lock:
                notes.append(event)

    try:
        s = host.open("a")
        host.subscribe(s, listen)
        host.submit(s, Request("state", {"name": "combat"}))  # long notes: some sound at any time
        host.submit(s, Request("output", {"outputs": ["notes"]}))
        for _ in range(3):  # leave in the middle of the music, three times
            deadline = time.monotonic() + 10.0
            while True:
                with lock:
                    if len([n for n in notes if n["velocity"]]) >= 20:
                        break
                assert time.monotonic() < deadline, "no notes"
                time.sleep(0.01)
            host.unsubscribe(s, listen)
            time.sleep(0.3)
            with lock:
                heard = list(notes)
                notes.clear()
            sounding: set[tuple[int, int]] = set()
            for n in heard:
                (sounding.add if n["velocity"] else sounding.discard)((n["channel"], n["pitch"]))
            assert sounding == set(), f"notes left hanging in the subscriber's synth: {sounding}"
            host.subscribe(s, listen)
        assert not host.errors
    finally:
        host.stop()


def test_new_sessions_are_refused_while_composing_is_behind(composer: Composer) -> None:
    """The composing thread is not running here: the playing session's music runs out, the
    headroom check sees it twice, and a new session is refused; joining one still works."""
    host = SessionHost(composer)
    try:
        a = host.open("a")
        host._apply_batch(math.inf)  # starts, nothing composed yet
        time.sleep(0.2)  # its clock passes the music it has (none)
        assert host._check_headroom() < 0 and host.open(None) is not None  # once: a stall, maybe
        assert host._check_headroom() < 0
        with pytest.raises(ProtocolError, match="at capacity") as refused:
            host.open(None)
        assert refused.value.code == "busy"
        assert host.open("a") is a  # its clients may still join
    finally:
        host.stop()


def test_steered_sessions_beyond_the_budget_play_unsteered_and_say_so(composer: Composer) -> None:
    """The steering budget (``max_steered``) holds whatever the clients' profile asks; a session
    that ends gives its place back."""
    from dataclasses import replace

    from engine.music.conductor import compose_ahead
    from engine.recognizer.emotion_recognizer import default_recognizer_dir
    from engine.sessions.profile import DEFAULT_PROFILE

    if not (default_recognizer_dir() / "manifest.json").is_file():
        pytest.skip("no shipped recognizer")
    profile = replace(DEFAULT_PROFILE, config=replace(DEFAULT_PROFILE.config, steer=4))
    host = SessionHost(composer, profile, max_steered=1)
    try:
        first, second = host.open("first"), host.open("second")
        host._apply_batch(math.inf)  # both start
        assert host.status(first)["steer"] == 4 and host.status(second)["steer"] == 0
        assert any("second: plays unsteered" in e for e in host.errors)
        host.leave(first)
        host._apply_batch(math.inf)
        third = host.open("third")
        host._apply_batch(math.inf)
        assert host.status(third)["steer"] == 4
        c = third.conductor
        assert c is not None
        compose_ahead(composer, [c], 1.0)  # its bars are searched and played
        assert c.frontier_beat > 0
    finally:
        host.stop()
    with pytest.raises(ValueError, match="max_steered"):
        SessionHost(composer, max_steered=-1)
