"""The one harness every case runs on: a case declares, :func:`run_case` measures.

A case is a :class:`Case`: its parameter values, an untimed set-up per value, and the
*routes* to time — the library's call, the direct (dense or bare sparse) computation, and
the *floor*, the bare library calls (a CHOLMOD factorisation and solve) that no
implementation can avoid. :func:`interleaved` runs every route once per round, in a new
order each round, so that a busy machine slows all routes alike; a case reports medians, and ratios
taken round by round (paired), with their quartiles. Absolute times are context only.
"""

from __future__ import annotations

import gc
import math
import os
import platform
import subprocess
import sys
import time
import traceback
import tracemalloc
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

_T0 = time.perf_counter()


def progress(msg: str) -> None:
    """Print one progress line with the elapsed wall time of the whole run."""
    print(f"[{time.perf_counter() - _T0:7.1f}s] {msg}", flush=True)


# -- thread regimes and the busy machine ---------------------------------------------------
#: The regimes a run can time in (``python -m benchmarks.run --regime NAME``):
#: ``one-thread``: every BLAS pool limited to one thread (threadpoolctl), CPU time of the
#: process (``time.process_time``; an R route reports its own ``proc.time``), which a busy
#: machine disturbs least; ``default``: the pools as found, wall time; ``busy``: the pools
#: as found, wall time, with one CPU-bound competitor process running throughout.
REGIMES = {
    "one-thread": "one BLAS thread (threadpoolctl), CPU time",
    "default": "default thread pools, wall time",
    "busy": "default thread pools, wall time, one CPU-bound competitor process running",
}
_regime = {"name": "default"}

#: A competitor process never outlives this many seconds, even if the run is killed.
COMPETITOR_BOUND_SECONDS = 4 * 3600

_SPIN = "import time\nend = time.monotonic() + {bound}\nwhile time.monotonic() < end:\n    pass\n"


def set_regime(name: str) -> None:
    """Choose the regime of the routes timed from now on (see :data:`REGIMES`)."""
    if name not in REGIMES:
        raise ValueError(f"regime must be one of {sorted(REGIMES)}, got {name!r}")
    _regime["name"] = name


def regime() -> str:
    return _regime["name"]


def clock() -> Callable[[], float]:
    """The clock of the regime: CPU time of the process for ``one-thread``, else wall time."""
    return time.process_time if _regime["name"] == "one-thread" else time.perf_counter


@contextmanager
def busy_machine(bound: float = COMPETITOR_BOUND_SECONDS):
    """Run the block with one CPU-bound competitor process, stopped (by its pid) after.

    The competitor spins in a loop that ends by itself after ``bound`` seconds, so it
    cannot outlive a run that dies without reaching the ``finally``.
    """
    proc = subprocess.Popen([sys.executable, "-c", _SPIN.format(bound=float(bound))])
    try:
        time.sleep(0.2)  # let the scheduler see it
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover
            proc.kill()
            proc.wait()


def regime_context() -> AbstractContextManager:
    """Thread limits (``one-thread``) or the competitor (``busy``) of the regime, entered
    around each parameter value of a case."""
    stack = ExitStack()
    if _regime["name"] == "one-thread":
        import threadpoolctl

        stack.enter_context(threadpoolctl.threadpool_limits(1))
    elif _regime["name"] == "busy":
        stack.enter_context(busy_machine())
    return stack


class SelfTimed(float):
    """Seconds a route measured itself (an R call timed by R's ``proc.time``): a route
    returning one is timed by it, not by the harness's clock around the call."""


@dataclass
class Timings:
    """Seconds per route and round (``samples[route][r]``) and peak bytes per route."""

    samples: dict[str, list[float]]
    peaks: dict[str, int] = field(default_factory=dict)

    def median(self, route: str) -> float:
        s = self.samples.get(route)
        return float(np.median(s)) if s else math.nan

    def total(self, route: str) -> float:
        return float(np.sum(self.samples[route]))

    def ratio(self, num: str, den: str) -> tuple[float, float, float]:
        """Median and quartiles of ``num / den`` over the rounds that timed both."""
        a, b = self.samples.get(num, []), self.samples.get(den, [])
        k = min(len(a), len(b))
        if k == 0:
            return (math.nan,) * 3
        q = np.percentile(np.divide(a[:k], b[:k]), [50, 25, 75])
        return float(q[0]), float(q[1]), float(q[2])

    def as_dict(self) -> dict:
        return {
            "median": {k: self.median(k) for k in self.samples},
            "samples": self.samples,
            "peaks": self.peaks,
        }


