"""Progress of long work: network scans (``ggm``) and Dask computations (``dask.compute``).

A callback sees ``(0, total)`` first, ``done`` never decreasing, and ``(total, total)``
last; the results do not depend on ``progress``; nothing is written unless asked (and
then only to a terminal); a bad ``progress`` is refused before any work.
"""

from __future__ import annotations

import importlib.util
import io
import itertools
import sys

import numpy as np
import pytest
from scipy import sparse
from scipy.sparse.linalg import aslinearoperator

from woodbury_sparse import _progress, ggm
from woodbury_sparse.testing import ar1_precision

HAVE_DASK = importlib.util.find_spec("dask") is not None
HAVE_DISTRIBUTED = importlib.util.find_spec("distributed") is not None
HAVE_TQDM = importlib.util.find_spec("tqdm") is not None
N = 23  # not a multiple of the block sizes below: a last, shorter block


class Recorder:
    """A progress callback that keeps every call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        assert isinstance(done, int) and isinstance(total, int)
        self.calls.append((done, total))

    def check(self, total: int | None = None) -> None:
        """``(0, total)`` first, ``done`` increasing, ``(total, total)`` last."""
        assert self.calls, "the callback was never called"
        totals = {t for _, t in self.calls}
        assert len(totals) == 1, totals
        (seen_total,) = totals
        if total is not None:
            assert seen_total == total
        done = [d for d, _ in self.calls]
        assert done[0] == 0
        assert done[-1] == seen_total
        assert all(b > a for a, b in itertools.pairwise(done))  # reported as it grows


class FakeTerminal(io.StringIO):
    """``sys.stderr`` as a terminal would be (``isatty()`` true), recording what it got."""

    def isatty(self) -> bool:
        return True


def precisions() -> dict[str, object]:
    rng = np.random.default_rng(2)
    theta = ar1_precision(N, 0.5).tocsr()
    X = rng.standard_normal((N, 2))
    return {
        "dense": theta.toarray(),
        "sparse": theta,
        "lazy": ggm.updated_precision(theta, X),
        "operator": aslinearoperator(sparse.csr_array(theta)),
    }


PRECISIONS = precisions()
PAIRS = N * (N - 1) // 2


# -- network scans --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(PRECISIONS))
@pytest.mark.parametrize("block_size", [1, 5, None])
def test_scans_report_pairs_up_to_the_total(kind, block_size):
    P = PRECISIONS[kind]
    rec = Recorder()
    edges = ggm.strong_edges(P, 0.1, block_size=block_size, progress=rec)
    rec.check(PAIRS)
    quiet = ggm.strong_edges(P, 0.1, block_size=block_size)
    np.testing.assert_array_equal(edges.i, quiet.i)
    np.testing.assert_array_equal(edges.rho, quiet.rho)
    expected_calls = 1 + -(-N // (block_size or N))  # (0, total) and one per block
    assert len(rec.calls) <= expected_calls

    rec = Recorder()
    summary = ggm.network_summary(P, 0.1, block_size=block_size, progress=rec)
    rec.check(PAIRS)
    assert summary == ggm.network_summary(P, 0.1, block_size=block_size)

    rec = Recorder()
    top = ggm.top_changed_edges(P, PRECISIONS["lazy"], 3, block_size=block_size, progress=rec)
    rec.check(PAIRS)
    quiet_top = ggm.top_changed_edges(P, PRECISIONS["lazy"], 3, block_size=block_size)
    np.testing.assert_array_equal(top.change, quiet_top.change)


def test_pairs_are_counted_row_by_row():
    # block_size=1: after row r the pairs (i, j), i ≤ r, are done
    rec = Recorder()
    ggm.network_summary(PRECISIONS["dense"], 0.1, block_size=1, progress=rec)
    expected = [0] + [sum(N - 1 - i for i in range(r + 1)) for r in range(N - 1)]
    assert [d for d, _ in rec.calls] == expected


def test_an_empty_network_reports_zero_of_zero():
    rec = Recorder()
    ggm.strong_edges(np.zeros((0, 0)), 0.1, progress=rec)
    assert rec.calls == [(0, 0)]


@pytest.mark.parametrize("progress", [None, False, True])
def test_silent_unless_asked_and_on_a_terminal(progress, capsys):
    # pytest captures stderr: not a terminal, so even True writes nothing
    assert not sys.stderr.isatty()
    ggm.strong_edges(PRECISIONS["sparse"], 0.1, block_size=4, progress=progress)
    ggm.network_summary(PRECISIONS["sparse"], 0.1, progress=progress)
    out, err = capsys.readouterr()
    assert out == "" and err == ""


class FakeKernelStream(io.StringIO):
    """A Jupyter kernel's ``sys.stderr`` (``ipykernel.iostream.OutStream``): no tty, shown."""

    def isatty(self) -> bool:
        return False


