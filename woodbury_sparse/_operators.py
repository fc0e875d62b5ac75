"""The public operators: ``WoodburyMatrix`` (general) and ``SymmetricWoodburyMatrix``."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import LinearOperator

from ._blocks import ANALYSIS_DONOR, Block, all_finite, same_sparse_pattern
from ._cache import cached_property
from ._exceptions import FactorizationError, IllConditionedWarning, SingularMatrixError, warn
from ._validation import Parts, as_rhs, normalise

__all__ = ["RCOND_WARNING", "SymmetricWoodburyMatrix", "WoodburyMatrix"]

#: Key, in an operator's ``__dict__``, of another operator's factorised capacitance block
#: whose symbolic analysis this operator's capacitance may reuse (see ``_O``).
CAPACITANCE_DONOR = "_capacitance_donor"

#: Below this estimated reciprocal condition number of the capacitance ``O`` (``√eps``),
#: results may have lost half their digits: an ``IllConditionedWarning`` says so.
RCOND_WARNING: float = float(np.sqrt(np.finfo(np.float64).eps))


def _dense_operand(x):
    """Sparse right-hand sides become dense float64 arrays; anything else is left alone."""
    return x.toarray() if sparse.issparse(x) else x


def _user_matrix(block: Block):
    """A block as the user sees it: read-only ndarray, or a sparse array.

    Never the block's own objects: a read-only *view* (whose ``writeable`` flag cannot be
    turned back on), and a new sparse array over the read-only storage (so that assigning
    to its attributes cannot change the operator).
    """
    if block.kind in ("identity", "diagonal"):
        return block.tosparse()
    m = block.data
    if block.kind == "sparse":
        return sparse.csc_array((m.data, m.indices, m.indptr), shape=m.shape, copy=False)
    return m.view()


class WoodburyMatrix(LinearOperator):
    r"""The ``n×n`` matrix ``W = A⁻¹ + U B⁻¹ V``, held implicitly.

    ``A`` (``n×n``) and ``B`` (``p×p``) are given as the *inverses* of the blocks of
    ``W``: in statistics they are precision matrices, usually sparse. ``W`` is never
    formed; its solves, products and determinant come from factorisations of ``A``,
    ``B`` and the capacitance ``O = B + V A U`` (``p×p``) through

    .. math::

        W^{-1} = A - A U O^{-1} V A, \qquad
        \log|W| = \log|O| - \log|A| - \log|B|.

    Calling ``WoodburyMatrix(...)`` returns a :class:`SymmetricWoodburyMatrix` when the
    arguments describe the symmetric form, following the rules of R's
    ``WoodburyMatrix``.

    Parameters
    ----------
    A : (n, n) array_like or sparse matrix
        Inverse of the first term. Any SciPy sparse format, dense or diagonal.
    B : (p, p) array_like or sparse matrix, or list of them
        Inverse of the middle factor of the second term. A list of ``K`` matrices means
        ``W = A⁻¹ + Σₖ Uₖ Bₖ⁻¹ Vₖ`` (``B`` block diagonal, ``U`` side by side, ``V``
        stacked); lists shorter than the longest are recycled.
    U : (n, p) array_like or sparse matrix, or list of them, optional
        Left factor of the update (general form). Default: the identity (``p = n``).
    V : (p, n) array_like or sparse matrix, or list of them, optional
        Right factor of the update (general form). Default: the identity.
    X : (n, p) array_like or sparse matrix, or list of them, optional
        Factor of the symmetric form ``W = A⁻¹ + X B⁻¹ Xᵀ``; excludes ``U`` and ``V``.
        Default: the identity.
    symmetric : bool or None, optional
        ``None`` (default): general when ``U`` or ``V`` is given, symmetric when ``X``
        is given, otherwise symmetric exactly when ``A`` and every ``B`` are symmetric up
        to round-off (relative Frobenius asymmetry ≤ ``√eps``; such blocks are
        symmetrised). ``True`` asks for the symmetric form (an error with ``U``/``V`` or
        with a clearly asymmetric block); ``False`` for the general form (an error with
        ``X``).
    shift : float, optional, keyword-only
        Regularise ``A`` explicitly: ``A + shift·I`` is used in place of ``A`` (CHOLMOD's
        ``β``), for example to make the precision of an intrinsic GMRF invertible. Never
        applied unless asked for; default 0.

    Attributes
    ----------
    shape : tuple
        ``(n, n)``.
    dtype : numpy.dtype
        Always float64: integer and float32 input is computed in float64.

    Raises
    ------
    TypeError
        For complex or non-numeric input.
    ValueError
        For shapes that do not fit, NaN or Inf, an empty list, or contradictory
        arguments. Messages name the argument.

    See Also
    --------
    SymmetricWoodburyMatrix : the symmetric form, with Gaussian statistics.

    Notes
    -----
    Operators are immutable: inputs are copied, and nothing about ``W`` changes after
    construction. Factorisations are built on first use and cached: a user who only
    solves never factorises ``A``.

    =====================  ====================================================
    operation              needs
    =====================  ====================================================
    ``solve``              products with ``A``; a factorisation of ``O``
    ``W @ x``              factorisations of ``A`` and ``B``
    ``slogdet``            factorisations of ``A``, ``B`` and ``O``
    =====================  ====================================================

    Examples
    --------
    The covariance of an AR(1) process plus white noise, ``Q₁⁻¹ + Q₂⁻¹``:

    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> import woodbury_sparse as ws
    >>> n, rho = 6, 0.9
    >>> Q1 = sp.diags_array([np.r_[1, np.full(n - 2, 1 + rho**2), 1],
    ...                      np.full(n - 1, -rho), np.full(n - 1, -rho)], offsets=[0, 1, -1])
    >>> W = ws.WoodburyMatrix(Q1, sp.eye_array(n))
    >>> type(W).__name__
    'SymmetricWoodburyMatrix'
    >>> b = np.arange(n, dtype=float)
    >>> bool(np.allclose(W @ W.solve(b), b))
    True
    >>> sign, logdet = W.slogdet()
    >>> bool(np.isclose(logdet, np.linalg.slogdet(W.toarray())[1]))
    True
    """

    def __new__(cls, A, B, U=None, V=None, X=None, symmetric=None, *, shift=0.0):
        if cls is SymmetricWoodburyMatrix:
            if symmetric is False:
                raise ValueError("SymmetricWoodburyMatrix needs `symmetric` True or None")
            symmetric = True
        parts = normalise(A, B, U, V, X, symmetric, shift)
        target = SymmetricWoodburyMatrix if parts.symmetric else WoodburyMatrix
        return target._from_parts(parts)

    def __init__(self, A, B, U=None, V=None, X=None, symmetric=None, *, shift=0.0):
        # Construction happens in __new__, which may return the symmetric subclass.
        pass

    @classmethod
    def _from_parts(
        cls, parts: Parts, transpose_of: WoodburyMatrix | None = None, token: str | None = None
    ):
        """Build an operator from validated parts (no checks, no copies).

        ``token`` identifies the operator across processes (see :func:`_restore`): a new
        one for a new operator, the parent's with ``.T`` appended for a transpose, the
        pickled one for a restored operator.
        """
        if token is None:
            token = f"{transpose_of._token}.T" if transpose_of is not None else uuid.uuid4().hex
        self = super().__new__(cls)
        object.__setattr__(self, "_parts", parts)
        object.__setattr__(self, "_transpose_of", transpose_of)
        object.__setattr__(self, "_token", token)
        LinearOperator.__init__(self, dtype=np.float64, shape=parts.A.shape)
        object.__setattr__(self, "_frozen", True)
        return self

    def __setattr__(self, name, value):
        if getattr(self, "_frozen", False):
            raise AttributeError(f"{type(self).__name__} is immutable; build a new operator")
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self):
        # By value, without any factorisation (CHOLMOD factors cannot be pickled, and would
        # dwarf the inputs): the normalised inputs and the identity token. The receiving
        # process restores one operator per token and factorises it there, lazily, once.
        if self._transpose_of is not None:  # restore as the transpose of the original
            return (_restore_transpose, (self._transpose_of,))
        return (_restore, (type(self).__name__, self._parts, self._token))

    def __dask_tokenize__(self):
        # Dask's name for the operator (graph keys, ``scatter(hash=True)``): its identity
        # token, instead of hashing the inputs' bytes. Operators are immutable.
        return ("woodbury_sparse", type(self).__name__, self._token)

    # -- the pieces -------------------------------------------------------------------
    @property
    def n(self) -> int:
        """Order of ``W``."""
        return self.shape[0]

    @property
    def p(self) -> int:
        """Order of ``B`` and of the capacitance ``O`` (the rank of the update, at most)."""
        return self._parts.B.shape[0]

    @property
    def A(self):
        """``A`` (read-only ndarray, or a sparse array for sparse and diagonal blocks)."""
        return _user_matrix(self._parts.A)

    @property
    def B(self):
        """``B``, combined block-diagonally when given as a list."""
        return _user_matrix(self._parts.B)

    @property
    def U(self):
        """``U`` (``n×p``)."""
        return _user_matrix(self._parts.U)

    @property
    def V(self):
        """``V`` (``p×n``)."""
        return _user_matrix(self._parts.V)

    @property
    def nbytes(self) -> int:
        """Bytes held by the inputs (not counting cached factorisations)."""
        # Each buffer once: in the symmetric form V = Xᵀ is a view of X's storage.
        parts = self._parts
        buffers = {}
        for block in (parts.A, parts.B, parts.U, parts.V):
            for array in block._storage():
                while isinstance(array.base, np.ndarray):
                    array = array.base
                buffers[id(array)] = array.nbytes
        return sum(buffers.values())

    @cached_property
    def _AU(self) -> Block:
        if self._transpose_of is not None:
            return self._transpose_of._VA.T
        return self._parts.A.times(self._parts.U)

    @cached_property
    def _VA(self) -> Block:
        if self._transpose_of is not None:
            return self._transpose_of._AU.T
        return self._parts.V.times(self._parts.A)

    @cached_property
    def _O(self) -> Block:
        """The capacitance ``O = B + V A U`` as a block (dense unless large and sparse)."""
        if self._transpose_of is not None:
            return self._transpose_of._O.T
        parts = self._parts
        with np.errstate(over="ignore", invalid="ignore"):  # checked just below
            o = parts.B.plus(parts.V.times(self._AU)).densified()
        if not o.is_finite():
            raise FactorizationError(
                "O",
                "the capacitance O = B + V A U overflowed to inf or NaN; rescale `A`, `B`, "
                "`U`/`V` or `X` (for example to unit diagonal)",
            )
        exact = parts.symmetric and parts.A.symmetric and parts.B.symmetric
        if exact and parts.U.kind == "identity" and o.kind in ("dense", "sparse"):
            # O = B + A, entry by entry, of the exactly symmetric A and B (see
            # Block.symmetric): the sums at (i, j) and (j, i) add the same two numbers, so
            # O is exactly symmetric and the O(nnz) asymmetry check of symmetrized() would
            # only confirm it.
            o = Block(o.kind, o.shape, o.data, True)
        o = o.symmetrized() if parts.symmetric else o
        o = o.renamed("O")
        # updates.refactor/with_blocks leave the old operator's capacitance here: when the
        # new O has its sparsity pattern, O's factorisation reuses its symbolic analysis.
        donor = self.__dict__.pop(CAPACITANCE_DONOR, None)
        if donor is not None and same_sparse_pattern(donor, o) and donor.symmetric == o.symmetric:
            o.__dict__[ANALYSIS_DONOR] = donor.factor
        return o

    def capacitance_rcond(self) -> float:
        """Estimated reciprocal condition number of the capacitance ``O`` (1-norm).

        LAPACK's ``pocon``/``gecon`` for a dense ``O``, the Hager–Higham estimate of
        ``‖O⁻¹‖₁`` from a few solves with the cached factor otherwise (never below the
        exact value, almost always within a factor 3 of it). A value below ``√eps`` triggers an
        :class:`~woodbury_sparse.IllConditionedWarning` from the operations that use
        ``O``. Factorises ``O`` if it is not factorised yet.

        Examples
        --------
        >>> import numpy as np
        >>> import woodbury_sparse as ws
        >>> W = ws.WoodburyMatrix(np.eye(3), np.eye(1), X=np.ones((3, 1)))  # O = [[4]]
        >>> W.capacitance_rcond()
        1.0
        """
        return self._capacitance_rcond

    @cached_property
    def _capacitance_rcond(self) -> float:
        if self.p == 0:
            return 1.0
        factor = self._O.factor
        # ‖O‖₁ costs a pass over O; CHOLMOD's and the closed-form estimates ignore it.
        return factor.rcond(self._O.one_norm() if factor.rcond_needs_norm else np.nan)

    def _capacitance_factor(self):
        """``O``'s factorisation; warns (once per operator) when ``O`` is ill-conditioned."""
        factor = self._O.factor
        if "_warned_ill_conditioned" not in self.__dict__:
            rcond = self._capacitance_rcond
            # A cache entry like any other: the operator's value does not change.
            self.__dict__["_warned_ill_conditioned"] = rcond < RCOND_WARNING
            if rcond < RCOND_WARNING:
                warn(
                    f"the capacitance O = B + V A U is ill-conditioned (estimated reciprocal "
                    f"condition number {rcond:.1e} < {RCOND_WARNING:.1e}): solves and "
                    "log-determinants may have lost half their digits or more; "
                    "solve(b, refine=k) can restore accuracy when W itself is "
                    "well-conditioned",
                    IllConditionedWarning,
                )
        return factor

    @property
    def capacitance(self):
        """The capacitance ``O = B + V A U`` (``p×p``), dense unless large and sparse."""
        return _user_matrix(self._O)

    # -- LinearOperator hooks -----------------------------------------------------------
    def _apply(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(_dense_operand(x), dtype=np.float64)
        parts = self._parts
        first = parts.A.factor.solve(x)
        if self.p == 0:
            return np.array(first)
        with np.errstate(over="ignore", invalid="ignore"):  # reported by _finite
            result = first + parts.U.matmul(parts.B.factor.solve(parts.V.matmul(x)))
        return _finite(result, "W @ x")

    def _matvec(self, x):
        return self._apply(x)

    def _matmat(self, X):
        return self._apply(X)

    def _rmatvec(self, x):
        return self.T._apply(x)

    def _rmatmat(self, X):
        return self.T._apply(X)

    @cached_property
    def _transposed(self) -> WoodburyMatrix:
        if self._transpose_of is not None:
            return self._transpose_of
        p = self._parts
        parts = Parts(p.A.T, p.B.T, p.V.T, p.U.T, False)
        return WoodburyMatrix._from_parts(parts, transpose_of=self)

    def _transpose(self):
        return self._transposed

    def _adjoint(self):
        return self._transposed

    def matvec(self, x):
        return super().matvec(_dense_operand(x))

    def matmat(self, X):
        return super().matmat(_dense_operand(X))

    def rmatvec(self, x):
        return super().rmatvec(_dense_operand(x))

    def rmatmat(self, X):
        return super().rmatmat(_dense_operand(X))

    def dot(self, x):
        return super().dot(_dense_operand(x))

    # -- linear algebra -----------------------------------------------------------------
    def solve(self, b, refine: int = 0) -> np.ndarray:
        """Solve ``W x = b``.

        Parameters
        ----------
        b : (n,) or (n, k) array_like or sparse matrix
            Right-hand side(s).
        refine : int, optional
            Steps of iterative refinement ``x ← x + W⁻¹(b − W x)`` (default 0). Each step
            costs one product with ``W`` (which factorises ``A`` and ``B`` once) and one
            more solve, all with cached factorisations. It restores a small backward
            error when ``O`` is ill-conditioned but ``W`` is not; when ``W`` itself is
            ill-conditioned nothing can recover the digits its conditioning destroys.

        Returns
        -------
        x : ndarray
            Same shape as ``b`` (dense even for sparse ``b``).

        Raises
        ------
        SingularMatrixError
            When the capacitance ``O`` (and so ``W``) is singular.

        Notes
        -----
        ``x = A b − (A U) O⁻¹ (V A b)``: one product with ``A``, one with ``V`` and with
        the cached ``A U``, and one solve with the cached factorisation of ``O``. ``A``
        is never factorised.

        Examples
        --------
        >>> import numpy as np
        >>> import woodbury_sparse as ws
        >>> W = ws.WoodburyMatrix(np.diag([1.0, 2.0, 4.0]), np.eye(1), X=np.ones((3, 1)))
        >>> x = W.solve(np.ones(3))
        >>> bool(np.allclose(W @ x, np.ones(3)))
        True
        """
        if isinstance(refine, bool) or not isinstance(refine, (int, np.integer)) or refine < 0:
            raise ValueError(f"`refine` must be a non-negative integer, got {refine!r}")
        rhs = as_rhs(b, self.n)
        x = self._solve(rhs)
        for _ in range(int(refine)):
            x = x + self._solve(rhs - self._apply(x))
        return x

    def _solve(self, rhs: np.ndarray) -> np.ndarray:
        parts = self._parts
        Ab = parts.A.matmul(rhs)
        if self.p == 0:
            return np.array(Ab)
        factor = self._capacitance_factor()
        with np.errstate(over="ignore", invalid="ignore"):  # reported by _finite
            result = Ab - self._AU.matmul(factor.solve(parts.V.matmul(Ab)))
        return _finite(result, "W.solve")

    def slogdet(self) -> tuple[float, float]:
        """Sign and natural logarithm of ``|det W|``.

        Returns
        -------
        sign : float
            ``1.0``, ``-1.0``, or ``0.0`` when ``W`` is singular.
        logabsdet : float
            ``log|det W|`` (``-inf`` when singular).

        Notes
        -----
        The determinant lemma ``det W = det O / (det A · det B)``, with signs carried
        separately from the logarithms. Needs factorisations of ``A``, ``B`` and ``O``.

        Examples
        --------
        >>> import numpy as np
        >>> import woodbury_sparse as ws
        >>> W = ws.WoodburyMatrix(np.diag([1.0, 2.0]), np.eye(1), X=np.ones((2, 1)))
        >>> W.slogdet()  # W = [[2, 1], [1, 1.5]], det W = 2
        (1.0, 0.693147180559945...)
        """
        parts = self._parts
        sign_a, log_a = parts.A.factor.slogdet
        sign_b, log_b = parts.B.factor.slogdet
        try:
            factor_o = self._capacitance_factor()
        except SingularMatrixError:
            return 0.0, -np.inf
        sign_o, log_o = factor_o.slogdet
        if (
            parts.symmetric
            and parts.A.factor.positive_definite
            and parts.B.factor.positive_definite
            and not factor_o.positive_definite
            and "_warned_lu" not in self.__dict__
        ):
            self.__dict__["_warned_lu"] = True
            warn(
                "the capacitance O = B + Xᵀ A X is positive definite in exact arithmetic "
                "(A and B are), but its Cholesky factorisation failed in floating point: O "
                "is numerically singular, and log|det O| comes from an LU factorisation",
                IllConditionedWarning,
            )
        sign = sign_o * sign_a * sign_b
        if sign == 0:
            return 0.0, -np.inf
        return sign, log_o - log_a - log_b

    def logdet(self) -> float:
        """``log det W``; raises ``numpy.linalg.LinAlgError`` unless ``det W > 0``.

        Examples
        --------
        >>> import numpy as np
        >>> import woodbury_sparse as ws
        >>> W = ws.WoodburyMatrix(np.eye(2), np.eye(2))  # W = 2 I
        >>> bool(np.isclose(W.logdet(), 2 * np.log(2)))
        True
        """
        sign, logabsdet = self.slogdet()
        if sign <= 0:
            what = "zero" if sign == 0 else "negative"
            raise np.linalg.LinAlgError(
                f"det W is {what}, so log det W is not real; use slogdet() for sign and log|det W|"
            )
        return logabsdet

    def toarray(self) -> np.ndarray:
        """``W`` as a dense ndarray (R's ``instantiate``): ``O(n²)`` memory.

        Examples
        --------
        >>> import numpy as np
        >>> import woodbury_sparse as ws
        >>> ws.WoodburyMatrix(2 * np.eye(2), np.eye(1), X=np.ones((2, 1))).toarray()
        array([[1.5, 1. ],
               [1. , 1.5]])
        """
        return self._apply(np.eye(self.n))

    def inv(self) -> LinearOperator:
        """``W⁻¹ = A − A U O⁻¹ V A`` as a lazy operator; its products are solves with ``W``.

        Usable as the ``M=`` preconditioner of SciPy's Krylov solvers.

        Examples
        --------
        >>> import numpy as np
        >>> import woodbury_sparse as ws
        >>> W = ws.WoodburyMatrix(np.eye(2), np.eye(2))  # W = 2 I
        >>> W.inv().toarray()
        array([[0.5, 0. ],
               [0. , 0.5]])
        """
        return self._inverse

    @cached_property
    def _inverse(self) -> WoodburyInverse:
        return WoodburyInverse(self)

    # -- updates (new operators sharing this one's factorisations) ---------------------
    def add_terms(self, B, X=None, U=None, V=None) -> WoodburyMatrix:
        """``W + X₂ B₂⁻¹ X₂ᵀ`` or ``W + U₂ B₂⁻¹ V₂`` as a new operator.

        See :func:`woodbury_sparse.updates.add_terms`.

        Examples
        --------
        >>> import numpy as np
        >>> import woodbury_sparse as ws
        >>> W = ws.SymmetricWoodburyMatrix(np.eye(2), np.eye(1), X=np.ones((2, 1)))
        >>> W.add_terms(np.eye(1), X=np.array([[1.0], [-1.0]])).toarray()
        array([[3., 1.],
               [1., 3.]])
        """
        from .updates import add_terms

        return add_terms(self, B, X=X, U=U, V=V)

    def refactor(self, A=None, B=None) -> WoodburyMatrix:
        """New values of ``A``/``B`` with the same sparsity pattern, reusing the analysis.

        See :func:`woodbury_sparse.updates.refactor` (raises ``ValueError`` for a changed
        pattern; :meth:`with_blocks` accepts one).

        Examples
        --------
        >>> import numpy as np
        >>> import woodbury_sparse as ws
        >>> W = ws.SymmetricWoodburyMatrix(np.eye(2), np.eye(2))
        >>> W.refactor(B=0.5 * np.eye(2)).toarray()
        array([[3., 0.],
               [0., 3.]])
        """
        from .updates import refactor

        return refactor(self, A=A, B=B)

    def with_blocks(self, A=None, B=None) -> WoodburyMatrix:
        """New values of ``A``/``B``; reuses the analysis where the pattern is unchanged.

        See :func:`woodbury_sparse.updates.with_blocks`.

        Examples
        --------
        >>> import numpy as np
        >>> import woodbury_sparse as ws
        >>> W = ws.SymmetricWoodburyMatrix(np.eye(2), np.eye(2))
        >>> W.with_blocks(A=np.array([[2.0, 1.0], [1.0, 2.0]])).shape
        (2, 2)
        """
        from .updates import with_blocks

        return with_blocks(self, A=A, B=B)

    def __repr__(self) -> str:
        parts = self._parts
        names = ("A", "B", "X") if parts.symmetric else ("A", "B", "U", "V")
        blocks = (
            (parts.A, parts.B, parts.U) if parts.symmetric else (parts.A, parts.B, parts.U, parts.V)
        )
        desc = ", ".join(f"{nm}: {_describe_block(b)}" for nm, b in zip(names, blocks, strict=True))
        return f"<{self.n}×{self.n} {type(self).__name__} with p={self.p}; {desc}>"


def _finite(result: np.ndarray, what: str) -> np.ndarray:
    """``result``, unless overflow or an invalid operation made part of it inf or NaN."""
    if not all_finite(result):
        raise FloatingPointError(
            f"{what} produced inf or NaN (overflow in an intermediate product); rescale the "
            "inputs, for example to unit diagonal"
        )
    return result


def _describe_block(block: Block) -> str:
    shape = "×".join(map(str, block.shape))
    if block.kind == "sparse":
        return f"{shape} sparse (nnz={block.data.nnz})"
    return f"{shape} {block.kind}"


class SymmetricWoodburyMatrix(WoodburyMatrix):
    """The symmetric form ``W = A⁻¹ + X B⁻¹ Xᵀ`` with symmetric ``A`` and ``B``.

    Construct it with :class:`WoodburyMatrix` (which picks the form) or directly, with
    the same arguments except ``U`` and ``V``. It is its own transpose.

    Examples
    --------
    Bayesian linear regression: ``Y ~ N(0, σ² I + X Q⁻¹ Xᵀ)``.

    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((50, 3))
    >>> W = ws.SymmetricWoodburyMatrix(np.eye(50), np.eye(3), X=X)
    >>> bool(np.allclose(W.toarray(), np.eye(50) + X @ X.T))
    True
    >>> W.T is W
    True
    """

    @property
    def X(self):
        """``X`` (``n×p``)."""
        return _user_matrix(self._parts.U)

    @cached_property
    def _VA(self) -> Block:
        return self._AU.T

    @cached_property
    def _transposed(self) -> SymmetricWoodburyMatrix:
        return self

    def _rmatvec(self, x):
        return self._apply(x)

    def _rmatmat(self, X):
        return self._apply(X)

    def as_covariance(self):
        """``W`` as a :class:`scipy.stats.Covariance`, for ``scipy.stats`` distributions.

        Returns
        -------
        woodbury_sparse.stats.WoodburyCovariance
            Exact whitening and colouring maps; built once and cached.

        Raises
        ------
        NotPositiveDefiniteError
            When ``W`` is not positive definite, or when ``A`` is not: the exact square
            root is built on the Cholesky factor of ``A`` (of any kind, sparse included),
            and none is affordable otherwise (use :class:`~woodbury_sparse.WoodburyNormal`,
            which needs none).

        Notes
        -----
        Setup costs ``O(n k²)`` time and ``O(n k)`` memory with ``k = min(n, p)``.

        Examples
        --------
        >>> import numpy as np
        >>> from scipy import stats
        >>> import woodbury_sparse as ws
        >>> W = ws.WoodburyMatrix(np.eye(2), np.eye(2))  # W = 2 I
        >>> dist = stats.multivariate_normal(mean=np.zeros(2), cov=W.as_covariance())
        >>> round(float(dist.logpdf(np.ones(2))), 6)
        -3.031024
        """
        return self._covariance_object

    @cached_property
    def _covariance_object(self):
        from .stats import WoodburyCovariance

        return WoodburyCovariance(self)


class WoodburyInverse(LinearOperator):
    """``W⁻¹`` for a :class:`WoodburyMatrix` ``W``, applied through ``W.solve``.

    Obtain it with :meth:`WoodburyMatrix.inv`.
    """

    def __init__(self, W: WoodburyMatrix) -> None:
        self.W = W
        super().__init__(dtype=np.float64, shape=W.shape)

    def _matvec(self, x):
        return self.W._solve(np.asarray(_dense_operand(x), dtype=np.float64))

    def _matmat(self, X):
        return self._matvec(X)

    def _rmatvec(self, x):
        return self.W.T._solve(np.asarray(_dense_operand(x), dtype=np.float64))

    def _rmatmat(self, X):
        return self._rmatvec(X)

    def _transpose(self):
        return self.W.T.inv()

    _adjoint = _transpose

    def inv(self) -> WoodburyMatrix:
        """The operator this is the inverse of."""
        return self.W

    def slogdet(self) -> tuple[float, float]:
        """``(sign, log|det W⁻¹|)``."""
        sign, logabsdet = self.W.slogdet()
        return sign, -logabsdet

    def toarray(self) -> np.ndarray:
        """``A − (A U) O⁻¹ (V A)`` as a dense ndarray, in ``O(n² p)`` flops."""
        W = self.W
        a = W._parts.A
        if W.p == 0:
            return a.toarray()
        # One fresh n×n array, written in place: at n in the thousands, every extra
        # n×n temporary costs as much as the product itself.
        out = W._AU.matmul(W._O.factor.solve(W._VA.toarray()))
        if a.kind == "dense":
            return np.subtract(a.data, out, out=out)
        np.subtract(0.0, out, out=out)  # not negative(): no -0.0 entries
        if a.kind == "sparse":
            out += a.data.toarray()
        else:
            out[np.diag_indices(W.shape[0])] += a.diagonal()
        return out

    def __repr__(self) -> str:
        return f"<inverse of {self.W!r}>"


class _OperatorCache:
    """A bounded, thread-safe, per-process LRU of restored operators, keyed by token.

    Unpickling the same operator again in a process (a Dask worker receiving it with
    every task, say) returns the operator restored first, with the factorisations it has
    built since: each process factorises each operator once. Only operators restored from
    a pickle are held, never the ones a process builds itself.
    """

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._entries: OrderedDict[str, WoodburyMatrix] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.restores: dict[str, int] = {}

    def get(self, token: str, build) -> WoodburyMatrix:
        with self._lock:
            op = self._entries.get(token)
            if op is not None:
                self._entries.move_to_end(token)
                self.hits += 1
                return op
            op = build()
            self.misses += 1
            self.restores[token] = self.restores.pop(token, 0) + 1
            self._entries[token] = op
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
            while len(self.restores) > 8 * self.maxsize:  # bounded too: oldest first
                del self.restores[next(iter(self.restores))]
            return op

    def info(self) -> dict:
        """Counters, and for each cached token its class and the blocks factorised so far."""
        with self._lock:
            entries = dict(self._entries)
            out = {"maxsize": self.maxsize, "hits": self.hits, "misses": self.misses}
            restores = dict(self.restores)
        out["operators"] = {
            token: {
                "class": type(op).__name__,
                "restores": restores.get(token, 0),
                "factorised": _factorised_blocks(op),
            }
            for token, op in entries.items()
        }
        return out

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0
            self.restores.clear()


def _factorised_blocks(op: WoodburyMatrix) -> list[str]:
    """Which of ``A``, ``B`` and ``O`` ``op`` (or its transpose) has factorised."""
    ops = [op, op.__dict__.get("_transposed")]
    names = []
    for name in ("A", "B", "O"):
        for one in ops:
            if one is None:
                continue
            block = one.__dict__.get("_O") if name == "O" else getattr(one._parts, name)
            if block is not None and "factor" in block.__dict__:
                names.append(name)
                break
    return names


#: The operators this process restored from pickles (see :class:`_OperatorCache`).
OPERATOR_CACHE = _OperatorCache(maxsize=32)


def _restore(class_name: str, parts: Parts, token: str | None = None) -> WoodburyMatrix:
    cls = {"WoodburyMatrix": WoodburyMatrix, "SymmetricWoodburyMatrix": SymmetricWoodburyMatrix}
    if token is None:  # a pickle from before tokens existed
        return cls[class_name]._from_parts(parts)
    return OPERATOR_CACHE.get(token, lambda: cls[class_name]._from_parts(parts, token=token))


def _restore_transpose(original: WoodburyMatrix) -> WoodburyMatrix:
    return original.T
