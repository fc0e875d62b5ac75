"""R's WoodburyMatrix and this library in one interleaved run (skipped without R).

One ``Rscript`` process (Matrix, WoodburyMatrix) stays up for the whole case and runs
one operation per request, timing it itself with ``proc.time()`` (CPU time in the
``one-thread`` regime, elapsed time otherwise; a few calls in a row where one takes
less than R's millisecond resolution) after a ``gc()``; our route runs in the
same round, timed by the harness's clock. Problems of the same kind and size on each
side (AR(1)+noise ``W = Q⁻¹ + I``, ρ = 0.9; the vignette's regression, p = 20), drawn by
each side's own generator. R's versions (R, Matrix, WoodburyMatrix, its BLAS and
LAPACK) are recorded in the notes. R and WoodburyMatrix are found through ``Rscript`` on
the ``PATH`` and ``R_LIBS_USER`` (the development set-up installs WoodburyMatrix into
``~/.cache/woodbury_sparse/R-lib``, which is added when it exists).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from scipy import sparse

import woodbury_sparse as ws
from woodbury_sparse.testing import ar1_precision

from ._harness import Case, Result, SelfTimed, Timings, fmt_ms, fmt_ratio, regime

R_LIB = Path.home() / ".cache" / "woodbury_sparse" / "R-lib"
P, SIGMA2, TAU, RHO = 20, 0.5, 2.0, 0.9

DRIVER = r"""
suppressMessages({library(Matrix); library(WoodburyMatrix)})
con <- file("stdin"); open(con)
cpu <- function() { t <- proc.time(); t[[1]] + t[[2]] }
wall <- function() proc.time()[[3]]
clock <- cpu
ops <- list()
say <- function(...) { cat(..., "\n", sep = ""); flush(stdout()) }
say("versions R=", R.version$major, ".", R.version$minor,
    " Matrix=", as.character(packageVersion("Matrix")),
    " WoodburyMatrix=", as.character(packageVersion("WoodburyMatrix")),
    " BLAS=", basename(extSoftVersion()[["BLAS"]]), " LAPACK=", basename(La_library()))
