"""The benchmark harness's regimes: the busy machine's competitor starts and stops, the
clock follows the regime, and self-timed routes (R's) are timed by what they report."""

from __future__ import annotations

import time

import pytest

harness = pytest.importorskip("benchmarks._harness")


def test_busy_machine_starts_and_stops_its_competitor():
    with harness.busy_machine(bound=60) as proc:
        assert proc.poll() is None  # running
    assert proc.poll() is not None  # stopped, by its pid


def test_the_competitor_ends_by_itself_after_its_bound():
    with harness.busy_machine(bound=0.1) as proc:
        proc.wait(timeout=30)
        assert proc.returncode == 0


def test_clock_and_regime():
    try:
        harness.set_regime("one-thread")
        assert harness.clock() is time.process_time
        harness.set_regime("busy")
        assert harness.clock() is time.perf_counter
        with pytest.raises(ValueError, match="regime must be one of"):
            harness.set_regime("fast")
    finally:
        harness.set_regime("default")


def test_self_timed_routes_are_timed_by_what_they_report():
    t = harness.interleaved(
        {"r": lambda: harness.SelfTimed(0.25), "python": lambda: None}, repeats=3
    )
    assert t.samples["r"] == [0.25, 0.25, 0.25]
    assert all(s < 0.25 for s in t.samples["python"])
