"""The statistics objects' protocol: pickles across backends, generators, shapes, sizes.

Each behaviour is checked against what ``scipy.stats`` does for its own objects (a frozen
``multivariate_normal``, the ``Covariance`` classes), and every error message is matched.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse, stats

import woodbury_sparse as ws
from conftest import rel_err, tol
from woodbury_sparse._factor import BACKEND
from woodbury_sparse.testing import ar1_precision

ROOT = Path(__file__).resolve().parents[1]


def grid_covariance() -> ws.SymmetricWoodburyMatrix:
    """``A⁻¹ + X Xᵀ`` with ``A`` a 6×10 grid precision (a Kronecker product of two AR(1)
    precisions): its sparse Cholesky factor has a fill-reducing permutation, which CHOLMOD
    and SciPy's SuperLU choose differently."""
    rng = np.random.default_rng(0)
    A = sparse.csc_array(sparse.kron(ar1_precision(6, 0.7), ar1_precision(10, 0.5)))
    return ws.WoodburyMatrix(A, np.eye(3), X=rng.standard_normal((60, 3)))


def small_covariance() -> ws.SymmetricWoodburyMatrix:
    return ws.WoodburyMatrix(ar1_precision(5, 0.6), np.eye(2), X=np.ones((5, 2)))


# -- a pickled covariance object on the other backend -----------------------------------------
def _checkouts() -> list[Path]:
    """This checkout and, for a git worktree, the main checkout (which holds the venvs)."""
    roots = [ROOT]
    git = ROOT / ".git"
    if git.is_file():  # "gitdir: <main>/.git/worktrees/<name>"
        text = git.read_text().strip()
        if text.startswith("gitdir:"):
            roots.append(Path(text.split(":", 1)[1].strip()).parents[2])
    return roots


def _other_python() -> Path | None:
    """The test environment of the other backend (``make test`` / ``make test-fallback``)."""
    venv = ".venv-fallback" if BACKEND == "cholmod" else ".venv"
    for root in _checkouts():
        python = root / venv / "bin" / "python"
        if python.exists():
            return python
    return None


def _sksparse05_python() -> Path | None:
    """``make test-sksparse05``'s environment (another CHOLMOD, SuiteSparse 7), if built."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    root = Path(os.environ.get("SKSPARSE05_DIR") or cache / "woodbury_sparse" / "sksparse05")
    python = root / "venv" / "bin" / "python"
    return python if python.exists() else None


# Run in the other process: unpickle the covariance object and evaluate everything that
# uses its maps. Prints JSON.
_CHILD = """
import json, pickle, sys
import numpy as np
from scipy import stats
import woodbury_sparse
with open(sys.argv[1], "rb") as fh:
    cov, x = pickle.load(fh)
