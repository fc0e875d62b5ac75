"""The factorisation layer: which backend runs, which method each kind of block gets."""

from __future__ import annotations

import ctypes
import json
import os
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from scipy import sparse

import woodbury_sparse as ws
from conftest import EPS, NAMES, case, rel_err
from woodbury_sparse import testing
from woodbury_sparse._factor import BACKEND, factorize

CHOLMOD = BACKEND == "cholmod"


# -- the backend CI claims to run ------------------------------------------------------------
def test_backend_info_matches_the_environment():
    info = ws.backend_info()
    assert set(info) == {"backend", "scikit_sparse"}
    assert info["backend"] in ("cholmod", "scipy")
    expect = os.environ.get("WOODBURY_SPARSE_EXPECT_BACKEND")
    if expect:
        assert info["backend"] == expect, f"expected the {expect} backend, running {info}"
    expect_version = os.environ.get("WOODBURY_SPARSE_EXPECT_SKSPARSE")
    if expect_version:
        assert info["scikit_sparse"] is not None
        assert info["scikit_sparse"].startswith(expect_version), info
    if info["backend"] == "scipy":
        assert info["scikit_sparse"] is None
    else:
        import sksparse

        assert info["scikit_sparse"] == sksparse.__version__
    requested = os.environ.get("WOODBURY_SPARSE_BACKEND", "").strip().lower()
    if requested == "scipy":
        assert info["backend"] == "scipy"


# -- the method per kind -----------------------------------------------------------------------
def tridiagonal(n, diag=4.0, off=-1.0):
    return diag * np.eye(n) + off * (np.eye(n, k=1) + np.eye(n, k=-1))


def sym_indefinite_sparse(n=60):
    return testing.random_symmetric_indefinite(n, np.random.default_rng(5))


def check_factor(factor, m, *, symmetric):
    """Solves (and transposed solves) and slogdet of ``factor`` agree with NumPy."""
    full = m.toarray() if sparse.issparse(m) else np.asarray(m)
    n = full.shape[0]
    b = np.linspace(-1, 2, n)
    kappa = np.linalg.cond(full)
    t = 10 * n * np.finfo(float).eps * kappa
    assert rel_err(full @ factor.solve(b), b) <= t
    assert rel_err(full @ factor.solve(np.stack([b, b**2], 1)), np.stack([b, b**2], 1)) <= t
    assert rel_err(full.T @ factor.solve(b, transpose=True), b) <= t
    assert rel_err(full.T @ factor.T.solve(b), b) <= t
    sign, logabsdet = factor.slogdet
    ref_sign, ref_log = np.linalg.slogdet(full)
    assert sign == ref_sign
    assert abs(logabsdet - ref_log) <= t
    assert factor.n == n
    if symmetric:
        assert factor.T is factor


