"""Shared timing harness: interleaved repeats, medians, peak memory, progress, machine info."""

from __future__ import annotations

import gc
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

OPENBLAS_DIR = "/usr/lib/x86_64-linux-gnu/openblas-pthread"
_T0 = time.perf_counter()


def progress(msg: str) -> None:
    """Print one progress line with the elapsed wall time of the whole run."""
    print(f"[{time.perf_counter() - _T0:7.1f}s] {msg}", flush=True)


def interleaved(
    funcs: dict[str, Callable[[], object]],
    repeats: int,
    setup: dict[str, Callable[[], object]] | None = None,
    warmup: bool = False,
    block: int = 1,
) -> dict[str, float]:
    """Median wall time (seconds) of each callable, repeats interleaved in rotating order.

    ``setup[name]`` (untimed) runs right before each timed call of ``name``; its result,
    when not None, is passed to the callable. The garbage collector runs once before
    each round, never inside a timed call. ``warmup=True`` runs each callable once,
    untimed, first: for millisecond-scale calls whose first run in a process pays for
    page faults and thread-pool start-up that no later call pays. ``block=k`` makes each
    round run ``k`` consecutive timed calls of each callable (``repeats`` rounds, so
    ``k · repeats`` samples): a call then mostly follows a call of the same kind, as in a
    user's loop, instead of one whose BLAS thread pool is still spinning (NumPy's and
    SciPy's OpenBLAS pools slow each other down for a few milliseconds after a switch).
    """
    names = list(funcs)
    times: dict[str, list[float]] = {k: [] for k in names}
    for name in names if warmup else ():
        arg = setup[name]() if setup and name in setup else None
        funcs[name]() if arg is None else funcs[name](arg)
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        gc.collect()
        for name in order:
            for _ in range(block):
                arg = setup[name]() if setup and name in setup else None
                t0 = time.perf_counter()
                funcs[name]() if arg is None else funcs[name](arg)
                times[name].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in times.items()}


@dataclass
class CaseResult:
    """What a case hands to the report: tables of rows, notes, and figure data."""

    name: str
    title: str
    tables: list[dict] = field(default_factory=list)  # {"caption", "columns", "rows"}
    notes: list[str] = field(default_factory=list)
    data: dict = field(default_factory=dict)  # raw numbers for figures and JSON
    seconds: float = 0.0

    def table(self, caption: str, columns: list[str], rows: list[dict]) -> None:
        self.tables.append({"caption": caption, "columns": columns, "rows": rows})


# -- peak memory --------------------------------------------------------------------------
def _status(field_name: str) -> int:
    """A field of /proc/self/status in bytes (0 when unavailable)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_delta(fn: Callable[[], object]) -> int | None:
    """Peak RSS growth (bytes) while running ``fn``: VmHWM after minus VmRSS before.

    Counts C allocations (CHOLMOD's factors) that tracemalloc cannot see.
    """
    gc.collect()
    if not reset_peak():
        return None
    before = _status("VmRSS")
    fn()
    return max(0, _status("VmHWM") - before)


def memory_in_subprocess(module: str, task: str, n: int, env: dict | None = None) -> int | None:
    """Run ``module.mem_task(task, n)`` in a fresh interpreter; its peak RSS growth in bytes.

    The child builds the inputs, resets VmHWM, runs the operation once (first call,
    factorisations included) and prints ``VmHWM − VmRSS_before``.
    """
    code = (
        "import json, importlib; from benchmarks._harness import peak_delta; "
        f"m = importlib.import_module({module!r}); fn = m.mem_task({task!r}, {n}); "
        "print('PEAK', json.dumps(peak_delta(fn)))"
    )
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, **(env or {})},
        check=False,
    )
    for line in out.stdout.splitlines():
        if line.startswith("PEAK "):
            return json.loads(line[5:])
    progress(f"  memory probe {module}:{task}:{n} failed: {out.stderr.strip()[-300:]}")
    return None


# -- machine, library and BLAS info -------------------------------------------------------
def loaded_blas() -> list[str]:
    """Paths of the BLAS/LAPACK shared libraries mapped into this process."""
    paths = set()
    try:
        with open("/proc/self/maps") as fh:
            for line in fh:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                if any(s in path for s in ("libblas", "liblapack", "openblas")):
                    paths.add(os.path.realpath(path))
    except OSError:
        pass
    return sorted(paths)


def cholmod_blas() -> str:
    """``"reference"`` or ``"openblas"``: the system BLAS that CHOLMOD is running on."""
    import sksparse.cholmod  # noqa: F401  (maps libblas.so.3)

    system = [p for p in loaded_blas() if "site-packages" not in p and "libblas" in p]
    if any("openblas" in p for p in system):
        return "openblas"
    return "reference" if system else "unknown"


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def machine_info() -> dict:
    """Machine, library versions and BLAS, for the report."""
    import scipy
    import sksparse

    import woodbury_sparse as ws

    cpu = ""
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if "model name" in ln), "")
    except OSError:
        pass
    mem = _status("MemTotal") or 0
    try:
        with open("/proc/meminfo") as fh:
            mem = int(fh.readline().split()[1]) * 1024
    except OSError:
        pass
    try:
        import threadpoolctl

        numpy_blas = [
            {k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for d in threadpoolctl.threadpool_info()
        ]
    except ImportError:
        numpy_blas = "threadpoolctl not installed"
    return {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem / 2**30, 1),
        "os": _run(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]) or platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "scikit_sparse": getattr(sksparse, "__version__", "?"),
        "woodbury_sparse": ws.__version__,
        "backend": ws.backend_info(),
        "cholmod_blas": cholmod_blas(),
        "system_blas_alternative": _run(
            ["update-alternatives", "--query", "libblas.so.3-x86_64-linux-gnu"]
        ).split("\n")[3:4],
        "numpy_blas": numpy_blas,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE"),
        "LD_LIBRARY_PATH": os.environ.get("LD_LIBRARY_PATH"),
    }


def fmt_ms(seconds: float | None) -> str:
    """Seconds as milliseconds with 3 significant figures."""
    if seconds is None or not np.isfinite(seconds):
        return "–"
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 1000 else f"{ms:,.0f}"


def fmt_ratio(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return "–"
    return f"{x:.2f}" if x < 100 else f"{x:,.0f}"


def fmt_mib(nbytes: int | None) -> str:
    return "–" if nbytes is None else f"{nbytes / 2**20:,.0f}"