n = x.shape[1]
print(json.dumps({
    "backend": woodbury_sparse.backend_info(),
    "module": woodbury_sparse.__file__,
    "logpdf": stats.multivariate_normal(np.zeros(n), cov).logpdf(x).tolist(),
    "log_pdet": float(cov.log_pdet),
    "colour": cov.colorize(np.eye(n)).tolist(),
    "white": cov.whiten(x).tolist(),
}))
"""


def _child_environments() -> list[pytest.param]:
    """(python, extra environment) of processes that factorise ``A`` another way."""
    other, sk05 = _other_python(), _sksparse05_python()
    return [
        pytest.param(
            other,
            {},
            id="other-backend-environment",
            marks=pytest.mark.skipif(other is None, reason="no environment of the other backend"),
        ),
        pytest.param(
            Path(sys.executable),
            {"WOODBURY_SPARSE_BACKEND": "scipy"},
            id="same-python-scipy-backend",
            marks=pytest.mark.skipif(BACKEND != "cholmod", reason="already on the SciPy backend"),
        ),
        pytest.param(
            sk05,
            {},
            id="sksparse05-environment",
            marks=pytest.mark.skipif(
                sk05 is None or Path(sys.executable) == sk05,
                reason="no scikit-sparse 0.5 environment, or running in it",
            ),
        ),
    ]


@pytest.mark.parametrize(("python", "extra_env"), _child_environments())
def test_pickled_covariance_is_exact_on_the_other_backend(tmp_path, python, extra_env):
    W = grid_covariance()
    n = W.n
    cov = W.as_covariance()
    x = np.random.default_rng(1).standard_normal((4, n))
    path = tmp_path / "covariance.pickle"
    path.write_bytes(pickle.dumps((cov, x)))
    env = {k: v for k, v in os.environ.items() if k != "WOODBURY_SPARSE_BACKEND"}
    env.update(extra_env, PYTHONPATH=str(ROOT))
    run = subprocess.run(
        [str(python), "-c", _CHILD, str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    child = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(child["module"]).resolve().is_relative_to(ROOT)  # this checkout's code
    assert child["backend"] != ws.backend_info()  # another backend or CHOLMOD version

    ref = W.toarray()
    # n·eps·κ: the dense reference and the factorised maps each make errors of a few of
    # these (c = 10, as in conftest.tol); the defect this guards against was 0.5 nats.
    rtol = tol(ref)
    ref_logpdf = stats.multivariate_normal(np.zeros(n), ref).logpdf(x)
    np.testing.assert_allclose(child["logpdf"], ref_logpdf, rtol=rtol)
    assert child["log_pdet"] == pytest.approx(np.linalg.slogdet(ref)[1], rel=rtol)
    colour = np.array(child["colour"])  # rows of Lᵀ with L Lᵀ = W
    assert rel_err(colour.T @ colour, ref) <= rtol
    white = np.array(child["white"])  # ‖L⁻¹ x‖² is the Mahalanobis distance
    maha = np.einsum("ij,ji->i", x, np.linalg.solve(ref, x.T))
    np.testing.assert_allclose(np.sum(white**2, axis=1), maha, rtol=rtol)


def test_pickled_covariance_rebuilds_its_maps_here():
    W = grid_covariance()
    cov = W.as_covariance()
    restored = pickle.loads(pickle.dumps(cov))
    assert isinstance(restored, ws.stats.WoodburyCovariance)
    assert restored._W is not W and restored._W.as_covariance() is restored
    x = np.random.default_rng(2).standard_normal((3, W.n))
    ref = W.toarray()
    rtol = tol(ref)
    np.testing.assert_allclose(
        stats.multivariate_normal(cov=restored).logpdf(x),
        stats.multivariate_normal(np.zeros(W.n), ref).logpdf(x),
        rtol=rtol,
    )


# -- random_state as SciPy's frozen distributions have it -----------------------------------
def test_setting_random_state_seeds_once_then_draws_advance():
    W = small_covariance()
    dist = ws.WoodburyNormal(cov=W)
    dist.random_state = 5
    assert isinstance(dist.random_state, np.random.Generator)
    first, second = dist.rvs(), dist.rvs()
    assert not np.array_equal(first, second)  # fresh draws on each call
    dist.random_state = 5  # the same seed replays them
    np.testing.assert_array_equal(dist.rvs(), first)
    np.testing.assert_array_equal(dist.rvs(), second)
    # as the constructor's seed does
    np.testing.assert_array_equal(ws.WoodburyNormal(cov=W, seed=5).rvs(size=2), [first, second])
    # SciPy's own frozen distribution: the setter makes a generator once, draws advance
    ref = stats.multivariate_normal(np.zeros(W.n), W.toarray())
    ref.random_state = 5
    assert not np.array_equal(ref.rvs(), ref.rvs())
    gen = np.random.default_rng(3)
    dist.random_state = gen
    assert dist.random_state is gen


@pytest.mark.parametrize(
    ("seed", "error"),
    [
        ("abc", TypeError),
        (2.5, TypeError),
        (-1, ValueError),
        ([1, -2], ValueError),
        ({}, TypeError),
        (True, TypeError),
        (np.array([1.5]), TypeError),
    ],
    ids=["str", "float", "negative", "negative-entry", "dict", "bool", "float-array"],
)
def test_bad_random_state_is_named(seed, error):
    W = small_covariance()
    expected = "must be None, a non-negative int, a sequence of non-negative ints"
    with pytest.raises(error, match=rf"`random_state` {expected}"):
        ws.rwnorm(2, 0.0, W, random_state=seed)
    with pytest.raises(error, match=rf"`random_state` {expected}"):
        ws.WoodburyNormal(cov=W).rvs(random_state=seed)
    with pytest.raises(error, match=rf"`random_state` {expected}"):
        ws.WoodburyNormal(cov=W).random_state = seed
    with pytest.raises(error, match=rf"`seed` {expected}"):
        ws.WoodburyNormal(cov=W, seed=seed)


@pytest.mark.parametrize(
    "seed",
    [None, 7, np.uint8(7), [1, 2], np.random.SeedSequence(4), np.random.PCG64(4)],
    ids=["none", "int", "numpy-int", "list", "seed-sequence", "bit-generator"],
)
def test_every_seed_kind_numpy_accepts_still_works(seed):
    W = small_covariance()
    assert ws.rwnorm(3, 0.0, W, random_state=seed).shape == (3, W.n)


# -- size --------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [2.5, "2", True, np.True_, np.float64(2.0), (2, 1.5), ("2",), {}])
def test_size_must_be_integers(size):
    W = small_covariance()
    with pytest.raises(TypeError, match="`size` must be an int or a tuple of ints, got"):
        ws.WoodburyNormal(cov=W).rvs(size=size)


@pytest.mark.parametrize("n", [2.5, "2", True, np.float64(2.0)])
def test_number_of_draws_must_be_an_integer(n):
    with pytest.raises(TypeError, match="`n` must be a non-negative integer, got"):
        ws.rwnorm(n, 0.0, small_covariance())


@pytest.mark.parametrize(
    ("size", "shape"),
    [(np.int64(3), (3,)), ((2, np.int32(2)), (2, 2)), ([3], (3,)), (np.array([2, 1]), (2, 1))],
)
def test_integer_sizes_of_any_kind(size, shape):
    W = small_covariance()
    assert ws.WoodburyNormal(cov=W, seed=0).rvs(size=size).shape == (*shape, W.n)
    assert ws.rwnorm(np.int64(2), 0.0, W).shape == (2, W.n)


def test_negative_size():
    with pytest.raises(ValueError, match=r"`size` must be non-negative, got \(2, -1\)"):
        ws.WoodburyNormal(cov=small_covariance()).rvs(size=(2, -1))


# -- whiten / colorize on points of the wrong dimension ---------------------------------------
@pytest.mark.parametrize("method", ["whiten", "colorize"])
@pytest.mark.parametrize("shape", [(2, 10), (4,), (), (5, 1), (10,)])
def test_maps_refuse_points_of_the_wrong_dimension(method, shape):
    W = small_covariance()  # n = 5
    cov = W.as_covariance()
    x = np.ones(shape)
    with pytest.raises(ValueError, match=rf"points of dimension 5.*got shape {re_shape(shape)}"):
        getattr(cov, method)(x)
    # SciPy's own Covariance classes raise ValueError on the same inputs
    scipy_cov = stats.Covariance.from_cholesky(np.linalg.cholesky(W.toarray()))
    if shape:
        with pytest.raises(ValueError):
            getattr(scipy_cov, method)(x)


def re_shape(shape: tuple[int, ...]) -> str:
    return str(shape).replace("(", r"\(").replace(")", r"\)")


def test_maps_keep_the_shape_of_stacked_points_and_map_complex_points():
    W = small_covariance()
    cov = W.as_covariance()
    ref = stats.Covariance.from_cholesky(np.linalg.cholesky(W.toarray()))
    # an exact symmetric root differs from the Cholesky one by an orthogonal factor:
    # compare what does not depend on it, and the shapes
    x = np.random.default_rng(3).standard_normal((2, 3, W.n))
    white = cov.whiten(x)
    assert white.shape == x.shape
    np.testing.assert_allclose(
        np.sum(white**2, axis=-1), np.sum(ref.whiten(x) ** 2, axis=-1), rtol=tol(W.toarray())
    )
    np.testing.assert_allclose(cov.colorize(white), x, rtol=0, atol=tol(W.toarray()))
    z = x + 1j * x[::-1]
    for method in ("whiten", "colorize"):
        f = getattr(cov, method)
        got = f(z)
        assert got.dtype == np.complex128
        np.testing.assert_array_equal(got, f(z.real) + 1j * f(z.imag))
    with pytest.raises(TypeError, match="`x` must hold numbers, got dtype <U1"):
        cov.whiten(np.full(W.n, "a"))


# -- the Dask front end: the same inputs --------------------------------------------------------
def test_dask_sampling_arguments():
    pytest.importorskip("dask")
    import woodbury_sparse.dask as wsd

    W = small_covariance()
    expected = "must be None, a non-negative int, a sequence of non-negative ints"
    with pytest.raises(TypeError, match=rf"`seed` {expected}"):
        wsd.sample(W, 5, seed="abc")
    with pytest.raises(ValueError, match=rf"`seed` {expected}"):
        wsd.sample(W, 5, seed=-3)
    for size in (2.5, "5", True):
        with pytest.raises(TypeError, match="`size` must be a non-negative integer, got"):
            wsd.sample(W, size, seed=0)
    for chunks in (2.5, "5", (2.5, 2.5), True):
        with pytest.raises(TypeError, match="`chunks` must be an int or a tuple of ints"):
            wsd.sample(W, 5, seed=0, chunks=chunks)
    for block_size in (2.5, True):
        with pytest.raises(TypeError, match="`block_size` must be a positive integer"):
            wsd.sample(W, 5, seed=0, block_size=block_size)
    with pytest.raises(TypeError, match="`batch_size` must be a positive integer"):
        wsd.map_grid(lambda s: W, [1.0], lambda W: 0, batch_size=1.5)
    with pytest.raises(TypeError, match="`x` must hold real numbers, got dtype complex128"):
        wsd.logpdf_grid(lambda s: W, [1.0], np.ones(W.n) * 1j)
    with pytest.raises(ValueError, match="`x` contains NaN or infinite values"):
        wsd.logpdf_grid(lambda s: W, [1.0], np.full(W.n, np.nan))
    # NumPy integers are integers
    assert wsd.sample(W, np.int64(4), seed=0, chunks=np.int64(2)).shape == (4, W.n)