@pytest.mark.parametrize(
    ("label", "make", "kind", "symmetric", "methods", "pd"),
    [
        ("diagonal SPD", lambda: np.array([1.0, 2.0, 3.0]), "diagonal", True, {"diagonal"}, True),
        (
            "diagonal indefinite",
            lambda: np.array([1.0, -2.0]),
            "diagonal",
            True,
            {"diagonal"},
            False,
        ),
        ("dense SPD", lambda: tridiagonal(20), "dense", True, {"dense-cholesky"}, True),
        ("dense indefinite", lambda: tridiagonal(20, 0.5), "dense", True, {"dense-lu"}, False),
        (
            "dense general",
            lambda: tridiagonal(20) + np.eye(20, k=2),
            "dense",
            False,
            {"dense-lu"},
            False,
        ),
        (
            "sparse SPD",  # a band: LAPACK's banded Cholesky on the SciPy backend
            lambda: sparse.csc_array(tridiagonal(50)),
            "sparse",
            True,
            {"cholmod-llt"} if CHOLMOD else {"lapack-banded-cholesky"},
            True,
        ),
        (
            "sparse SPD, wide band",  # bandwidth 20 > 16: SuperLU on the SciPy backend
            lambda: testing.grid_precision(20, 0.5, 20),
            "sparse",
            True,
            {"cholmod-llt"} if CHOLMOD else {"superlu-ldlt"},
            True,
        ),
        (
            "sparse symmetric indefinite",
            sym_indefinite_sparse,
            "sparse",
            True,
            {"cholmod-ldlt"} if CHOLMOD else {"superlu-ldlt", "superlu"},
            False,
        ),
        (
            "sparse general",
            lambda: sparse.csc_array(tridiagonal(50) + 0.5 * np.eye(50, k=3)),
            "sparse",
            False,
            {"superlu"},
            False,
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v else None,
)
def test_factor_method_per_kind(label, make, kind, symmetric, methods, pd):
    m = make()
    n = m.shape[0]
    factor = factorize(m, kind, n, symmetric, "A")
    assert factor.method in methods, label
    assert factor.positive_definite is pd
    full = np.diag(m) if kind == "diagonal" else m
    check_factor(factor, full, symmetric=symmetric)


def test_identity_factor():
    factor = factorize(None, "identity", 7, True, "B")
    assert factor.method == "identity"
    assert factor.positive_definite
    assert factor.slogdet == (1.0, 0.0)
    np.testing.assert_array_equal(factor.solve(np.arange(7.0)), np.arange(7.0))


def test_methods_through_the_operator():
    n = 40
    W = ws.WoodburyMatrix(
        sparse.csc_array(tridiagonal(n)), sym_indefinite_sparse(n), X=sparse.eye_array(n)
    )
    W.slogdet()
    assert W._parts.A.factor.method == ("cholmod-llt" if CHOLMOD else "lapack-banded-cholesky")
    assert W._parts.B.factor.method in (
        {"cholmod-ldlt"} if CHOLMOD else {"superlu-ldlt", "superlu"}
    )
    assert W._O.factor.method.startswith("dense")  # small O is factorised densely


def test_large_sparse_capacitance_is_factorised_sparsely():
    # X = I makes O = B + A: 400×400 and tridiagonal, so it stays sparse
    n = 400
    A = testing.ar1_precision(n, 0.9)
    W = ws.WoodburyMatrix(A, sparse.eye_array(n) * 2.0 + A)
    assert type(W) is ws.SymmetricWoodburyMatrix
    assert sparse.issparse(W.capacitance)
    b = np.cos(np.arange(n))
    W.solve(b)
    assert W._O.factor.method == ("cholmod-llt" if CHOLMOD else "lapack-banded-cholesky")
    assert W._O.factor.positive_definite
    ref = np.linalg.inv(A.toarray()) + np.linalg.inv((sparse.eye_array(n) * 2.0 + A).toarray())
    kappa = np.linalg.cond(ref)
    t = 10 * n * np.finfo(float).eps * kappa
    assert rel_err(W.solve(b), np.linalg.solve(ref, b)) <= t
    assert abs(W.slogdet()[1] - np.linalg.slogdet(ref)[1]) <= t


def zero_pivot_matrix(pairs=30):
    """Block diagonal of [[0, 1], [1, 0]] (plus a coupling): LDLᵀ meets a zero pivot."""
    m = sparse.kron(sparse.eye_array(pairs), sparse.csc_array([[0.0, 1.0], [1.0, 0.0]]))
    chain = 0.25 * (sparse.eye_array(2 * pairs, k=2) + sparse.eye_array(2 * pairs, k=-2))
    return sparse.csc_array(m + chain)


def test_zero_pivot_falls_back_to_superlu():
    m = zero_pivot_matrix()
    n = m.shape[0]
    factor = factorize(m, "sparse", n, True, "A")
    assert factor.method.startswith("superlu")
    assert not factor.positive_definite
    check_factor(factor, m, symmetric=True)
    # and through an operator, as A and as B
    for kwargs in (dict(A=m, B=sparse.eye_array(n)), dict(A=sparse.eye_array(n), B=m)):
        W = ws.WoodburyMatrix(**kwargs)
        assert type(W) is ws.SymmetricWoodburyMatrix
        ref = testing.dense_woodbury(**kwargs)
        b = np.linspace(0, 1, n)
        t = 10 * n * np.finfo(float).eps * np.linalg.cond(ref) * np.linalg.cond(m.toarray())
        assert rel_err(W @ b, ref @ b) <= t
        assert rel_err(W.solve(b), np.linalg.solve(ref, b)) <= t
        assert W.slogdet()[0] == np.linalg.slogdet(ref)[0]
        assert abs(W.slogdet()[1] - np.linalg.slogdet(ref)[1]) <= t


@pytest.mark.parametrize("delta", [1e-3, 1e-6, 1e-9, 1e-12])
def test_element_growth_of_unpivoted_ldlt_is_not_accepted(delta):
    """[[δ, 1], [1, δ]] blocks: perfectly conditioned, but an unpivoted LDLᵀ has a pivot δ.

    Its solves would carry errors of ``eps/δ``; the factorisation layer must notice and
    use a pivoted LU instead, so the errors stay at ``n·eps·κ``.
    """
    pairs = 40
    block = sparse.csc_array([[delta, 1.0], [1.0, delta]])
    chain = 0.1 * (sparse.eye_array(2 * pairs, k=2) + sparse.eye_array(2 * pairs, k=-2))
    m = sparse.csc_array(sparse.kron(sparse.eye_array(pairs), block) + chain)
    n = m.shape[0]
    factor = factorize(m, "sparse", n, True, "A")
    assert not factor.positive_definite
    check_factor(factor, m, symmetric=False)
    W = ws.WoodburyMatrix(m, sparse.eye_array(n))
    ref = testing.dense_woodbury(m, sparse.eye_array(n))
    x = np.cos(np.arange(n))
    t = 10 * n * np.finfo(float).eps * max(np.linalg.cond(ref), np.linalg.cond(m.toarray()))
    assert rel_err(W @ x, ref @ x) <= t
    assert rel_err(W.solve(x), np.linalg.solve(ref, x)) <= t
    assert abs(W.slogdet()[1] - np.linalg.slogdet(ref)[1]) <= t


def test_numerically_singular_sparse_block_is_refused_without_backend_warnings():
    """cond ≈ 1e17: refused as singular; scikit-sparse 0.5's rcond warning must not leak."""
    n = 300
    m = sparse.csc_array(
        sparse.diags_array(np.logspace(0, -17, n))
        + 1e-30 * (sparse.eye_array(n, k=1) + sparse.eye_array(n, k=-1))
    )
    with pytest.raises(ws.SingularMatrixError, match="`A` is singular to working precision"):
        factorize(m, "sparse", n, True, "A")  # warnings are errors in this suite
    W = ws.WoodburyMatrix(m, sparse.eye_array(n))
    with pytest.raises(ws.SingularMatrixError, match="estimated reciprocal condition"):
        W @ np.ones(n)
    if ws.backend_info()["backend"] == "cholmod":  # the handle itself stays quiet
        from woodbury_sparse._factor._sksparse import CholmodHandle

        handle = CholmodHandle.factorize(m, ldl=False)
        assert np.all(np.isfinite(handle.solve(np.ones(n))))
        assert np.all(np.isfinite(handle.solve_sqrt_t(np.ones(n))))


def test_singular_sparse_blocks_never_leak_backend_exceptions():
    m = tridiagonal(30)
    m[:2, :2] = 1.0
    m[0, 2] = m[2, 0] = m[1, 2] = m[2, 1] = 0.0
    for symmetric in (True, False):
        with pytest.raises(ws.SingularMatrixError, match="`B` is singular") as info:
            factorize(sparse.csc_array(m), "sparse", 30, symmetric, "B")
        assert info.value.block == "B"


@pytest.mark.parametrize("name", NAMES)
def test_positive_definite_flags_on_the_catalogue(name):
    c = case(name)
    W = c.build()
    for block in (W._parts.A, W._parts.B):
        full = block.toarray()
        if full.size == 0:
            continue
        factor = block.factor
        eigs = np.linalg.eigvalsh(full) if block.symmetric else None
        if factor.positive_definite:
            assert block.symmetric or block.kind in ("identity", "diagonal")
            assert np.all(np.linalg.eigvalsh((full + full.T) / 2) > 0)
        elif eigs is not None and factor.method != "superlu":
            # a symmetric factor that is not positive definite must be indefinite
            assert np.any(eigs <= 0)


# -- the SciPy fallback gives the same numbers -------------------------------------------
SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import woodbury_sparse as ws
    from woodbury_sparse import testing

    out = {"info": ws.backend_info(), "results": {}}
    for name, problem in testing.catalogue().items():
        W = problem.build()
        b = np.cos(np.arange(W.n))
        out["results"][name] = {
            "solve": W.solve(b).tolist(),
            "matvec": (W @ b).tolist(),
            "slogdet": list(W.slogdet()),
            "methods": [W._parts.A.factor.method, W._parts.B.factor.method],
        }
    json.dump(out, sys.stdout)
    """
)


@pytest.fixture(scope="module")
def scipy_backend_results():
    env = dict(os.environ, WOODBURY_SPARSE_BACKEND="scipy")
    env.pop("WOODBURY_SPARSE_EXPECT_BACKEND", None)
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout)


def test_forced_scipy_backend_is_used(scipy_backend_results):
    assert scipy_backend_results["info"] == {"backend": "scipy", "scikit_sparse": None}
    for result in scipy_backend_results["results"].values():
        assert not any(m.startswith("cholmod") for m in result["methods"])


@pytest.mark.parametrize("name", NAMES)
def test_scipy_backend_agrees_with_this_backend(name, scipy_backend_results):
    c = case(name)
    W = c.build()
    b = np.cos(np.arange(W.n))
    other = scipy_backend_results["results"][name]
    t = c.tol()
    assert rel_err(other["solve"], W.solve(b)) <= t
    assert rel_err(other["matvec"], W @ b) <= t
    sign, logabsdet = W.slogdet()
    assert other["slogdet"][0] == sign
    assert abs(other["slogdet"][1] - logabsdet) <= t


def test_invalid_backend_request_is_refused():
    env = dict(os.environ, WOODBURY_SPARSE_BACKEND="umfpack")
    proc = subprocess.run(
        [sys.executable, "-c", "import woodbury_sparse"], env=env, capture_output=True, text=True
    )
    assert proc.returncode != 0
    assert "WOODBURY_SPARSE_BACKEND must be 'cholmod' or 'scipy', got 'umfpack'" in proc.stderr


# -- the singularity test fits the block's kind ------------------------------------------------
@pytest.mark.parametrize("as_sparse", [False, True])
def test_wide_range_diagonal_blocks_are_not_refused(as_sparse, rng):
    """``diag(1e-10, 1e10, …)`` is regular: a diagonal solve is exact to rounding.

    Its condition number 1e20 used to make the ``n·eps`` test refuse it as singular.
    Entry by entry ``x/d`` has a relative error of at most ``eps/2``, so ``W @ x`` and
    ``slogdet`` keep the accuracy of the rest of the computation: ``c·n·eps·κ(W)``
    against the dense reference (``κ(W)`` about 1e10 here).
    """
    n, p = 6, 3
    a = np.array([1e-10, 1e10, 1.0, 2.0, 0.5, 3.0])
    b = np.array([1e10, 1e-10, 4.0])
    A = sparse.diags_array(a) if as_sparse else np.diag(a)
    B = sparse.diags_array(b) if as_sparse else np.diag(b)
    X = rng.standard_normal((n, p))
    W = ws.WoodburyMatrix(A, B, X=X)
    assert W._parts.A.kind == W._parts.B.kind == "diagonal"
    reference = np.diag(1 / a) + X @ np.diag(1 / b) @ X.T
    bound = 10 * n * EPS * np.linalg.cond(reference)
    x = rng.standard_normal(n)
    assert rel_err(W @ x, reference @ x) <= bound
    # O = B + Xᵀ A X carries B's range: its condition number (~1e10) is worth the warning.
    with pytest.warns(ws.IllConditionedWarning, match="capacitance"):
        sign, logdet = W.slogdet()
    ref_sign, ref_logdet = np.linalg.slogdet(reference)
    assert sign == ref_sign
    assert abs(logdet - ref_logdet) <= bound
    np.testing.assert_array_equal(W._parts.A.factor.solve(x), x / a)


@pytest.mark.parametrize(
    ("d", "entry"), [([1.0, 0.0, 2.0], "1 is 0.0e+00"), ([1.0, 2.0, 1e-310], "2 is 1.0e-310")]
)
def test_diagonal_block_without_finite_inverse_is_singular(d, entry):
    W = ws.WoodburyMatrix(sparse.diags_array(np.array(d)), np.eye(3))
    with pytest.raises(
        ws.SingularMatrixError,
        match=re.escape(
            f"`A` is singular to working precision: its diagonal entry {entry}, whose "
            "reciprocal is not a finite float64"
        ),
    ) as info:
        W @ np.ones(3)
    assert info.value.block == "A"


# -- nothing is printed -------------------------------------------------------------------------
def _flush_c_stdio() -> None:
    """Flush C's stdio buffers: text printed by a C library reaches the descriptors now."""
    ctypes.CDLL(None).fflush(None)


def test_nothing_is_printed_on_failed_probes(capfd, rng):
    """CHOLMOD (SuiteSparse 7) printed ``CHOLMOD warning: matrix not positive definite``
    on stdout whenever an ``LLᵀ`` was tried on an indefinite block; the library tries one
    first for every sparse symmetric block. Captured at the file descriptors, where a C
    library writes, on every backend: not a byte may reach the terminal.
    """
    from woodbury_sparse.updates import refactor, update_a

    n = 300
    indefinite = testing.random_symmetric_indefinite(n, rng, density=0.01)
    x = np.ones(n)
    _flush_c_stdio()
    capfd.readouterr()
    W = ws.WoodburyMatrix(indefinite, sparse.eye_array(n))  # A indefinite, O = I + A too
    W @ x, W.solve(x), W.slogdet()
    assert W._parts.A.factor.method != "cholmod-llt"
    W2 = ws.WoodburyMatrix(sparse.eye_array(n) * 0.5, indefinite)  # B indefinite
    W2 @ x, W2.slogdet()
    m = zero_pivot_matrix()
    ws.WoodburyMatrix(m, sparse.eye_array(m.shape[0])).slogdet()  # LDLᵀ meets a zero pivot
    singular = sparse.csc_array(
        sparse.diags_array(np.logspace(0, -17, n))
        + 1e-30 * (sparse.eye_array(n, k=1) + sparse.eye_array(n, k=-1))
    )
    with pytest.raises(ws.SingularMatrixError):  # numerically singular: refused
        ws.WoodburyMatrix(singular, sparse.eye_array(n)).slogdet()
    spd = testing.ar1_precision(n, 0.5)
    W3 = ws.WoodburyMatrix(spd, sparse.eye_array(n))
    W3.slogdet()
    refactor(W3, A=(spd - 1.2 * sparse.eye_array(n)).tocsc()).slogdet()  # indefinite values
    C = np.zeros((n, 1))
    C[3] = 1.5
    update_a(W3, C, downdate=True).slogdet()  # a downdate that loses definiteness
    _flush_c_stdio()
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_suitesparse_printing_is_restored_after_each_call():
    """The silence is scoped: SuiteSparse's printf hook is as it was once a call returns."""
    from woodbury_sparse._factor import _sksparse

    lib = _sksparse._QUIET._lib
    if lib is None:
        assert not (_sksparse.API_05 and CHOLMOD)  # only scikit-sparse 0.5 needs the hook
        return
    before = lib.SuiteSparse_config_printf_func_get()
    assert before  # SuiteSparse prints through printf by default
    n = 50
    indefinite = testing.random_symmetric_indefinite(n, np.random.default_rng(0), 0.05)
    ws.WoodburyMatrix(indefinite, sparse.eye_array(n)).slogdet()
    assert lib.SuiteSparse_config_printf_func_get() == before
