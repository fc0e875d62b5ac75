"""The benchmark case that times the SciPy fallback beside CHOLMOD (``benchmarks/case_fallback``).

Its second process must really run the fallback, compute the same log density, and time
itself in the regime's clock; the timings themselves are the benchmark's, not a test's.
"""

from __future__ import annotations

import math

import pytest

case = pytest.importorskip("benchmarks.case_fallback")
harness = pytest.importorskip("benchmarks._harness")


@pytest.mark.parametrize("kind, n", [("ar1", 3000), ("grid", 30**2)])
def test_the_fallback_process_runs_scipy_and_agrees(kind, n):
    harness.set_regime("one-thread")
    try:
        p = case.setup((kind, n))
        try:
            assert p.session.backend["backend"] == "scipy"
            # Two backends, one log density: |Δ| ≤ c·n·eps·|value| (c = 10, both backward
            # stable; the log-determinants are sums of n logarithms).
            assert math.isclose(p.fallback_value, p.value, rel_tol=10 * n * 2.2e-16)
            routes = case.routes((kind, n), p)
            assert set(routes) == {
                f"{side} {op}" for side in ("cholmod", "fallback") for op in case.OPS
            }
            for op in case.OPS:
                seconds = routes[f"fallback {op}"]()
                assert isinstance(seconds, harness.SelfTimed) and seconds >= 0.0
        finally:
            p.session.close()
        assert p.session.proc.returncode == 0
    finally:
        harness.set_regime("default")


def test_a_refused_request_names_itself():
    harness.set_regime("default")
    session = case.FallbackSession()
    try:
        with pytest.raises(RuntimeError, match="refused 'bogus'"):
            session.ask("bogus")
    finally:
        session.close()
