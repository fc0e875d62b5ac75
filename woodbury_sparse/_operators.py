"""The public operators: ``WoodburyMatrix`` (general) and ``SymmetricWoodburyMatrix``."""

from __future__ import annotations

from functools import cached_property

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import LinearOperator

from ._blocks import Block
from ._exceptions import SingularMatrixError
from ._validation import Parts, as_rhs, normalise

__all__ = ["SymmetricWoodburyMatrix", "WoodburyMatrix"]


def _dense_operand(x):
    """Sparse right-hand sides become dense float64 arrays; anything else is left alone."""
    return x.toarray() if sparse.issparse(x) else x


def _user_matrix(block: Block):
    """A block as the user sees it: read-only ndarray, or a sparse array."""
    if block.kind in ("identity", "diagonal"):
        return block.tosparse()
    return block.data


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

    def __new__(cls, A, B, U=None, V=None, X=None, symmetric=None):
        if cls is SymmetricWoodburyMatrix:
            if symmetric is False:
                raise ValueError("SymmetricWoodburyMatrix needs `symmetric` True or None")
            symmetric = True
        parts = normalise(A, B, U, V, X, symmetric)
        target = SymmetricWoodburyMatrix if parts.symmetric else WoodburyMatrix
        return target._from_parts(parts)

    def __init__(self, A, B, U=None, V=None, X=None, symmetric=None):
        # Construction happens in __new__, which may return the symmetric subclass.
        pass

    @classmethod
    def _from_parts(cls, parts: Parts, transpose_of: WoodburyMatrix | None = None):
        """Build an operator from validated parts (no checks, no copies)."""
        self = super().__new__(cls)
        object.__setattr__(self, "_parts", parts)
        object.__setattr__(self, "_transpose_of", transpose_of)
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
        if self._transpose_of is not None:  # restore as the transpose of the original
            return (_restore_transpose, (self._transpose_of,))
        return (_restore, (type(self).__name__, self._parts))

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
        parts = self._parts
        blocks = {id(b): b for b in (parts.A, parts.B, parts.U, parts.V)}
        return sum(b.nbytes for b in blocks.values())

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
        o = parts.B.plus(parts.V.times(self._AU)).densified()
        o = o.symmetrized() if parts.symmetric else o
        return o.renamed("O")

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
        return first + parts.U.matmul(parts.B.factor.solve(parts.V.matmul(x)))

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
    def solve(self, b) -> np.ndarray:
        """Solve ``W x = b``.

        Parameters
        ----------
        b : (n,) or (n, k) array_like or sparse matrix
            Right-hand side(s).

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
        return self._solve(as_rhs(b, self.n))

    def _solve(self, rhs: np.ndarray) -> np.ndarray:
        parts = self._parts
        Ab = parts.A.matmul(rhs)
        if self.p == 0:
            return np.array(Ab)
        correction = self._O.factor.solve(parts.V.matmul(Ab))
        return Ab - self._AU.matmul(correction)

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
            sign_o, log_o = self._O.factor.slogdet
        except SingularMatrixError:
            return 0.0, -np.inf
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

    def __repr__(self) -> str:
        parts = self._parts
        names = ("A", "B", "X") if parts.symmetric else ("A", "B", "U", "V")
        blocks = (
            (parts.A, parts.B, parts.U) if parts.symmetric else (parts.A, parts.B, parts.U, parts.V)
        )
        desc = ", ".join(f"{nm}: {_describe_block(b)}" for nm, b in zip(names, blocks, strict=True))
        return f"<{self.n}×{self.n} {type(self).__name__} with p={self.p}; {desc}>"


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
        NotImplementedError
            When ``A`` is sparse: no exact square root of ``W`` is affordable then (use
            :class:`~woodbury_sparse.WoodburyNormal`, which needs none).
        NotPositiveDefiniteError
            When ``A`` or ``W`` is not positive definite.

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
        """``A − (A U) O⁻¹ (V A)`` as a dense ndarray."""
        W = self.W
        dense_a = W._parts.A.toarray()
        if W.p == 0:
            return dense_a
        va = W._VA.toarray()
        return dense_a - W._AU.matmul(W._O.factor.solve(va))

    def __repr__(self) -> str:
        return f"<inverse of {self.W!r}>"


def _restore(class_name: str, parts: Parts) -> WoodburyMatrix:
    cls = {"WoodburyMatrix": WoodburyMatrix, "SymmetricWoodburyMatrix": SymmetricWoodburyMatrix}
    return cls[class_name]._from_parts(parts)


def _restore_transpose(original: WoodburyMatrix) -> WoodburyMatrix:
    return original.T
