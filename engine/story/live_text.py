"""The server's ``text`` op: live lines of a story move a session's music when its arc changes.

One reading thread owns the text emotion model (loaded on the first line) and reads the lines of
every session in arrival order, each after that session's recent lines (its
:class:`engine.story.text_model.TextContext`), into that session's :class:`engine.story.arc.LiveArc`.
When the arc changes, the session gets an ``emotion`` request (the scene's, at its profile's sync
point and seek speed) through the same inbox as a game's own requests; the sender is answered
with a ``text`` event either way. The composing and clock threads never wait for it.

Limits: ``MAX_SESSION_LINES_WAITING`` lines of one session (more: ``rate_limited``) and
``MAX_LINES_WAITING`` in all (``busy``) wait to be read.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from engine.server.protocol import ProtocolError, Request
from engine.story.arc import LiveArc, scene_emotion
from engine.story.lines import reading_time_s
from engine.story.text_model import MANIFEST_NAME, TextContext, TextEmotionModel, default_text_model_dir

log = logging.getLogger(__name__)

MAX_SESSION_LINES_WAITING: Final = 8
MAX_LINES_WAITING: Final = 256

Reply = Callable[[dict[str, Any]], None]


@dataclass
class SessionStory:
    """One session's live story (kept on the session: it goes when the session does)."""

    context: TextContext | None = None  # made by the reading thread with its first line
    arc: LiveArc = field(default_factory=LiveArc)
    started: float | None = None  # when its first line came (time.monotonic())
    waiting: int = 0  # its lines not read yet


@dataclass(frozen=True)
class _Line:
    session: Any
    text: str
    request_id: Any
    reply: Reply | None
    received: float  # time.monotonic()


class StoryReader:
    """Reads the ``text`` lines of every session on one thread.

    Args:
        post: gives a session an ``emotion`` request (the host's inbox; may raise ProtocolError).
        report: told of a problem (a reply that failed); must not block.
        model_dir: the text emotion model (None: the shipped one).
    """

    def __init__(
        self,
        post: Callable[[Any, Request], None],
        report: Callable[[str], None],
        model_dir: str | Path | None = None,
    ) -> None:
        self._post = post
        self._report = report
        self._model_dir = Path(model_dir) if model_dir is not None else default_text_model_dir()
        self._model: TextEmotionModel | None = None
        self._model_error: str | None = None
        self._lines: deque[_Line] = deque()
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None
        self._running = False
        #: line received → answer sent, seconds, the latest 10,000 (for ``affetto bench``)
        self.latencies_s: deque[float] = deque(maxlen=10_000)

    @property
    def available(self) -> bool:
        return self._model_error is None and (self._model_dir / MANIFEST_NAME).is_file()

    def submit(self, session: Any, text: str, request_id: Any = None, reply: Reply | None = None) -> None:
        """Queue one line of ``session``'s story (the loop thread; returns at once).

        Raises:
            ProtocolError: unsupported (no text emotion model), rate_limited (the session has
                ``MAX_SESSION_LINES_WAITING`` lines waiting), busy (``MAX_LINES_WAITING`` in all).
        """
        if not self.available:
            why = self._model_error or f"no text emotion model at {self._model_dir}"
            raise ProtocolError("unsupported", f"story text cannot be read here: {why}", "text", request_id)
        with self._lock:
            story: SessionStory | None = session.story
            if story is None:
                story = session.story = SessionStory()
            if story.waiting >= MAX_SESSION_LINES_WAITING:
                message = (
                    f"{MAX_SESSION_LINES_WAITING} lines of this session are waiting to be read; slow down"
                )
                raise ProtocolError("rate_limited", message, "text", request_id)
            if len(self._lines) >= MAX_LINES_WAITING:
                raise ProtocolError(
                    "busy", "the server is reading too many lines; slow down", "text", request_id
                )
            story.waiting += 1
            self._lines.append(_Line(session, text, request_id, reply, time.monotonic()))
            if self._thread is None:
                self._running = True
                self._thread = threading.Thread(target=self._loop, name="affetto-story", daemon=True)
                self._thread.start()
            self._lock.notify()

    def stop(self) -> None:
        with self._lock:
            self._running = False
            self._lock.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(timeout=5.0)

    def _loop(self) -> None:
        while True:
            with self._lock:
                while self._running and not self._lines:
                    self._lock.wait()
                if not self._running:
                    return
                line = self._lines.popleft()
            try:
                self._read(line)
            except Exception as exc:  # the thread serves every session: report, answer, go on
                log.exception("reading a line of story text failed")
                self._report(f"story: {exc}")
                self._answer(line, ProtocolError("unsupported", f"the line could not be read: {exc}",
                                                 "text", line.request_id).event())  # fmt: skip

    def _read(self, line: _Line) -> None:
        session = line.session
        with self._lock:
            story: SessionStory = session.story
            story.waiting = max(0, story.waiting - 1)
        model = self._load()
        if model is None:
            why = f"story text cannot be read here: {self._model_error}"
            self._answer(line, ProtocolError("unsupported", why, "text", line.request_id).event())
            return
        if session.closed:
            return
        if story.context is None or story.started is None:
            story.context, story.started = model.context(), line.received
        start_s = line.received - story.started
        emotion = story.context.add(line.text)
        decision = story.arc.add(
            start_s, start_s + reading_time_s(line.text), emotion.p_scene_valence, emotion.p_scene_arousal
        )
        scene = decision.scene
        changed = decision.changed
        transition = session.profile.transition
        if changed:
            target = scene_emotion(scene)
            args = {"valence": target.valence, "arousal": target.arousal, "tension": target.tension,
                    "sync": transition.sync, "seek_per_s": transition.seek_per_s}  # fmt: skip
            try:
                self._post(session, Request("emotion", args))
            except ProtocolError as exc:  # the session's inbox is full: the arc moved, the music could not
                changed = False
                self._report(f"story: {session.name}: the scene change could not be queued ({exc})")
        event: dict[str, Any] = {
            "event": "text",
            "session": session.name,
            "valence": round(emotion.valence, 4),
            "arousal": round(emotion.arousal, 4),
            "confidence": round(emotion.confidence, 4),
            "scene_valence": round(scene.valence, 4),
            "scene_arousal": round(scene.arousal, 4),
            "scene": scene.quadrant,
            "changed": changed,
            "sync": transition.sync if changed else None,
            "time_s": round(start_s, 4),
        }
        if line.request_id is not None:
            event["id"] = line.request_id
        self._answer(line, event)

    def _answer(self, line: _Line, event: dict[str, Any]) -> None:
        self.latencies_s.append(time.monotonic() - line.received)
        if line.reply is None:
            return
        try:
            line.reply(event)
        except Exception as exc:  # a client's reply path must not stop the reading
            self._report(f"story: the answer could not be sent: {exc}")

    def _load(self) -> TextEmotionModel | None:
        if self._model is None and self._model_error is None:
            try:
                self._model = TextEmotionModel(self._model_dir)
            except (FileNotFoundError, ValueError) as exc:
                self._model_error = str(exc)
        return self._model
