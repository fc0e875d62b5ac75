"""Problem generators, a catalogue of test problems and dense references.

Shared by the test suite, the benchmarks and the examples, and public so that users can
check their own operators the same way.

Examples
--------
>>> import numpy as np
>>> from woodbury_sparse import testing
>>> problem = testing.catalogue(seed=1)["ar1_plus_noise"]
>>> W = problem.build()
>>> bool(np.allclose(W.toarray(), problem.dense()))
True
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse

from ._operators import WoodburyMatrix
from ._random import RngLike, check_one, generator

__all__ = [
    "Problem",
    "ar1_precision",
    "ar1_precision_derivative",
    "assert_dot_test",
    "catalogue",
    "dense_woodbury",
    "grid_precision",
    "icar_precision",
    "random_sparse",
    "random_spd",
    "relative_error",
    "rw1_precision",
]


def _canonical(m: sparse.csc_array) -> sparse.csc_array:
    """``m`` with sorted indices and no duplicates, flagged so, on every supported SciPy.

    SciPy 1.15's ``diags_array(..., format="csc")`` leaves a column's row indices unsorted
    (and unflagged), which every consumer would then have to sort or measure again.
    """
    m.sum_duplicates()
    return m


def ar1_precision(n: int, rho: float) -> sparse.csc_array:
    """Tridiagonal precision of a stationary AR(1) process with unit innovations.

    ``Y_t = ρ Y_{t−1} + ε_t``: diagonal ``(1, 1+ρ², …, 1+ρ², 1)``, off-diagonals ``−ρ``.

    Examples
    --------
    >>> from woodbury_sparse.testing import ar1_precision
    >>> ar1_precision(3, 0.5).toarray()
    array([[ 1.  , -0.5 ,  0.  ],
           [-0.5 ,  1.25, -0.5 ],
           [ 0.  , -0.5 ,  1.  ]])
    """
    if n == 1:
        return sparse.csc_array(np.ones((1, 1)))
    main = np.full(n, 1.0 + rho**2)
    main[[0, -1]] = 1.0
    off = np.full(n - 1, -rho)
    return _canonical(sparse.diags_array([off, main, off], offsets=[-1, 0, 1], format="csc"))


def ar1_precision_derivative(n: int, rho: float) -> sparse.csc_array:
    """``∂Q/∂ρ`` of :func:`ar1_precision`: diagonal ``(0, 2ρ, …, 2ρ, 0)``, off-diagonals ``−1``.

    On the pattern of ``Q`` (the end entries stored as zeros), so a derivative and its
    matrix share a sparsity pattern.

    Examples
    --------
    >>> from woodbury_sparse.testing import ar1_precision_derivative
    >>> ar1_precision_derivative(3, 0.5).toarray()
    array([[ 0., -1.,  0.],
           [-1.,  1., -1.],
           [ 0., -1.,  0.]])
    """
    out = ar1_precision(n, rho).copy()
    cols = np.repeat(np.arange(n), np.diff(out.indptr))
    diagonal = out.indices == cols
    out.data = np.where(diagonal, 2.0 * rho, -1.0)
    out.data[diagonal & ((cols == 0) | (cols == n - 1))] = 0.0
    return out


def grid_precision(m: int, kappa: float = 0.5, k: int | None = None) -> sparse.csc_array:
    """Precision ``(κ² I + L)`` of a GMRF on an ``m×k`` grid (``L``: graph Laplacian).

    Examples
    --------
    >>> from woodbury_sparse.testing import grid_precision
    >>> grid_precision(3).shape
    (9, 9)
    """
    k = m if k is None else k

    def path(size: int) -> sparse.csc_array:
        if size == 1:
            return sparse.csc_array((1, 1))
        ones = np.ones(size - 1)
        deg = np.r_[1.0, np.full(size - 2, 2.0), 1.0]
        return _canonical(sparse.diags_array([-ones, deg, -ones], offsets=[-1, 0, 1], format="csc"))

    lap = sparse.kron(path(m), sparse.eye_array(k)) + sparse.kron(sparse.eye_array(m), path(k))
    return _canonical(sparse.csc_array(kappa**2 * sparse.eye_array(m * k) + lap))


def rw1_precision(n: int) -> sparse.csc_array:
    """Structure matrix of a first-order random walk: ``Σₜ (x_{t+1} − x_t)²`` as ``xᵀ R x``.

    Intrinsic: rank ``n − 1``, constant vectors in its null space (R-INLA's ``"rw1"``
    with unit precision). Singular, so usable as a prior only with data or a constraint.

    Examples
    --------
    >>> from woodbury_sparse.testing import rw1_precision
    >>> rw1_precision(3).toarray()
    array([[ 1., -1.,  0.],
           [-1.,  2., -1.],
           [ 0., -1.,  1.]])
    """
    if n == 1:
        return sparse.csc_array((1, 1))
    main = np.full(n, 2.0)
    main[[0, -1]] = 1.0
    off = np.full(n - 1, -1.0)
    return _canonical(sparse.diags_array([off, main, off], offsets=[-1, 0, 1], format="csc"))


def icar_precision(adjacency) -> sparse.csc_array:
    """Structure matrix ``D − A`` of an intrinsic CAR field on the graph ``adjacency``.

    ``D`` holds the numbers of neighbours (the pattern of ``adjacency`` counts, read as
    undirected, diagonal ignored). Rank ``n −`` (number of connected components):
    constant on each component is its null space (R-INLA's ``"besag"``).

    Examples
    --------
    >>> import numpy as np
    >>> from woodbury_sparse.testing import icar_precision
    >>> icar_precision(np.array([[0, 1, 1], [1, 0, 0], [1, 0, 0]])).toarray()
    array([[ 2., -1., -1.],
           [-1.,  1.,  0.],
           [-1.,  0.,  1.]])
    """
    graph = sparse.csc_array(adjacency, dtype=np.float64)
    graph = sparse.csc_array((graph != 0).astype(np.float64))
    graph = sparse.csc_array(((graph + graph.T) != 0).astype(np.float64))
    graph.setdiag(0.0)
    graph.eliminate_zeros()
    degree = np.asarray(graph.sum(axis=0)).ravel()
    return _canonical(sparse.csc_array(sparse.diags_array(degree) - graph))


def random_sparse(
    n: int, m: int, density: float, rng: RngLike, diagonal: float = 0.0
) -> sparse.csc_array:
    """A random sparse ``n×m`` matrix, plus ``diagonal`` times the identity when square.

    ``rng``, here and in the other generators, is read as ``numpy.random.default_rng(rng)``
    (SPEC 7): a ``Generator`` is drawn from (and advanced), a seed makes a new one.

    Examples
    --------
    >>> import numpy as np
    >>> from woodbury_sparse.testing import random_sparse
    >>> M = random_sparse(4, 3, 0.5, np.random.default_rng(0))
    >>> type(M).__name__, M.shape, M.nnz
    ('csc_array', (4, 3), 6)
    """
    rng = generator(rng)
    mat = sparse.random_array(
        (n, m), density=density, rng=rng, format="csc", data_sampler=rng.standard_normal
    )
    if diagonal and n == m:
        mat = mat + diagonal * sparse.eye_array(n)
    return _canonical(sparse.csc_array(mat))


def random_spd(
    n: int, rng: RngLike, density: float = 0.2, dense: bool = False
) -> sparse.csc_array | np.ndarray:
    """A random symmetric positive definite matrix (``RᵀR + I/2``, ``R`` sparse).

    Examples
    --------
    >>> import numpy as np
    >>> from woodbury_sparse.testing import random_spd
    >>> Q = random_spd(5, np.random.default_rng(0), dense=True)
    >>> bool(np.allclose(Q, Q.T)), bool(np.linalg.eigvalsh(Q).min() >= 0.5 - 1e-12)
    (True, True)
    """
    r = random_sparse(n, n, density, rng)
    mat = sparse.csc_array(r.T @ r + 0.5 * sparse.eye_array(n))
    return mat.toarray() if dense else mat


def random_symmetric_indefinite(n: int, rng: RngLike, density: float = 0.2) -> sparse.csc_array:
    """A random symmetric indefinite, well-conditioned sparse matrix."""
    r = random_sparse(n, n, density, rng)
    signs = np.where(np.arange(n) % 2 == 0, 3.0, -3.0)
    return _canonical(sparse.csc_array(0.25 * (r + r.T) + sparse.diags_array(signs)))


def _dense(m) -> np.ndarray:
    return m.toarray().astype(np.float64) if sparse.issparse(m) else np.asarray(m, dtype=np.float64)


def dense_woodbury(A, B, U=None, V=None, X=None) -> np.ndarray:
    """The dense reference ``A⁻¹ + Σ Uₖ Bₖ⁻¹ Vₖ`` computed with NumPy (lists recycled).

    Examples
    --------
    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> from woodbury_sparse.testing import dense_woodbury
    >>> A, B = np.diag([1.0, 2.0]), np.eye(2)
    >>> dense_woodbury(A, B)  # A⁻¹ + B⁻¹
    array([[2. , 0. ],
           [0. , 1.5]])
    >>> bool(np.allclose(ws.WoodburyMatrix(A, B).toarray(), dense_woodbury(A, B)))
    True
    """
    a = _dense(A)
    n = a.shape[0]
    if X is not None:
        U = X
        V = [_dense(x).T for x in X] if isinstance(X, list) else _dense(X).T
    lists = [v if isinstance(v, list) else [v] for v in (B, U, V)]
    count = max(len(v) for v in lists)
    total = np.linalg.inv(a)
    for i in range(count):
        b, u, v = (lst[i % len(lst)] for lst in lists)
        b = _dense(b)
        u = np.eye(n) if u is None else _dense(u)
        v = np.eye(n) if v is None else _dense(v)
        total = total + u @ np.linalg.solve(b, v)
    return total


def relative_error(actual, expected) -> float:
    """``‖actual − expected‖_F / max(‖expected‖_F, tiny)``.

    Examples
    --------
    >>> from woodbury_sparse.testing import relative_error
    >>> relative_error([3.0, 4.0], [3.0, 4.0 + 5e-9])  # 5e-9 / ‖(3, 4)‖
    1.0000000...e-09
    """
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(np.linalg.norm(expected), np.finfo(np.float64).tiny)
    return float(np.linalg.norm(np.asarray(actual) - expected) / scale)


def assert_dot_test(op, rng: RngLike, rtol: float = 1e-10) -> None:
    """Check ``⟨op u, v⟩ = ⟨u, opᵀ v⟩`` for random ``u``, ``v`` (the adjoint dot test).

    Raises ``AssertionError`` when the two differ by more than ``rtol`` times their scale.

    Examples
    --------
    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> from woodbury_sparse.testing import assert_dot_test
    >>> rng = np.random.default_rng(0)
    >>> W = ws.WoodburyMatrix(np.eye(4), np.eye(2), U=rng.standard_normal((4, 2)),
    ...                       V=rng.standard_normal((2, 4)))
    >>> assert_dot_test(W, rng)  # W and W.T agree: nothing raised
    """
    rng = generator(rng)
    n, m = op.shape
    u = rng.standard_normal(m)
    v = rng.standard_normal(n)
    left = float(v @ (op @ u))
    right = float(u @ (op.T @ v))
    scale = np.linalg.norm(op @ u) * np.linalg.norm(v) + np.linalg.norm(op.T @ v) * np.linalg.norm(
        u
    )
    if abs(left - right) > rtol * scale:
        raise AssertionError(f"dot test failed: <Wu, v> = {left!r}, <u, Wᵀv> = {right!r}")


@dataclass
class Problem:
    """One test problem: the constructor's arguments and what the result should be.

    Attributes
    ----------
    name : str
    kwargs : dict
        Keyword arguments of :class:`~woodbury_sparse.WoodburyMatrix`.
    symmetric : bool
        Whether the constructor should return the symmetric form.

    Examples
    --------
    >>> import numpy as np
    >>> from woodbury_sparse.testing import catalogue
    >>> problem = catalogue(seed=1)["ar1_plus_noise"]
    >>> problem, problem.symmetric
    (Problem('ar1_plus_noise'), True)
    >>> W = problem.build()
    >>> bool(np.allclose(W.toarray(), problem.dense()))
    True
    """

    name: str
    kwargs: dict[str, Any]
    symmetric: bool
    tags: set[str] = field(default_factory=set)

    def build(self) -> WoodburyMatrix:
        """The operator under test."""
        return WoodburyMatrix(**self.kwargs)

    def dense(self) -> np.ndarray:
        """Dense reference for ``W``."""
        kw = {k: v for k, v in self.kwargs.items() if k != "symmetric"}
        return dense_woodbury(**kw)

    def __repr__(self) -> str:
        return f"Problem({self.name!r})"


def catalogue(seed: int = 0, n: int = 30, *, rng=None) -> dict[str, Problem]:
    """The named problems every operation is checked on.

    Covers R's test kinds (diagonal; sparse non-symmetric; general with rectangular
    ``U``, ``V``; symmetric indefinite and SPD with ``X = I`` and rectangular ``X``;
    several ``B`` terms) and more (AR(1) plus noise; a 2-D grid GMRF; rank 0; ``p ≥ n``;
    sparse and dense factors; float32 and integer input; dense blocks).

    Parameters
    ----------
    seed : int, optional
        Seed of the draws (default 0: the same problems every run); the older spelling
        of ``rng``.
    n : int, optional
        Order of the operators.
    rng : None, int, numpy.random.SeedSequence, BitGenerator or Generator, optional
        When given, the problems are drawn from ``numpy.random.default_rng(rng)``
        (SPEC 7) instead (``rng=s`` and ``seed=s`` give the same problems). ``None``
        (default) means "not given": a catalogue is reproducible unless asked otherwise.

    Raises
    ------
    TypeError
        When both ``rng`` and a ``seed`` other than the default are given.

    Examples
    --------
    Check an operation on every problem against its dense reference:

    >>> import numpy as np
    >>> from woodbury_sparse.testing import catalogue, relative_error
    >>> errors = {}
    >>> for name, problem in catalogue(seed=0, n=12).items():
    ...     W, dense = problem.build(), problem.dense()
    ...     b = np.ones(W.shape[0])
    ...     errors[name] = relative_error(W @ b, dense @ b)
    >>> "ar1_plus_noise" in errors, bool(max(errors.values()) < 1e-8)
    (True, True)
    """
    if rng is not None and seed != 0:
        check_one(rng, seed, "seed", "catalogue")
    rng = np.random.default_rng(seed) if rng is None else generator(rng)
    p = max(2, n // 4)
    spd = lambda k, **kw: random_spd(k, rng, **kw)  # noqa: E731
    indef = lambda k: random_symmetric_indefinite(k, rng)  # noqa: E731
    gen = lambda r, c, d=0.0: random_sparse(r, c, 0.3, rng, diagonal=d)  # noqa: E731
    dense_rect = lambda r, c: rng.standard_normal((r, c))  # noqa: E731
    m = int(np.sqrt(n))
    problems = [
        Problem(
            "diagonal",
            dict(A=sparse.diags_array(rng.uniform(0.5, 2, n)), B=np.diag(rng.uniform(0.5, 2, n))),
            True,
            {"pd"},
        ),
        Problem("sparse_general", dict(A=gen(n, n, 4.0), B=gen(n, n, 4.0)), False),
        Problem(
            "general_rectangular",
            dict(A=gen(n, n, 4.0), B=gen(p, p, 3.0), U=dense_rect(n, p), V=gen(p, n)),
            False,
        ),
        Problem(
            "symmetric_indefinite_identity", dict(A=indef(n), B=indef(n), symmetric=True), True
        ),
        Problem(
            "symmetric_indefinite_rectangular",
            dict(A=indef(n), B=indef(p), X=dense_rect(n, p)),
            True,
        ),
        Problem("spd_identity", dict(A=spd(n), B=spd(n), symmetric=True), True, {"pd"}),
        Problem("spd_rectangular", dict(A=spd(n), B=spd(p), X=dense_rect(n, p)), True, {"pd"}),
        Problem(
            "ar1_plus_noise", dict(A=ar1_precision(n, 0.95), B=sparse.eye_array(n)), True, {"pd"}
        ),
        Problem(
            "grid_gmrf_plus_noise",
            dict(A=grid_precision(m, 0.3), B=sparse.diags_array(np.full(m * m, 2.0))),
            True,
            {"pd"},
        ),
        Problem("rank_zero", dict(A=spd(n), B=np.zeros((0, 0)), X=np.zeros((n, 0))), True, {"pd"}),
        Problem(
            "p_greater_than_n",
            dict(A=spd(n), B=spd(n + 7, dense=True), X=dense_rect(n, n + 7)),
            True,
            {"pd"},
        ),
        Problem("sparse_x", dict(A=spd(n), B=np.eye(p), X=gen(n, p)), True, {"pd"}),
        Problem(
            "dense_blocks",
            dict(A=spd(n, dense=True), B=spd(p, dense=True), X=dense_rect(n, p)),
            True,
            {"pd"},
        ),
        Problem(
            "dense_general",
            dict(
                A=dense_rect(n, n) + 5 * np.eye(n),
                B=dense_rect(p, p) + 4 * np.eye(p),
                U=dense_rect(n, p),
                V=dense_rect(p, n),
            ),
            False,
        ),
        Problem(
            "several_b",
            dict(
                A=gen(n, n, 4.0),
                B=[gen(p, p, 3.0), gen(3, 3, 3.0)],
                U=[dense_rect(n, p), gen(n, 3)],
                V=[dense_rect(p, n), gen(3, n)],
            ),
            False,
        ),
        Problem(
            "several_b_symmetric",
            dict(A=spd(n), B=[spd(p), np.eye(3)], X=[dense_rect(n, p), dense_rect(n, 3)]),
            True,
            {"pd"},
        ),
        Problem(
            "recycled_x",
            dict(A=spd(n), B=[spd(p), 2 * np.eye(p)], X=dense_rect(n, p)),
            True,
            {"pd"},
        ),
        Problem(
            "float32",
            dict(
                A=spd(n).astype(np.float32),
                B=np.eye(p, dtype=np.float32),
                X=dense_rect(n, p).astype(np.float32),
            ),
            True,
            {"pd"},
        ),
        Problem(
            "integer",
            dict(
                A=np.diag(np.arange(1, n + 1)) + np.eye(n, k=1) + np.eye(n, k=-1) * 1,
                B=np.array([[3, 1], [1, 2]]),
                X=rng.integers(-2, 3, size=(n, 2)),
            ),
            True,
        ),
    ]
    return {pr.name: pr for pr in problems}
