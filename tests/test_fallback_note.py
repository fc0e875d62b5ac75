"""One message, once per process, when a large sparse factorisation runs without CHOLMOD.

Logged (level WARNING, logger ``woodbury_sparse._factor``), not warned: it must not
become an error where warnings are errors, as in this suite. A fresh interpreter with
scikit-sparse hidden (``sys.modules["sksparse"] = None``: the import fails as it does
where it is not installed) shows what a user without CHOLMOD sees on stderr, on every
backend this suite runs on; in this process, the backend at hand must note it exactly
when scikit-sparse is missing.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import woodbury_sparse as ws
from woodbury_sparse import _factor
from woodbury_sparse._factor import _sksparse
from woodbury_sparse.testing import grid_precision

LARGE = _factor.FALLBACK_NOTE_ORDER
NOTE = "factorising the {n}×{n} sparse symmetric block `A` with SciPy's SuperLU"

SCRIPT = textwrap.dedent(
    """
    import sys
    if {hide}:
        sys.modules["sksparse"] = None  # as if scikit-sparse were not installed
    import numpy as np
    import woodbury_sparse as ws
    from woodbury_sparse.testing import ar1_precision, grid_precision
    print("imported", ws.backend_info()["backend"], file=sys.stderr, flush=True)
    ws.WoodburyMatrix(ar1_precision(200, 0.5), np.eye(1), X=np.ones((200, 1))).slogdet()
    print("small done", file=sys.stderr, flush=True)
    n = {large}
    # a large banded block takes LAPACK's banded Cholesky, as fast as CHOLMOD: no note
    ws.WoodburyMatrix(ar1_precision(n, 0.5), np.eye(1), X=np.ones((n, 1))).slogdet()
    print("banded done", file=sys.stderr, flush=True)
    m = int(np.sqrt(n))  # a 2-D grid of order n: bandwidth m, SuperLU
    for kappa in (0.5, 0.6):  # two large factorisations: one note
        Q = grid_precision(m, kappa)
        ws.WoodburyMatrix(Q, np.eye(1), X=np.ones((m * m, 1))).slogdet()
    print("large done", file=sys.stderr, flush=True)
    """
)


def run(hide: bool, backend: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "WOODBURY_SPARSE_BACKEND"}
    if backend is not None:
        env["WOODBURY_SPARSE_BACKEND"] = backend
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(hide=hide, large=LARGE)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=True,
    )
    assert done.stdout == ""
    return done.stderr


def test_without_scikit_sparse_one_note_after_import_before_nothing_else():
    err = run(hide=True)
    lines = err.splitlines()
    assert lines[0] == "imported scipy"  # nothing on import
    assert lines[1] == "small done"  # nothing for a small matrix
    assert lines[2] == "banded done"  # nothing for a banded one
    assert lines[-1] == "large done"
    notes = lines[3:-1]
    assert len(notes) == 1, err  # once, for two large factorisations
    assert NOTE.format(n=LARGE) in notes[0]
    assert "pip install 'woodbury-sparse[cholmod]'" in notes[0]


@pytest.mark.skipif(not _sksparse.AVAILABLE, reason="scikit-sparse is not installed here")
def test_no_note_with_cholmod_or_when_the_fallback_is_asked_for():
    assert run(hide=False).splitlines() == [
        "imported cholmod",
        "small done",
        "banded done",
        "large done",
    ]
    assert run(hide=False, backend="scipy").splitlines() == [
        "imported scipy",
        "small done",
        "banded done",
        "large done",
    ]


def test_this_process_notes_exactly_when_scikit_sparse_is_missing(monkeypatch, caplog):
    monkeypatch.setattr(_factor, "_fallback_noted", threading.Event())  # a fresh process's
    caplog.set_level(logging.INFO, logger="woodbury_sparse")
    m = int(np.sqrt(LARGE))  # a 2-D grid (not banded: the banded Cholesky takes no note)
    for kappa in (0.3, 0.4):
        A = grid_precision(m, kappa)
        W = ws.WoodburyMatrix(A, np.eye(1), X=np.ones((m * m, 1)))
        assert np.isfinite(W.slogdet().logabsdet)
    records = [r for r in caplog.records if r.name == "woodbury_sparse._factor"]
    if _sksparse.AVAILABLE:
        assert records == []
    else:
        assert len(records) == 1
        assert records[0].levelno == logging.WARNING
        assert NOTE.format(n=LARGE) in records[0].getMessage()
