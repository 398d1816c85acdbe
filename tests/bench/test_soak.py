"""``affetto bench flood`` and ``affetto bench soak``, each for a few seconds with tiny parameters
(the numbers are the benchmarks'; here: they run end to end and report sane fields)."""

from __future__ import annotations

import json

import pytest

from engine.bench.soak import soak
from engine.cli import main


def test_bench_flood_json(capsys: pytest.CaptureFixture[str]) -> None:
    """One client floods at its budget; the others' changes land and their beats go out."""
    assert main(["bench", "flood", "--seconds", "3", "--sessions", "2", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["flood"] is True and r["sessions"] == 2 and r["osc_sessions"] == 1
    flooder = r["flooder"]
    assert flooder["messages"] == 64 * flooder["bundles"] > 0
    assert 0.5 * r["budget_per_s"] < flooder["per_s"] < 1.5 * r["budget_per_s"]  # paced at the budget
    latency = r["change_latency"]
    assert latency["websocket"]["n"] >= 4 and latency["osc"]["n"] >= 2
    assert 0 < latency["p50_ms"] <= latency["p99_ms"] <= latency["max_ms"] < 2000
    assert latency["target_ms"] == 20.0 and latency["sync"] == "immediate"
    late = r["lateness"]
    assert late["sessions"] == 3 and late["events"] == late["n"] > 0
    assert 0 <= late["p99_ms"] <= late["max_ms"] and late["target_p99_ms"] == 5.0
    assert 0 <= late["late_outside_machine_stalls"] <= late["late"] <= late["events"]
    assert r["machine"]["wakes"] > 100 and "stalls" not in r["machine"]
    start = r["new_session_start"]
    assert start["n"] >= 1 and start["never_started"] == 0 and 50 < start["p50_ms"] < 10_000
    assert r["server"]["errors"] == 0 and r["beats_received"] > 0
    assert set(r["meets_targets"]) == {"change_latency_p99", "lateness_p99"}


def test_bench_soak_short_run() -> None:
    """A short soak with fast churn: every session held, notes all ended, no internal error."""
    lines: list[str] = []
    r = soak(6, minutes=0.2, interval_s=4.0, change_every_s=0.5, progress=lines.append)
    samples, s = r["samples"], r["summary"]
    assert len(samples) == 3 and len(lines) == 4  # the start, then one line per interval
    assert all(x["rss_mib"] > 10 and x["fds"] > 3 and x["sessions"] >= 6 for x in samples)
    assert all(x["events"] > 0 and x["subscribers"] >= 1 for x in samples)
    assert s["sessions_held"] == 6 and s["sessions_not_held"] == 0
    assert s["hanging_notes"] == 0 and s["notes_heard"]["on"] > 0 and s["notes_heard"]["off"] > 0
    assert s["internal_errors"] == 0 and s["first_errors"] == []
    assert s["client_error_events"] == {}
    assert set(s["changes"]) >= {"emotion", "state", "param", "transport", "stinger"}
    churn = s["churn"]
    assert churn["ws_opened"] == churn["ws_closed"] > 4 and churn["osc_confirms"] >= 1
    assert churn["reconnects"] + churn["switches"] + churn["listeners"] > 0 and churn["lost"] == 0
    assert isinstance(s["rss_growth_pct"], float) and isinstance(s["fds_growth_pct"], float)
    assert s["streams_left"] == 0  # every session closed and released


def test_bench_soak_needs_two_intervals(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "soak", "--minutes", "1", "--interval-s", "60"]) == 1
    assert "fewer than two intervals" in capsys.readouterr().err