def interleaved(
    routes: dict[str, Callable],
    repeats: int | Callable[[str], int] = 1,
    *,
    args: Iterable | None = None,
    warmup: bool = False,
    block: int = 1,
) -> Timings:
    """Time each route over rounds, every route once per round, in a new order each round.

    Parameters
    ----------
    routes : dict of str to callable
        The computations to compare; called without arguments unless ``args`` is given.
    repeats : int or callable
        Rounds, or a function of a route's name giving its rounds: a route with fewer sits
        out the last rounds (slow first calls need fewer than fast repeated ones). Ratios
        pair the rounds both routes ran.
    args : iterable, optional
        One argument per round, passed to every route (the steps of a sweep or of a
        sequence of updates), drawn untimed at the start of its round (a generator
        builds each step's inputs only then); the rounds are then its items.
    warmup : bool
        One untimed call of each route first (not with ``args``): for millisecond calls
        whose first run in a process pays page faults and thread-pool start-up.
    block : int
        Consecutive calls of a route per round, their median being the round's sample: a
        call then follows one of its own kind, as in a user's loop, not one whose BLAS
        thread pool (NumPy's or SciPy's) is still spinning.

    Notes
    -----
    Each round's order is a permutation drawn from a generator seeded alike in every run:
    with a fixed cyclic order a route always followed the same one, and a first-call floor
    that ran right after our first call reused the memory that call had just freed (at
    n = 10⁵ the AR(1) floor's first matvec took 1,139 page faults there against 2,899 after
    any other route). The garbage collector runs before each route's turn and is off
    during it. The clock
    is the regime's (:func:`clock`); a route that returns :class:`SelfTimed` seconds is
    timed by them.
    """
    names = list(routes)
    want = {k: repeats(k) if callable(repeats) else repeats for k in names}
    for name in names if warmup else ():
        routes[name]()
    samples: dict[str, list[float]] = {k: [] for k in names}
    order = np.random.default_rng(0)  # the rounds' orders: the same in every run
    for r, arg in enumerate(args if args is not None else [None] * max(want.values())):
        live = [k for k in names if args is not None or r < want[k]]
        for name in [live[i] for i in order.permutation(len(live))]:
            gc.collect()
            gc.disable()
            times = []
            now = clock()
            try:
                for _ in range(block):
                    t0 = now()
                    out = routes[name]() if args is None else routes[name](arg)
                    elapsed = now() - t0
                    times.append(float(out) if isinstance(out, SelfTimed) else elapsed)
            finally:
                gc.enable()
            samples[name].append(float(np.median(times)))
    return Timings(samples)


def peak_memory(fn: Callable[[], object]) -> int:
    """Peak bytes allocated through Python's allocators while ``fn`` runs (tracemalloc).

    That covers NumPy and SciPy arrays, not C libraries' own buffers (CHOLMOD's factors):
    compare routes that hold the same factors, and read the difference.
    """
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@dataclass
class Result:
    """What a case hands to the report: tables (caption, columns, rows), notes, data."""

    name: str
    title: str
    tables: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)
    seconds: float = 0.0
    cpu_seconds: float = 0.0  # the process's CPU time (an R process's not included)

    def add(self, caption: str, row: dict) -> None:
        """Append ``row`` to the table captioned ``caption`` (made on first use)."""
        for table in self.tables:
            if table["caption"] == caption:
                table["rows"].append(row)
                return
        self.tables.append({"caption": caption, "columns": list(row), "rows": [row]})


def _timing(param: Any, quick: bool) -> dict:
    return {"repeats": 3 if quick else 7}


