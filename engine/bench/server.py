"""``affetto bench server``: how many live sessions this machine holds, OSC throughput, memory
per idle session, and a fuzz run against the running server.

* **Sessions**: N sessions playing at once (combat: every layer and drums) on one shared
  composer for ``seconds``; an event sent more than ``late_ms`` after its time is late. A lone
  probe process measures the machine's own stalls; a late event while the probe was stalled too
  is the machine's (a VM's vCPU descheduled), counted apart.
* **OSC throughput**: a separate process floods the server with valid ``/affetto/emotion`` and
  ``/affetto/param``-free messages from several ports; counted: messages parsed, validated and
  handed to their sessions per second (a burst of emotion changes to one session is applied as
  its last one, see :class:`engine.sessions.host.SessionHost`).
* **Memory per idle session**: resident memory growth per open, idle session.
* **Fuzz**: random and mutated OSC packets over UDP and random WebSocket messages; afterwards
  the server must answer ``status`` and have reported no internal error.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import random
import resource
import socket
import struct
import time
from dataclasses import replace
from typing import Any

from engine.checks import MAX_STEER
from engine.model.composer import Composer
from engine.outputs.midi_port import MidiPortError
from engine.outputs.output_process import OutputProcess, OutputProcessError
from engine.server.osc_codec import OscArg, encode_message
from engine.server.protocol import Request
from engine.server.transports import AffettoServer, ServerSettings
from engine.sessions.host import SessionHost
from engine.sessions.profile import DEFAULT_PROFILE, Profile


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _stall_probe(seconds: float, late_s: float, queue: Any) -> None:
    """A lone process that wakes every 3 ms (sleep, then spin the last 0.5 ms) and reports how
    often, and how late, it woke: the machine's own stalls, with no GIL shared with anyone, and
    when (``stalls``: (from, to) perf_counter s of each wake-up more than 1 ms late)."""
    late, worst, wakes = 0, 0.0, 0
    stalls: list[tuple[float, float]] = []
    t = time.perf_counter()
    end = t + seconds
    while t < end:
        t += 0.003
        while time.perf_counter() < t - 0.0005:
            time.sleep(0.0002)
        while time.perf_counter() < t:
            pass
        lag = time.perf_counter() - t
        if lag > 0.001:
            stalls.append((t, t + lag))
        wakes += 1
        late += lag > late_s
        worst = max(worst, lag)
    queue.put({"wakes": wakes, "late": late, "max_lateness_ms": round(worst * 1000, 2), "stalls": stalls})


def _outside(
    late: list[tuple[float, float]], stalls: list[tuple[float, float]], slack_s: float = 0.001
) -> int:
    """How many late events (due, sent) were late while the lone probe was not stalled: their
    (due, sent) span overlaps no stall of the probe (widened by ``slack_s``)."""
    return sum(
        1 for due, sent in late if not any(a - slack_s < sent and due < b + slack_s for a, b in stalls)
    )


def sessions_held(
    counts: tuple[int, ...] = (50, 100, 200, 256),
    seconds: float = 10.0,
    late_ms: float = 5.0,
    midi_port: str | None = "affetto-bench",
    midi_api: str | None = None,
    midi_virtual: bool = True,
    steer: int = 0,
) -> dict[str, Any]:
    """Late events with N sessions playing, for each N, every session into a MIDI port played by
    the output process, as ``affetto serve --virtual-port`` does (see
    :class:`engine.outputs.output_process.OutputProcess`).

    Late: an event the output process sent to the port (``device``), or the server process handed
    on (``server``: to nobody here, as no session has a subscriber), more than ``late_ms`` after its
    time. ``midi_virtual``: create a virtual port called ``midi_port`` (else open the existing port
    it names). Without a port (``midi_port`` None, or it cannot be opened: ``device_error``) the
    sessions play into nothing and only the server process's clock is measured.

    ``steer`` > 1: every session is steered with that many candidates per bar (a profile with
    ``composer: {steer: K}``, the host's steering budget all of them).

    Each run also has a lone probe process wake every 3 ms (``machine``): its late wake-ups are
    the machine's own stalls (a loaded VM's vCPU can be descheduled for milliseconds), which no
    code can avoid.
    """
    out: dict[str, Any] = {"late_threshold_ms": late_ms, "seconds": seconds, "steer": steer, "runs": []}
    composer = Composer(  # as affetto serve
        max_streams=max(counts),
        intra_op_threads=1,
        precision="int8",
        steer_rows=max(MAX_STEER, steer * max(counts)),
    )
    config = replace(DEFAULT_PROFILE.config, steer=steer)
    profile = replace(DEFAULT_PROFILE, config=config)
    device: OutputProcess | None = None
    if midi_port is not None:
        try:
            device = OutputProcess(midi_port=midi_port, midi_virtual=midi_virtual, midi_api=midi_api)
            kind = "virtual MIDI port" if midi_virtual else "MIDI port"
            api = midi_api or "default API"
            out["device"] = f"{kind} {device.midi_port_name!r} ({api}) in the output process"
        except (MidiPortError, OutputProcessError) as exc:
            out["device_error"] = str(exc)
    try:
        for n in counts:
            out["runs"].append(_sessions_run(composer, device, n, seconds, late_ms, profile))
    finally:
        if device is not None:
            device.close()
    ok = [r["sessions"] for r in out["runs"] if r["late"] == 0 and r["events"] > 0]
    out["max_sessions_without_late_events"] = max(ok) if ok else 0
    ours = [r["sessions"] for r in out["runs"] if r["events"] > 0 and r["server"]["late"] == 0
            and r.get("device", {}).get("late_outside_machine_stalls", 0) == 0]  # fmt: skip
    out["max_sessions_without_late_events_outside_machine_stalls"] = max(ours) if ours else 0
    return out


def _sessions_run(
    composer: Composer, device: OutputProcess | None, n: int, seconds: float, late_ms: float, profile: Profile
) -> dict[str, Any]:
    if device is not None:
        device.start()
    host = SessionHost(
        composer,
        profile,
        idle_timeout_s=3600.0,
        late_threshold_s=late_ms / 1000,
        outputs=device,
        max_steered=n,
    )
    host.start()
    try:
        sessions = [host.open(None) for _ in range(n)]
        for s in sessions:
            host.submit(s, Request("state", {"name": "combat", "sync": "immediate"}))
        deadline = time.monotonic() + 60.0
        while time.monotonic() < deadline and not all(s.events_sent > 0 for s in sessions):
            time.sleep(0.1)  # until every session is playing
        time.sleep(2.0)  # and past its first bars
        ctx = mp.get_context("spawn")
        q: Any = ctx.Queue()
        probe = ctx.Process(target=_stall_probe, args=(seconds, late_ms / 1000, q))
        probe.start()
        time.sleep(1.0)  # the probe's interpreter started
        base = host.stats
        host.timing.worst_s = 0.0
        dev0 = device.stats if device is not None else None
        if device is not None:
            device.reset_stats()
        cpu0, wall0 = time.process_time(), time.perf_counter()
        time.sleep(seconds)
        stats = host.stats
        dev1 = device.stats if device is not None else None
        wall1 = time.perf_counter()
        machine = q.get(timeout=30)
        probe.join(timeout=10)
        cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
        stalls = machine.pop("stalls")
        machine["stalls_over_1ms"] = len(stalls)
        run: dict[str, Any] = {"sessions": n, "cpu_cores": round(cpu, 2), "machine": machine}
        run["server"] = {
            "events": stats["events_sent"] - base["events_sent"],
            "late": stats["late_events"] - base["late_events"],
            "max_lateness_ms": round(host.timing.worst_s * 1000, 2),
        }
        if dev0 is not None and dev1 is not None:
            counters = ("events", "late", "composed_late", "dropped", "errors")
            run["device"] = {k: dev1[k] - dev0[k] for k in counters}
            run["device"]["max_lateness_ms"] = dev1["max_lateness_ms"]
            run["device"]["cpu_cores"] = round((dev1["cpu_s"] - dev0["cpu_s"]) / (wall1 - wall0), 3)
            run["device"]["priority"] = dev1["priority"]
            late_log = [e for e in device.late_events() if e[0] >= wall0] if device is not None else []
            run["device"]["late_outside_machine_stalls"] = _outside(late_log, stalls)
        run["events"] = run["device"]["events"] if "device" in run else run["server"]["events"]
        run["late"] = run["server"]["late"] + run.get("device", {}).get("late", 0)
        run["max_lateness_ms"] = max(run["server"]["max_lateness_ms"],
                                     run.get("device", {}).get("max_lateness_ms", 0.0))  # fmt: skip
        if profile.config.steer > 1:
            conductors = [s.conductor for s in sessions if s.conductor is not None]
            searched = sum(c.bars_searched for c in conductors)
            given_up = sum(c.searches_given_up for c in conductors)
            run["bars_searched"], run["searches_given_up"] = searched, given_up
        run["errors"] = host.errors[:3]
        return run
    finally:
        host.stop()


def _flood(port: int, seconds: float, senders: int, rate_per_s: float, queue: Any) -> None:
    """Send valid emotion messages from ``senders`` ports at ``rate_per_s`` in total (paced)."""
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(senders)]
    values = [[round(random.uniform(-1, 1), 3), round(random.uniform(-1, 1), 3)] for _ in range(256)]
    packets = [encode_message("/affetto/emotion", v) for v in values]
    sent = 0
    start = time.perf_counter()
    end = start + seconds
    target = ("127.0.0.1", port)
    while (now := time.perf_counter()) < end:
        due = int((now - start) * rate_per_s)
        while sent < due:
            socks[sent % senders].sendto(packets[sent % 256], target)
            sent += 1
        time.sleep(0.0005)
    queue.put(sent)


async def _osc_throughput(seconds: float, senders: int, rate_per_s: float) -> dict[str, Any]:
    composer = Composer(max_streams=64, intra_op_threads=1)
    settings = ServerSettings(osc_port=0, ws_port=0, rate_per_s=1e9, burst=1e9)
    server = AffettoServer(SessionHost(composer), settings)
    await server.start()
    try:
        q: Any = mp.get_context("spawn").Queue()
        proc = mp.get_context("spawn").Process(
            target=_flood, args=(server.osc_port, seconds, senders, rate_per_s, q)
        )
        applied0 = server.host.requests_applied
        proc.start()
        t0 = time.perf_counter()
        while proc.is_alive():
            await asyncio.sleep(0.05)
        wall = time.perf_counter() - t0
        sent = q.get(timeout=5)
        received = server.osc_packets_received
        await asyncio.sleep(0.5)
        applied = server.host.requests_applied - applied0
    finally:
        await server.close()
    return {"offered_per_s": rate_per_s, "sent": sent, "received": received, "per_s": round(received / wall),
            "applied": applied,
            "dropped_by_kernel": sent - received, "errors": server.host.errors[:3]}  # fmt: skip


def osc_throughput(seconds: float = 5.0, senders: int = 4, rate_per_s: float = 25_000.0) -> dict[str, Any]:
    """OSC messages per second parsed, validated and applied by a running server, offered at
    ``rate_per_s`` from another process."""
    return asyncio.run(_osc_throughput(seconds, senders, rate_per_s))


def idle_session_memory(n: int = 200) -> dict[str, Any]:
    """Resident memory growth per open, idle session (n sessions)."""
    composer = Composer(max_streams=n + 1, intra_op_threads=1)
    host = SessionHost(composer, idle_timeout_s=3600.0)
    host.start()
    try:
        warm = host.open(None)  # load everything once
        time.sleep(1.0)
        host.close(warm)
        time.sleep(0.5)
        before = _rss_bytes()
        for _ in range(n):
            host.open(None)
        time.sleep(3.0)  # started and composing their lookahead
        after = _rss_bytes()
    finally:
        host.stop()
    return {"sessions": n, "bytes_per_session": (after - before) // n, "target_bytes": 1 << 20}


async def _fuzz(osc_packets: int, ws_messages: int, seed: int) -> dict[str, Any]:
    from websockets.asyncio.client import connect

    rng = random.Random(seed)
    composer = Composer(max_streams=64, intra_op_threads=1)
    settings = ServerSettings(osc_port=0, ws_port=0, rate_per_s=1e9, burst=1e9)
    server = AffettoServer(SessionHost(composer), settings)
    await server.start()
    samples: tuple[tuple[str, list[OscArg]], ...] = (
        ("/affetto/emotion", [0.3, -0.4]), ("/affetto/state", ["combat"]), ("/affetto/stinger", ["hit"]),
        ("/affetto/transport", ["tempo", 120.0]), ("/affetto/status", []), ("/affetto/param", ["x", 1.0]),
    )  # fmt: skip
    valid = [encode_message(a, args) for a, args in samples]
    try:
        socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(8)]
        for s in socks:
            s.setblocking(False)
        target = ("127.0.0.1", server.osc_port)
        for i in range(osc_packets):
            kind = rng.random()
            if kind < 0.3:
                data = rng.randbytes(rng.randint(0, 64))
            else:
                buf = bytearray(rng.choice(valid))
                for _ in range(rng.randint(0, 4)):
                    buf[rng.randrange(len(buf))] = rng.randrange(256)
                if kind > 0.9:
                    buf = bytearray(b"#bundle\x00" + bytes(8) + struct.pack(">i", len(buf)) + buf)
                data = bytes(buf)
            try:
                socks[i % 8].sendto(data, target)
            except BlockingIOError:
                await asyncio.sleep(0)
            if i % 500 == 0:  # let the server (on this same loop) keep up, so every packet is parsed
                deadline = time.monotonic() + 1.0
                while i - server.osc_packets_received > 200 and time.monotonic() < deadline:
                    await asyncio.sleep(0)
                for s in socks:  # throw away the error replies
                    try:
                        while True:
                            s.recv(65536)
                    except BlockingIOError:
                        pass
        words = [
            "emotion",
            "state",
            "valence",
            "arousal",
            "combat",
            "NaN",
            "null",
            "[",
            "{",
            "}",
            '"op"',
            ":",
            ",",
        ]
        async with connect(f"ws://127.0.0.1:{server.ws_port}", max_size=None) as ws:
            for i in range(ws_messages):
                if rng.random() < 0.5:
                    msg = " ".join(rng.choice(words) for _ in range(rng.randint(1, 8)))
                else:
                    field = rng.choice(["valence", "name", "arousal"])
                    value: object = rng.choice([0.5, "combat", None, 9e9, []])
                    msg = json.dumps({"op": rng.choice(["emotion", "state", "stinger", "x"]), field: value})
                await ws.send(msg)
                if i % 500 == 0:
                    while True:  # keep the reply queue short
                        try:
                            await asyncio.wait_for(ws.recv(), 0.001)
                        except TimeoutError:
                            break
            await ws.send(json.dumps({"op": "status", "id": "final"}))
            healthy = False
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                reply = json.loads(await asyncio.wait_for(ws.recv(), 20))
                if reply.get("id") == "final":
                    healthy = reply.get("event") == "status"
                    break
    finally:
        await server.close()
    internal = [e for e in server.host.errors if "composing" in e][:5]
    parsed = server.osc_packets_received
    return {"osc_packets": osc_packets, "osc_packets_parsed": parsed, "ws_messages": ws_messages,
            "healthy": healthy, "internal_errors": internal}  # fmt: skip


def fuzz(osc_packets: int = 1_000_000, ws_messages: int = 100_000, seed: int = 0) -> dict[str, Any]:
    """Throw random and mutated messages at a running server; it must stay healthy."""
    return asyncio.run(_fuzz(osc_packets, ws_messages, seed))
