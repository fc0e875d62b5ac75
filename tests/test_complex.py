"""Complex operands of the real operators: ``W (x + i y) = W x + i W y``, everywhere.

Before, every entry point cast a complex operand to float64 (NumPy's ``ComplexWarning``, an
error under this suite's settings) and returned ``W x`` alone; SciPy's ``eigs`` with a
complex shift, ``expm_multiply`` and ``lsmr`` then failed or were wrong. Complex *blocks*
are still refused: the operators are real.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from scipy import sparse
from scipy.sparse.linalg import eigs, expm_multiply, lsmr

import woodbury_sparse as ws
from conftest import EPS, case, dense

#: Entry points of a vector (1-D, or an n×k block where the call takes one), with their
#: dense reference given W's dense matrix ``M``.
CALLS = {
    "W @ z": (lambda W, z: W @ z, lambda M, z: M @ z),
    "W.dot(z)": (lambda W, z: W.dot(z), lambda M, z: M @ z),
    "W.T @ z": (lambda W, z: W.T @ z, lambda M, z: M.T @ z),
    "W.H @ z": (lambda W, z: W.H @ z, lambda M, z: M.T @ z),  # W real: Wᴴ = Wᵀ
    "z @ W": (lambda W, z: z.T @ W, lambda M, z: z.T @ M),
    "W.matvec": (lambda W, z: W.matvec(z), lambda M, z: M @ z),
    "W.rmatvec": (lambda W, z: W.rmatvec(z), lambda M, z: M.T @ z),
    "W.solve": (lambda W, z: W.solve(z), np.linalg.solve),
    "W.T.solve": (lambda W, z: W.T.solve(z), lambda M, z: np.linalg.solve(M.T, z)),
    "W.inv() @ z": (lambda W, z: W.inv() @ z, np.linalg.solve),
    "W.inv().T @ z": (lambda W, z: W.inv().T @ z, lambda M, z: np.linalg.solve(M.T, z)),
    "W.inv().matvec": (lambda W, z: W.inv().matvec(z), np.linalg.solve),
    "W.inv().rmatvec": (lambda W, z: W.inv().rmatvec(z), lambda M, z: np.linalg.solve(M.T, z)),
}
BLOCK_CALLS = {
    "W @ Z": CALLS["W @ z"],
    "Z @ W": CALLS["z @ W"],
    "W.matmat": (lambda W, Z: W.matmat(Z), lambda M, Z: M @ Z),
    "W.rmatmat": (lambda W, Z: W.rmatmat(Z), lambda M, Z: M.T @ Z),
    "W.solve": CALLS["W.solve"],
    "W.inv().matmat": (lambda W, Z: W.inv().matmat(Z), np.linalg.solve),
    "W.inv().rmatmat": (lambda W, Z: W.inv().rmatmat(Z), lambda M, Z: np.linalg.solve(M.T, Z)),
}
#: The multi-column form of the entry points that take a vector only.
AS_BLOCK = {
    "W.matvec": lambda W, Z: W.matmat(Z),
    "W.rmatvec": lambda W, Z: W.rmatmat(Z),
    "W.inv().matvec": lambda W, Z: W.inv().matmat(Z),
    "W.inv().rmatvec": lambda W, Z: W.inv().rmatmat(Z),
}


def rel_err(actual, expected) -> float:
    """``‖actual − expected‖_F / ‖expected‖_F`` for complex arrays."""
    expected = np.asarray(expected)
    return float(np.linalg.norm(np.asarray(actual) - expected) / np.linalg.norm(expected))


def complex_operand(n: int, k: int | None, seed: int = 5) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (n,) if k is None else (n, k)
    return rng.standard_normal(shape) + 1j * rng.standard_normal(shape)


def check(problem_case, call, reference, z, block_call=None) -> None:
    """One entry point on complex ``z``: the real call on [Re z, Im z], and the dense answer."""
    W = problem_case.build()
    got = call(W, z)
    assert got.dtype == np.complex128
    assert got.shape == reference(problem_case.W_dense, z).shape
    # exactly the real operator applied to the real and imaginary parts as one block
    cols = z[:, None] if z.ndim == 1 else z
    k = cols.shape[1]
    stacked = (block_call or call)(W, np.concatenate((cols.real, cols.imag), axis=1))
    flat = got[:, None] if got.ndim == 1 else got
    if stacked.shape[0] == 2 * k:  # z @ W: the results are rows
        stacked = stacked.T
        flat = got[:, None] if got.ndim == 1 else got.T
    np.testing.assert_array_equal(flat.real, stacked[:, :k])
    np.testing.assert_array_equal(flat.imag, stacked[:, k:])
    # and the dense answer, to the accuracy of the real computation
    assert rel_err(got, reference(problem_case.W_dense, z)) <= problem_case.tol()


@pytest.mark.parametrize("name", sorted(CALLS))
def test_complex_vector(problem_case, name):
    call, reference = CALLS[name]
    block_call = AS_BLOCK.get(name)
    check(problem_case, call, reference, complex_operand(problem_case.n, None), block_call)
    if name != "z @ W":
        check(problem_case, call, reference, complex_operand(problem_case.n, 1), block_call)


@pytest.mark.parametrize("name", sorted(BLOCK_CALLS))
def test_complex_block(problem_case, name):
    call, reference = BLOCK_CALLS[name]
    check(problem_case, call, reference, complex_operand(problem_case.n, 3))


@pytest.mark.parametrize(
    ("name", "hook"),
    [
        ("W @ z", "_apply"),
        ("W.T @ z", "_apply"),
        ("W.rmatvec", "_apply"),
        ("W.solve", "_solve"),
        ("W.inv() @ z", "_solve"),
        ("W.inv().rmatvec", "_solve"),
    ],
)
def test_one_real_call_per_complex_operand(monkeypatch, name, hook):
    """Real and imaginary parts go through the factorisations together, not one by one."""
    W = case("sparse_general").build()
    seen: list[tuple] = []
    original = getattr(ws.WoodburyMatrix, hook)

    def counting(self, x, *args, **kwargs):
        seen.append((x.dtype, x.shape))
        return original(self, x, *args, **kwargs)

    monkeypatch.setattr(ws.WoodburyMatrix, hook, counting)
    CALLS[name][0](W, complex_operand(W.n, None))
    assert seen == [(np.dtype(np.float64), (W.n, 2))]
    seen.clear()
    BLOCK_CALLS["W @ Z"][0](W, complex_operand(W.n, 3)) if hook == "_apply" else W.solve(
        complex_operand(W.n, 3)
    )
    assert seen == [(np.dtype(np.float64), (W.n, 6))]


def test_real_operands_stay_real():
    W = case("ar1_plus_noise").build()
    x = np.linspace(-1, 1, W.n)
    for out in (W @ x, W.solve(x), W.inv() @ x, W.rmatvec(x), x @ W):
        assert out.dtype == np.float64
    # complex dtype without an imaginary part is still complex, like NumPy's products
    assert (W @ x.astype(complex)).dtype == np.complex128


def test_other_complex_containers():
    problem = case("sparse_x")
    W = problem.build()
    z = complex_operand(W.n, 2)
    want = problem.W_dense @ z
    for operand in (z.astype(np.complex64), sparse.csr_array(z), z.tolist()):
        got = W @ operand
        assert got.dtype == np.complex128
        # complex64 input carries its own rounding: eps of float32 relative
        allowed = 10 * problem.n * np.finfo(np.float32).eps
        assert rel_err(got, want) <= (allowed if operand is not z else problem.tol())


def test_refined_complex_solve():
    problem = case("dense_general")
    W = problem.build()
    z = complex_operand(W.n, None)
    got = W.solve(z, refine=2)
    stacked = W.solve(np.column_stack((z.real, z.imag)), refine=2)
    np.testing.assert_array_equal(got.real, stacked[:, 0])
    np.testing.assert_array_equal(got.imag, stacked[:, 1])
    assert rel_err(got, np.linalg.solve(problem.W_dense, z)) <= problem.tol()


def test_complex_blocks_are_still_refused():
    with pytest.raises(TypeError, match=r"`B` is complex \(complex128\); .* real matrices"):
        ws.WoodburyMatrix(np.eye(3), np.eye(3) * (1 + 1j))
    with pytest.raises(TypeError, match=r"`X` is complex"):
        ws.WoodburyMatrix(np.eye(3), np.eye(1), X=np.ones((3, 1)) * 1j)


# -- SciPy's algorithms with complex vectors -------------------------------------------------
def test_eigs_with_a_complex_shift():
    """Shift-invert with ``σ = 0.1 + 0.1i``: ARPACK solves ``(W − σI) x = b`` for complex
    vectors by GMRES on ``W``'s products. (For a real matrix and a complex shift SciPy
    recovers the eigenvalues from the eigenvectors, so it needs ``return_eigenvectors``:
    without them it returns zeros for a dense NumPy matrix too.)"""
    problem = case("sparse_general")
    W = problem.build()
    M = problem.W_dense
    n = problem.n
    sigma = 0.1 + 0.1j
    vals, vecs = eigs(W, k=3, sigma=sigma)
    # SciPy's inner GMRES stops at a relative residual of 1000·√n·eps: the eigenpairs'
    # residuals are that, relative to ‖W − σI‖, with room for the Arnoldi steps
    inner = 1000 * np.sqrt(n) * EPS
    bound = 10 * inner * np.linalg.norm(M - sigma * np.eye(n), 2)
    residuals = np.linalg.norm(M @ vecs - vecs * vals, axis=0) / np.linalg.norm(vecs, axis=0)
    assert np.all(residuals <= bound)
    # and the eigenvalues are the three nearest σ, each within its condition number
    # (‖x‖‖y‖ / |yᴴx| for its right and left eigenvectors) times that residual
    dense_vals, left, right = scipy.linalg.eig(M, left=True, right=True)
    order = np.argsort(np.abs(dense_vals - sigma))[:3]
    matched = set()
    for v in vals:
        j = order[np.argmin(np.abs(dense_vals[order] - v))]
        y, x = left[:, j], right[:, j]
        kappa = np.linalg.norm(x) * np.linalg.norm(y) / abs(np.vdot(y, x))
        assert abs(dense_vals[j] - v) <= kappa * bound
        matched.add(j)
    assert len(matched) == 3


def test_expm_multiply_with_complex_input():
    problem = case("ar1_plus_noise")
    W = problem.build()
    M = problem.W_dense
    z = complex_operand(W.n, None)
    t = 0.5 / np.abs(M).sum(axis=0).max()  # ‖tW‖₁ = 1/2: few Taylor steps, no overflow
    got = expm_multiply(t * W, z, traceA=t * np.trace(M))
    want = scipy.linalg.expm(t * M) @ z
    # expm_multiply truncates its Taylor series at tolerance 2**-53 (relative, per step)
    assert rel_err(got, want) <= 10 * problem.n * EPS


def test_lsmr_with_a_complex_right_hand_side():
    problem = case("dense_general")
    W = problem.build()
    b = complex_operand(W.n, None)
    x, istop, *_ = lsmr(W, b, atol=1e-14, btol=1e-14, maxiter=20 * W.n)
    want = np.linalg.solve(problem.W_dense, b)
    kappa = np.linalg.cond(dense(problem.W_dense))
    assert istop in (1, 4)  # solved: to atol/btol, or as well as machine precision allows
    # lsmr stops when ‖r‖ ≤ btol‖b‖ + atol‖W‖‖x‖: a forward error within κ (atol + btol),
    # or within κ·eps where that floor is reached first (istop 4)
    assert rel_err(x, want) <= 10 * kappa * max(1e-14 + 1e-14, EPS)