@dataclass(frozen=True)
class Case:
    """A benchmark case, declared; :func:`run_case` runs it.

    For each value of ``params(quick)``: ``problem = setup(param)`` (untimed), the routes
    ``routes(param, problem)`` timed by :func:`interleaved` with ``timing(param, quick)``
    as keywords, the peak memory of each callable of ``memory(param, problem)``, then
    ``tabulate(result, param, problem, timings)`` adds rows and notes. ``context(param)``
    wraps all of it (thread limits).
    """

    name: str
    title: str
    doc: str
    params: Callable[[bool], Iterable[Any]]
    setup: Callable[[Any], Any]
    routes: Callable[[Any, Any], dict[str, Callable]]
    tabulate: Callable[[Result, Any, Any, Timings], None]
    timing: Callable[[Any, bool], dict] = _timing
    context: Callable[[Any], AbstractContextManager] = lambda param: nullcontext()
    memory: Callable[[Any, Any], dict[str, Callable]] = lambda param, problem: {}
    notes: tuple[str, ...] = ()
    figure: Callable[[Result, Path], None] | None = None


def key(param: Any) -> str:
    """The key of a parameter value in ``Result.data`` and ``results.json``."""
    return "|".join(map(str, param)) if isinstance(param, tuple) else str(param)


def run_case(case: Case, quick: bool) -> Result:
    """Run a declared case: set-up, interleaved timings, memory and rows, per parameter.

    A failure is reported in the result's notes, with its traceback, and not raised: the
    other cases of a run still run.
    """
    res = Result(case.name, case.title, notes=list(case.notes))
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        for param in case.params(quick):
            progress(f"  {case.name}: {key(param)}")
            with regime_context(), case.context(param):
                problem = case.setup(param)
                t = interleaved(case.routes(param, problem), **case.timing(param, quick))
                t.peaks = {k: peak_memory(f) for k, f in case.memory(param, problem).items()}
                case.tabulate(res, param, problem, t)
            res.data[key(param)] = t.as_dict()
            del problem
    except Exception:
        res.notes.append("failed:\n\n```\n" + traceback.format_exc() + "```")
        traceback.print_exc()
    res.seconds = time.perf_counter() - t0
    res.cpu_seconds = time.process_time() - c0
    return res


# -- machine, libraries and BLAS, as found (nothing is changed) ---------------------------
def machine_info() -> dict:
    """Machine, library versions and thread pools (threadpoolctl), for the report."""
    import threadpoolctl

    import woodbury_sparse as ws

    try:  # CHOLMOD links the system BLAS: load it before asking threadpoolctl
        import sksparse.cholmod  # noqa: F401
    except ImportError:
        pass
    pools = threadpoolctl.threadpool_info()
    system = [p for p in pools if p["user_api"] == "blas" and "-packages" not in p["filepath"]]
    versions = {}
    for dist in ("numpy", "scipy", "scikit-sparse", "woodbury-sparse", "threadpoolctl"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    blas_env = ("OPENBLAS_", "OMP_", "MKL_", "BLIS_", "GOTO", "LD_LIBRARY_PATH")
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        **versions,
        "backend": ws.backend_info(),
        "thread pools": [
            f"{p['internal_api']} {p.get('version') or ''} {p.get('architecture') or ''} "
            f"×{p['num_threads']} ({Path(p['filepath']).name})"
            for p in pools
        ],
        "CHOLMOD's BLAS": ", ".join(f"{p['internal_api']} {p['filepath']}" for p in system)
        or "not seen by threadpoolctl (the reference BLAS, or one it does not know)",
        "BLAS environment": {k: v for k, v in os.environ.items() if k.startswith(blas_env)},
        "load average before": os.getloadavg(),
        "regime": f"{regime()}: {REGIMES[regime()]}",
    }


# -- formatting ----------------------------------------------------------------------------
def fmt_ms(seconds: float | None) -> str:
    """Seconds as milliseconds with 3 significant figures."""
    if seconds is None or not np.isfinite(seconds):
        return "–"
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 1000 else f"{ms:,.0f}"


def fmt_ratio(x: float | tuple[float, float, float] | None) -> str:
    """A ratio, or a (median, lower, upper quartile) triple as ``1.31 (1.25–1.40)``."""
    if isinstance(x, tuple):
        mid, lo, hi = x
        if not np.isfinite(mid) or fmt_ratio(lo) == fmt_ratio(hi):
            return fmt_ratio(mid)
        return f"{fmt_ratio(mid)} ({fmt_ratio(lo)}–{fmt_ratio(hi)})"
    if x is None or not np.isfinite(x):
        return "–"
    return f"{x:.2f}" if x < 100 else f"{x:,.0f}"


def fmt_mib(nbytes: float | None) -> str:
    return "–" if nbytes is None else f"{nbytes / 2**20:,.1f}"
