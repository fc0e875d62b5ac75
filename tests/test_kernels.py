"""The dense kernels under the blocks: products through SciPy's BLAS, the tiled asymmetry
measure, and the cheap finiteness and diagonal checks of the validation layer.

Each is compared with the plain NumPy expression it replaces, over memory orders,
strides, sizes either side of the thresholds, and entries near the overflow and
underflow limits.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import EPS
from woodbury_sparse import _blas, _blocks
from woodbury_sparse._blocks import dense_asymmetry
from woodbury_sparse._validation import _is_diagonal, check_finite


def _layout(m: np.ndarray, order: str) -> np.ndarray:
    """``m`` in C order, Fortran order, or as a strided (non-contiguous) view."""
    if order == "strided":
        wide = np.zeros((m.shape[0], 2 * m.shape[1]))
        wide[:, ::2] = m
        return wide[:, ::2]
    return np.asarray(m, order=order)


ORDERS = ("C", "F", "strided")


@given(
    n=st.integers(1, 90),
    m=st.integers(1, 90),
    k=st.one_of(st.none(), st.integers(1, 90)),
    order_a=st.sampled_from(ORDERS),
    order_x=st.sampled_from(ORDERS),
    seed=st.integers(0, 2**32 - 1),
)
def test_matmul_equals_numpy(n, m, k, order_a, order_x, seed):
    rng = np.random.default_rng(seed)
    a = _layout(rng.standard_normal((n, m)), order_a)
    if k is None:
        x = rng.standard_normal(2 * m)[::2] if order_x == "strided" else rng.standard_normal(m)
    else:
        x = _layout(rng.standard_normal((m, k)), order_x)
    a_before, x_before = a.copy(), x.copy()
    got = _blas.matmul(a, x)
    want = a @ x
    assert got.shape == want.shape
    scale = np.abs(a).max() * np.abs(x).max() * m
    assert np.max(np.abs(got - want), initial=0.0) <= 8 * m * np.finfo(float).eps * scale
    np.testing.assert_array_equal(a, a_before)
    np.testing.assert_array_equal(x, x_before)


@pytest.mark.parametrize("order_x", ORDERS)
def test_large_products_go_through_scipy_and_come_out_c_ordered(order_x, monkeypatch):
    calls = []
    real = _blas.blas.dgemm
    monkeypatch.setattr(_blas.blas, "dgemm", lambda *a, **k: calls.append(1) or real(*a, **k))
    rng = np.random.default_rng(0)
    a = rng.standard_normal((300, 200))
    x = _layout(rng.standard_normal((200, 7)), order_x)
    got = _blas.matmul(a, x)
    assert calls, "a product above SMALL_PRODUCT must use SciPy's dgemm"
    assert got.flags.c_contiguous
    np.testing.assert_allclose(got, a @ x, rtol=1e-12, atol=1e-12)


def test_small_products_stay_with_numpy(monkeypatch):
    monkeypatch.setattr(_blas.blas, "dgemm", None)  # would raise if called
    monkeypatch.setattr(_blas.blas, "dgemv", None)
    a = np.ones((10, 10))
    np.testing.assert_array_equal(_blas.matmul(a, np.ones((10, 3))), np.full((10, 3), 10.0))
    np.testing.assert_array_equal(_blas.matmul(a, np.ones(10)), np.full(10, 10.0))


def test_squared_norm():
    rng = np.random.default_rng(1)
    m = rng.standard_normal((7, 5))
    assert _blas.squared_norm(m) == pytest.approx(np.sum(m * m), rel=1e-14)
    assert _blas.squared_norm(np.zeros((0, 3))) == 0.0


def _reference_asymmetry(m: np.ndarray) -> float:
    big = np.abs(m).max(initial=0.0)
    if big == 0:
        return 0.0
    s = m / big
    return float(np.linalg.norm(s - s.T) / np.linalg.norm(s))


@given(
    n=st.integers(0, 3 * 128 + 5),
    log_scale=st.sampled_from([0, -300, -200, -120, 120, 200, 300]),
    perturbation=st.sampled_from([0.0, 1e-14, 1e-9, 1.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_tiled_asymmetry_equals_the_whole_matrix_formula(n, log_scale, perturbation, seed):
    rng = np.random.default_rng(seed)
    m = rng.standard_normal((n, n))
    m = m + m.T
    if n > 1:
        m[0, n - 1] += perturbation
    m *= 10.0**log_scale
    got = dense_asymmetry(np.ascontiguousarray(m))
    want = _reference_asymmetry(m)
    # Both compute r = ‖D‖_F / ‖M‖_F, D = M − Mᵀ, from the same stored M. The reference
    # rounds every entry when it divides by the peak, so each entry of its D is off by up to
    # eps·(|m_ij| + |m_ji|)/2 + eps·|d_ij|/2, which is ‖ΔD‖_F ≤ eps·‖M‖_F + eps·‖D‖_F/2: an
    # error of up to eps + eps·r/2 in r, *absolute* — relative to r it is unbounded when the
    # asymmetry is itself at round-off level (n = 2 and a perturbation of 1e-14 on entries
    # of order 1 give r ≈ 5e-15 and a 2 % difference). The kernel makes the same error when
    # it scales, and none (an exact Sterbenz difference) when it does not. The two sums of
    # n² squares and the square root add a relative n²·eps each side. So, with a factor 2
    # of room: |got − want| ≤ 2·(2·eps) + 2·(2·n²·eps)·r.
    bound = 4 * EPS + 4 * max(n, 1) ** 2 * EPS * want
    assert abs(got - want) <= bound


@pytest.mark.parametrize("tile", [(1, 1), (3, 5), (7, 3), (128, 256)])
def test_asymmetry_does_not_depend_on_the_tile(tile, monkeypatch):
    rng = np.random.default_rng(2)
    m = rng.standard_normal((50, 50))
    monkeypatch.setattr(_blocks, "_TILE_ROWS", tile[0])
    monkeypatch.setattr(_blocks, "_TILE_COLUMNS", tile[1])
    assert dense_asymmetry(m) == pytest.approx(_reference_asymmetry(m), rel=1e-12)


def test_exactly_symmetric_matrix_has_zero_asymmetry():
    rng = np.random.default_rng(3)
    m = rng.standard_normal((300, 300))
    assert dense_asymmetry(m + m.T) == 0.0
    assert dense_asymmetry(np.zeros((4, 4))) == 0.0


@pytest.mark.parametrize(
    "values",
    [
        [1.0, np.nan],
        [np.inf, 1.0],
        [-np.inf, np.inf],
        [1e308, 1e308, np.nan],  # the sum overflows and a NaN hides behind it
        [1e308, -np.inf],
    ],
)
def test_check_finite_finds_every_non_finite_entry(values):
    with pytest.raises(ValueError, match="`M` contains NaN or infinite values"):
        check_finite(np.array(values), "M")


def test_check_finite_accepts_entries_whose_sum_overflows():
    check_finite(np.array([1e308, 1e308, -1e308]), "M")  # no error, no warning
    check_finite(np.zeros(0), "M")


@pytest.mark.parametrize(
    ("matrix", "expected"),
    [
        (np.diag([1.0, 2.0, 3.0]), True),
        (np.zeros((3, 3)), True),
        (np.array([[1.0, 1.0], [0.0, 1.0]]), False),  # superdiagonal
        (np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [5.0, 0.0, 1.0]]), False),  # far below
        (np.array([[0.0, 0.0], [0.0, 0.0]]) + np.array([[0.0, 0.0], [1e-300, 0.0]]), False),
        (np.ones((1, 1)), True),
    ],
)
def test_is_diagonal(matrix, expected):
    assert _is_diagonal(matrix) is expected