repeat {
  line <- readLines(con, n = 1)
  if (length(line) == 0 || line == "quit") break
  a <- strsplit(line, " ")[[1]]
  if (a[1] == "clock") { clock <- if (a[2] == "cpu") cpu else wall; say("ok"); next }
  if (a[1] == "setup") {
    set.seed(0); n <- as.integer(a[3])
    if (a[2] == "ar1") {
      rho <- as.numeric(a[4])
      Q <- bandSparse(n, k = c(0, 1), symmetric = TRUE,
                      diagonals = list(c(1, rep(1 + rho^2, n - 2), 1), rep(-rho, n - 1)))
      B <- Diagonal(n)
      x <- rnorm(n)
      make <- function() WoodburyMatrix(Q, B)
    } else {
      p <- as.integer(a[4]); s2 <- as.numeric(a[5]); tau <- as.numeric(a[6])
      X <- matrix(rnorm(n * p), n, p)
      A <- Diagonal(n, 1 / s2); B <- Diagonal(p, tau)
      x <- rnorm(n)
      make <- function() WoodburyMatrix(A, B, X = X)
    }
    W <- make(); invisible(dwnorm(x, 0, W, log = TRUE)); invisible(solve(W, x))
    ops <- list(
      logpdf_first = function() dwnorm(x, 0, make(), log = TRUE),
      logpdf_repeated = function() dwnorm(x, 0, W, log = TRUE),
      solve_first = function() sum(solve(make(), x)),
      solve_repeated = function() sum(solve(W, x))
    )
    say("ok"); next
  }
  if (a[1] == "run") {
    f <- ops[[a[2]]]; k <- as.integer(a[3]); invisible(gc())
    t0 <- clock(); for (i in seq_len(k)) r <- f(); t <- (clock() - t0) / k
    say(sprintf("%.9f %.17g", t, as.numeric(r))); next
  }
  say("error unknown command ", line)
}
"""


class RSession:
    """One Rscript process running :data:`DRIVER`; ``None`` from :meth:`start` without R."""

    def __init__(self, proc: subprocess.Popen, versions: str) -> None:
        self.proc = proc
        self.versions = versions

    @classmethod
    def start(cls) -> RSession | None:
        rscript = shutil.which("Rscript")
        if rscript is None:
            return None
        env = dict(os.environ)
        if R_LIB.is_dir():
            env["R_LIBS_USER"] = str(R_LIB)
        proc = subprocess.Popen(
            [rscript, "--vanilla", "-e", DRIVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        first = proc.stdout.readline().strip()
        if not first.startswith("versions"):  # Matrix or WoodburyMatrix missing
            proc.kill()
            proc.wait()
            return None
        return cls(proc, first.removeprefix("versions "))

    def ask(self, line: str) -> str:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline().strip()
        if not answer or answer.startswith("error"):
            raise RuntimeError(f"R: {answer or 'no answer'} (to {line!r})")
        return answer

    def run(self, op: str, calls: int = 1) -> SelfTimed:
        """Seconds per call of ``op``, timed by R over ``calls`` calls in a row
        (``proc.time`` counts whole milliseconds)."""
        return SelfTimed(float(self.ask(f"run {op} {calls}").split()[0]))

    def close(self) -> None:
        try:
            self.proc.stdin.write("quit\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):  # pragma: no cover
            self.proc.kill()
            self.proc.wait()


_SESSION: dict[str, RSession | None] = {}


def session() -> RSession | None:
    if "r" not in _SESSION:
        _SESSION["r"] = RSession.start()
    return _SESSION["r"]


def setup(param) -> SimpleNamespace:
    kind, n = param
    r = session()
    if r is None:
        raise RuntimeError(
            "R with Matrix and WoodburyMatrix is not installed (Rscript not on the PATH, or "
            "library(WoodburyMatrix) fails): this case is skipped"
        )
    r.ask("clock cpu" if regime() == "one-thread" else "clock wall")
    rng = np.random.default_rng(0)
    p = SimpleNamespace(x=rng.standard_normal(n), r=r)
    if kind == "ar1":
        p.Q, p.B = ar1_precision(n, RHO), sparse.eye_array(n, format="csc")
        p.make = lambda: ws.WoodburyMatrix(p.Q, p.B)
        r.ask(f"setup ar1 {n} {RHO}")
    else:
        p.X = rng.standard_normal((n, P))
        p.A = sparse.diags_array(np.full(n, 1 / SIGMA2))
        p.make = lambda: ws.SymmetricWoodburyMatrix(p.A, TAU * np.eye(P), X=p.X)
        r.ask(f"setup regression {n} {P} {SIGMA2} {TAU}")
    p.W = p.make()
    ws.dwnorm(p.x, covariance=p.W, log=True)
    p.W.solve(p.x)
    return p


def routes(param, p) -> dict:
    ours = {
        "logpdf_first": lambda: ws.dwnorm(p.x, covariance=p.make(), log=True),
        "logpdf_repeated": lambda: ws.dwnorm(p.x, covariance=p.W, log=True),
        "solve_first": lambda: p.make().solve(p.x),
        "solve_repeated": lambda: p.W.solve(p.x),
    }
    out = {}
    for op, f in ours.items():
        out[f"ours {op}"] = f
        out[f"R {op}"] = lambda op=op: p.r.run(op, _calls(param[1], op))
    return out


def _calls(n: int, op: str) -> int:
    """R's calls per timing: enough for ≥ 20 ms at its millisecond resolution."""
    if n >= 10**6:
        return 1
    return 20 if op.endswith("repeated") and n <= 10**5 else (5 if n <= 20000 else 1)


def timing(param, quick: bool) -> dict:
    n = param[1]
    if quick:
        return {"repeats": 3}
    return {"repeats": 3 if n >= 10**6 else 5, "warmup": True}


CAPTION = (
    "R's WoodburyMatrix and ours in one interleaved run: median times per call "
    "({clock}); *first*: construction + the call on a fresh operator; *repeated*: the call "
    "on a warm one. R / ours: round by round, median (quartiles)."
)


def tabulate(res: Result, param, p, t: Timings) -> None:
    kind, n = param
    what = "CPU time, one BLAS thread" if regime() == "one-thread" else "wall time"
    for op in ("logpdf_first", "logpdf_repeated", "solve_first", "solve_repeated"):
        res.add(
            CAPTION.format(clock=what),
            {
                "problem": "AR(1)+noise" if kind == "ar1" else f"regression p = {P}",
                "n": f"{n:,}",
                "operation": op.replace("_", " ").replace("logpdf", "dwnorm"),
                "ours (ms)": fmt_ms(t.median(f"ours {op}")),
                "R (ms)": fmt_ms(t.median(f"R {op}")),
                "R / ours": fmt_ratio(t.ratio(f"R {op}", f"ours {op}")),
            },
        )
    note = f"R session: {p.r.versions}."
    if note not in res.notes:
        res.notes.append(note)


def _params(quick: bool):
    if quick:
        return [("ar1", 10**4), ("regression", 2000)]
    return [
        ("ar1", 10**4),
        ("ar1", 10**5),
        ("ar1", 10**6),
        ("regression", 2000),
        ("regression", 20000),
    ]


CASE = Case(
    name="r",
    title="R's WoodburyMatrix vs ours, interleaved (skipped without R)",
    doc=__doc__,
    params=_params,
    setup=setup,
    routes=routes,
    timing=timing,
    tabulate=tabulate,
)

__all__ = ["CASE"]