FakeKernelStream.__module__ = "ipykernel.iostream"


@pytest.mark.parametrize("stream", [FakeTerminal, FakeKernelStream])
def test_a_line_on_a_terminal_without_tqdm(monkeypatch, stream):
    terminal = stream()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(_progress, "tqdm", None)
    ggm.strong_edges(PRECISIONS["dense"], 0.1, block_size=5, progress=True)
    text = terminal.getvalue()
    assert text.startswith("\rstrong edges:   0% (0/253 pair)")
    assert text.endswith(f"\rstrong edges: 100% ({PAIRS}/{PAIRS} pair)\n")


@pytest.mark.skipif(not HAVE_TQDM, reason="tqdm (the progress extra) is not installed")
def test_a_tqdm_bar_on_a_terminal(monkeypatch):
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    ggm.network_summary(PRECISIONS["dense"], 0.1, block_size=5, progress=True)
    text = terminal.getvalue()
    assert "network summary: 100%" in text
    assert f"{PAIRS}/{PAIRS}" in text


@pytest.mark.parametrize("bad", ["yes", 1, 0.5, np.True_, [print]], ids=repr)
def test_bad_progress_is_refused_before_work(bad):
    expected = r"`progress` must be None, False \(silent\), True \(a bar on a terminal\)"
    with pytest.raises(TypeError, match=expected):
        ggm.strong_edges(PRECISIONS["dense"], 0.1, progress=bad)
    with pytest.raises(TypeError, match=expected):
        ggm.network_summary(PRECISIONS["dense"], 0.1, progress=bad)
    with pytest.raises(TypeError, match=expected):
        ggm.top_changed_edges(PRECISIONS["dense"], PRECISIONS["dense"], progress=bad)


def test_a_callback_that_raises_stops_the_scan():
    def stop(done, total):
        if done:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ggm.strong_edges(PRECISIONS["dense"], 0.1, block_size=2, progress=stop)


# -- Dask -----------------------------------------------------------------------------------
def build(s):
    import woodbury_sparse as ws

    return ws.WoodburyMatrix(ar1_precision(6, 0.5), np.eye(2) / s, X=np.ones((6, 2)))


def logdet(W):
    return W.logdet()


@pytest.mark.skipif(not HAVE_DASK, reason="needs the dask extra")
@pytest.mark.parametrize("scheduler", ["synchronous", "threads"])
def test_dask_compute_reports_tasks(scheduler):
    import dask

    import woodbury_sparse.dask as wsd

    grid = np.linspace(0.5, 3.0, 7)
    logp = wsd.logpdf_grid(build, grid, np.ones(6), batch_size=2)
    sweep = wsd.map_grid(build, grid, logdet, batch_size=3)
    rec = Recorder()
    values, logdets = wsd.compute(logp, sweep, scheduler=scheduler, progress=rec)
    rec.check()
    assert rec.calls[-1][1] >= 4 + 3  # at least the batches of both
    expected_logp, expected_logdets = dask.compute(logp, sweep, scheduler="synchronous")
    np.testing.assert_array_equal(values, expected_logp)
    assert logdets == expected_logdets
    silent_logp, silent_logdets = wsd.compute(logp, sweep, scheduler=scheduler)
    np.testing.assert_array_equal(silent_logp, expected_logp)
    assert silent_logdets == expected_logdets


@pytest.mark.skipif(not HAVE_DASK, reason="needs the dask extra")
def test_dask_compute_refuses_bad_arguments():
    import dask.array as da

    import woodbury_sparse.dask as wsd

    x = da.ones(3)
    with pytest.raises(TypeError, match=r"`progress` must be None, False"):
        wsd.compute(x, progress="bar")
    with pytest.raises(TypeError, match=r"`collections\[1\]` must be a Dask collection"):
        wsd.compute(x, np.ones(3))
    with pytest.raises(ValueError, match=r"give `client` .* or `scheduler` .*, not both"):
        wsd.compute(x, client=object(), scheduler="threads")


@pytest.mark.skipif(not HAVE_DISTRIBUTED, reason="needs distributed")
def test_dask_compute_reports_tasks_on_a_cluster():
    import distributed

    import woodbury_sparse.dask as wsd

    grid = np.linspace(0.5, 3.0, 5)
    with (
        distributed.LocalCluster(
            n_workers=1,
            processes=False,
            threads_per_worker=2,
            dashboard_address=None,
            scheduler_kwargs={"dashboard_address": None},
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        rec = Recorder()
        sweep = wsd.map_grid(build, grid, logdet, batch_size=1)
        (logdets,) = wsd.compute(sweep, client=client, progress=rec)
        rec.check()
        assert rec.calls[-1][1] >= len(grid)
        assert wsd.compute(sweep, client=client) == (logdets,)  # silent: the same
    assert logdets == [logdet(build(s)) for s in grid]
