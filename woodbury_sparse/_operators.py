"""The public operators: ``WoodburyMatrix`` (general) and ``SymmetricWoodburyMatrix``."""

from __future__ import annotations

import uuid
from typing import NamedTuple

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import LinearOperator

from . import _updating
from ._blocks import Block
from ._cache import weak_cached_property
from ._core import (
    RCOND_WARNING,
    Reuse,
    State,
)
from ._covariance import WoodburyCovariance
from ._process_cache import OPERATOR_CACHE
from ._validation import Parts, as_count, as_rhs, as_vectors, normalise, symmetric_flag

__all__ = ["RCOND_WARNING", "SymmetricWoodburyMatrix", "WoodburyMatrix"]


def _user_matrix(block: Block):
    """A block as the user sees it: read-only ndarray, or a sparse array.

    Never the block's own objects: read-only *views* whose ``writeable`` flag cannot be
    turned back on (see :func:`_sealed_view`), in a new sparse array for a sparse block (so
    that assigning to its attributes cannot change the operator); identity and diagonal
    blocks come as new sparse arrays, which share nothing with the operator.
    """
    if block.kind in ("identity", "diagonal"):
        return block.tosparse()
    m = block.data
    if block.kind == "sparse":
        out = sparse.csc_array(
            (_sealed_view(m.data), _sealed_view(m.indices), _sealed_view(m.indptr)),
            shape=m.shape,
            copy=False,
        )
        out.has_sorted_indices = True  # blocks keep sorted indices: nothing to sort in place
        return out
    return _sealed_view(m)


def _sealed_view(array: np.ndarray) -> np.ndarray:
    """A view of a block's storage that cannot be made writable; a copy if need be.

    NumPy lets ``setflags(write=True)`` succeed on a read-only view whenever some array
    below it (its ``base`` chain) is writable: SciPy's sparse constructors leave the
    ``data`` of a copied matrix as such a view, so a user could have written through it
    into the operator's storage. The whole chain belongs to the block (its storage is
    made from copies), so it is locked all the way down; memory NumPy cannot lock (an
    array over a foreign buffer) is handed out as a copy instead.
    """
    base: np.ndarray | None = array
    while isinstance(base, np.ndarray):
        base.flags.writeable = False
        base = base.base
    view = array.view()
    probe = array.view()
    try:
        probe.flags.writeable = True
    except ValueError:
        return view
    copy = np.array(array)
    copy.flags.writeable = False
    return copy


def _operand_array(x) -> np.ndarray:
    """A trusted operand (SciPy's hooks) as a dense float64 or complex128 ndarray."""
    x = np.asarray(x.toarray() if sparse.issparse(x) else x)
    return x.astype(np.complex128 if x.dtype.kind == "c" else np.float64, copy=False)


def _real_linear(apply, x: np.ndarray) -> np.ndarray:
    """``apply(x)`` for a real linear map ``apply`` and a real or complex ``x``.

    A complex ``x`` (``n`` or ``n×k``) is split into its real and imaginary parts, stacked as
    the ``2k`` columns of one real operand: one call (one pass of every solve and product,
    with the factorisations' multi-column kernels) gives both ``W Re x`` and ``W Im x``,
    which are exactly the real and imaginary parts of the result.
    """
    if x.dtype.kind != "c":
        return apply(x)
    columns = x[:, None] if x.ndim == 1 else x
    k = columns.shape[1]
    y = apply(np.concatenate((columns.real, columns.imag), axis=1))
    out = np.empty((y.shape[0], k), dtype=np.complex128)
    out.real = y[:, :k]
    out.imag = y[:, k:]
    return out[:, 0] if x.ndim == 1 else out


def _like(x, y: np.ndarray):
    """``y`` as an ``numpy.matrix`` when the operand ``x`` was one (SciPy's convention)."""
    return np.asmatrix(y) if isinstance(x, np.matrix) else y


class _RealOperator(LinearOperator):
    """SciPy's public products for a real square operator: validated, complex-aware.

    SciPy's wrappers check shapes with a bare "dimension mismatch", pass NumPy's errors
    through, and cast nothing: a real operator's hooks then drop the imaginary part of a
    complex operand. Here every entry point checks its operand with
    :func:`~woodbury_sparse._validation.as_vectors` (naming it, with the expected length;
    NaN and infinite values refused) and applies the operator to a complex operand as one
    real product (:func:`_real_linear`). Subclasses implement ``_forward`` (the operator)
    and ``_backward`` (its transpose): trusted hooks taking a float64 array of shape
    ``(n,)`` or ``(n, k)``.
    """

    def _forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _backward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # SciPy's hooks, for anything that calls them directly: trusted operands.
    def _matvec(self, x):
        return _real_linear(self._forward, _operand_array(x))

    def _matmat(self, X):
        return _real_linear(self._forward, _operand_array(X))

    def _rmatvec(self, x):
        return _real_linear(self._backward, _operand_array(x))

    def _rmatmat(self, X):
        return _real_linear(self._backward, _operand_array(X))

    # The public entry points.
    def _vector(self, x, name: str) -> np.ndarray:
        arr = as_vectors(x, self.shape[0], name)
        if arr.ndim == 2 and arr.shape[1] != 1:
            n = self.shape[0]
            raise ValueError(
                f"`{name}` must have shape ({n},) or ({n}, 1), got {arr.shape}; use matmat "
                "(or @) for several columns"
            )
        return arr

    def _block(self, X, name: str) -> np.ndarray:
        arr = as_vectors(X, self.shape[0], name)
        if arr.ndim != 2:
            raise ValueError(
                f"`{name}` must be 2-D, got shape {arr.shape}; use matvec (or @) for a vector"
            )
        return arr

    def matvec(self, x):
        """``W @ x`` for ``x`` of shape ``(n,)`` or ``(n, 1)``, real or complex."""
        return _like(x, _real_linear(self._forward, self._vector(x, "x")))

    def rmatvec(self, x):
        """``Wᴴ @ x`` (``= Wᵀ @ x``: ``W`` is real) for ``x`` of shape ``(n,)`` or ``(n, 1)``."""
        return _like(x, _real_linear(self._backward, self._vector(x, "x")))

    def matmat(self, X):
        """``W @ X`` for ``X`` of shape ``(n, k)``, real or complex."""
        return _like(X, _real_linear(self._forward, self._block(X, "X")))

    def rmatmat(self, X):
        """``Wᴴ @ X`` (``= Wᵀ @ X``: ``W`` is real) for ``X`` of shape ``(n, k)``."""
        return _like(X, _real_linear(self._backward, self._block(X, "X")))

    def dot(self, x):
        """``W @ x`` for a 1-D or 2-D ``x``; SciPy's lazy operators for operators and scalars."""
        if isinstance(x, LinearOperator) or np.isscalar(x):
            return super().dot(x)
        return _like(x, _real_linear(self._forward, as_vectors(x, self.shape[0], "x")))

    def _left_product(self, x, scipy_hook):
        # ``x @ W = (Wᵀ xᵀ)ᵀ``, with ``x``'s columns checked (SciPy goes through W.T.matvec).
        if isinstance(x, LinearOperator) or np.isscalar(x):
            return scipy_hook(x)
        arr = as_vectors(x, self.shape[0], "x", axis=-1)
        return _like(x, _real_linear(self._backward, arr.T).T)

    def _rdot(self, x):  # SciPy < 1.18's hook of ``x @ W``
        return self._left_product(x, super()._rdot)

    def rdot(self, x):
        """``x @ W`` for a 1-D or 2-D ``x`` (rows), real or complex: SciPy ≥ 1.18's hook."""
        return self._left_product(x, lambda y: super(_RealOperator, self).rdot(y))


class SlogdetResult(NamedTuple):
    """What ``slogdet()`` returns, as :func:`numpy.linalg.slogdet` names it.

    A tuple ``(sign, logabsdet)``: it unpacks, indexes and compares as the pair did.
    """

    sign: float
    """``1.0``, ``-1.0``, or ``0.0`` for a singular matrix."""
    logabsdet: float
    """``log|det|`` (``-inf`` for a singular matrix)."""


class WoodburyMatrix(_RealOperator):
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
        stacked); lists shorter than the longest are recycled. A list of rows of numbers
        (``B=[[4.0]]``) is one matrix given as nested lists, as NumPy reads it; the items
        of a list of terms are matrices (2-D arrays, nested lists of rows, sparse).
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
        symmetrised, silently at the level rounding leaves, ``4·√n·eps``, and with a
        :class:`~woodbury_sparse.WoodburyWarning` naming the block above it). ``True``
        asks for the symmetric form (an error with ``U``/``V`` or with a clearly
        asymmetric block); ``False`` for the general form (an error with ``X``). A NumPy
        bool counts as the Python bool; any other value (``1``, ``"yes"``) is a
        ``TypeError``.
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
        symmetric = symmetric_flag(symmetric)
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
        cls,
        parts: Parts,
        transpose_of: WoodburyMatrix | None = None,
        token: str | None = None,
        reuse: Reuse | None = None,
    ):
        """Build an operator from validated parts (no checks, no copies).

        ``token`` identifies the operator across processes (see :func:`_restore`): a new
        one for a new operator, the parent's with ``.T`` appended for a transpose, the
        pickled one for a restored operator. ``reuse`` is what an update computed for the
        new operator from the old one (see :class:`Reuse`). A transpose's state is its
        original's transposed state (which holds the original's caches).
        """
        if token is None:
            token = f"{transpose_of._token}.T" if transpose_of is not None else uuid.uuid4().hex
        if transpose_of is not None:
            state = transpose_of._state.T
        else:
            state = State(parts, reuse=reuse)
        self = super().__new__(cls)
        object.__setattr__(self, "_state", state)
        object.__setattr__(self, "_parts", state.parts)
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
    def args(self) -> tuple:
        """The blocks ``W`` is made of: ``(A, B, U, V)``; ``(A, B, X)`` for the symmetric form.

        SciPy's operators hold their operands in ``args``; these are the same read-only
        matrices the properties hand out (new objects on every access), so that
        ``WoodburyMatrix(*W.args)`` rebuilds a general ``W`` and
        ``SymmetricWoodburyMatrix(A, B, X=X)`` a symmetric one.
        """
        if self._parts.symmetric:
            return (self.A, self.B, self.U)
        return (self.A, self.B, self.U, self.V)

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

    # -- the state's values, under the names the rest of the package reads ---------------
    @property
    def _AU(self) -> Block:
        return self._state.AU

    @property
    def _VA(self) -> Block:
        return self._state.VA

    @property
    def _O(self) -> Block:
        """The capacitance ``O = B + V A U`` as a block (dense unless large and sparse)."""
        return self._state.O

    @property
    def _capacitance_rcond(self) -> float:
        return self._state.capacitance_rcond

    def _capacitance_factor(self):
        """``O``'s factorisation; warns (once per operator) when ``O`` is ill-conditioned."""
        return self._state.capacitance_factor

    @property
    def _n_side(self):
        return self._state.n_side

    def _apply(self, x: np.ndarray) -> np.ndarray:
        return self._state.apply(x)

    def _solve(self, rhs: np.ndarray) -> np.ndarray:
        return self._state.solve(rhs)

    def _solve_once(self, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return self._state.solve_once(rhs)

    def _refined(self, rhs: np.ndarray) -> np.ndarray:
        return self._state.refined(rhs)

    def capacitance_rcond(self) -> float:
        """Estimated reciprocal condition number of the capacitance ``O`` (1-norm).

        LAPACK's ``pocon``/``gecon`` for a dense ``O``, the Hager–Higham estimate of
        ``‖O⁻¹‖₁`` from a few solves with the cached factor otherwise (never below the
        exact value, almost always within a factor 3 of it). A value below ``√eps`` triggers an
        :class:`~woodbury_sparse.IllConditionedWarning` from the operations that use
        ``O``; they skip the estimate when ``O`` is sparse and diagonally dominant enough
        to prove its value above ``√eps`` (Varah's bound, one pass over ``O``: a GMRF
        plus noise), where it could not warn. Factorises ``O`` if it is not factorised
        yet.

        Examples
        --------
        >>> import numpy as np
        >>> import woodbury_sparse as ws
        >>> W = ws.WoodburyMatrix(np.eye(3), np.eye(1), X=np.ones((3, 1)))  # O = [[4]]
        >>> W.capacitance_rcond()
        1.0
        """
        return self._capacitance_rcond

    @property
    def capacitance(self):
        """The capacitance ``O = B + V A U`` (``p×p``), dense unless large and sparse."""
        return _user_matrix(self._O)

    # -- LinearOperator hooks -----------------------------------------------------------
    def _forward(self, x: np.ndarray) -> np.ndarray:
        return self._apply(x)

    def _backward(self, x: np.ndarray) -> np.ndarray:
        return self.T._apply(x)

    @weak_cached_property
    def _transposed(self) -> WoodburyMatrix:
        return WoodburyMatrix._from_parts(self._state.T.parts, transpose_of=self)

    def _transpose(self):
        # Wᵀ holds W (it uses W's caches); W holds Wᵀ weakly: no reference cycle.
        if self._transpose_of is not None:
            return self._transpose_of
        return self._transposed

    _adjoint = _transpose

    # -- linear algebra -----------------------------------------------------------------
    def solve(self, b, refine: int = 0) -> np.ndarray:
        """Solve ``W x = b``.

        Parameters
        ----------
        b : (n,) or (n, k) array_like or sparse matrix
            Right-hand side(s), real or complex (``W`` is real: a complex ``b`` is solved
            as its real and imaginary parts, side by side in one real solve).
        refine : int, optional
            Steps of iterative refinement ``x ← x + W⁻¹(b − W x)`` (default 0) on top of
            the automatic ones (see Notes). Each step costs one product with ``W`` (which
            factorises ``A`` and ``B`` once) and one more solve, all with cached
            factorisations. It restores a small backward error when ``O`` is
            ill-conditioned but ``W`` is not; when ``W`` itself is ill-conditioned nothing
            can recover the digits its conditioning destroys.

        Returns
        -------
        x : ndarray
            Same shape as ``b`` (dense even for sparse ``b``).

        Raises
        ------
        SingularMatrixError
            When the capacitance ``O`` (and so ``W``) is singular.
        FloatingPointError
            When an intermediate result overflows (inf or NaN is never returned).

        Warns
        -----
        IllConditionedWarning
            When ``O`` is ill-conditioned (once per operator), or when automatic
            refinement leaves a relative residual above ``√eps``.

        Notes
        -----
        With ``U = I`` (``X = I`` in the symmetric form), ``W = B⁻¹ O A⁻¹`` and
        ``x = A O⁻¹ (B b)``; with ``V = I``, ``W = A⁻¹ O B⁻¹`` and ``x = B O⁻¹ (A b)``.
        Neither subtracts, so neither loses digits when ``A`` and ``B`` are scaled far
        apart. Otherwise ``x = A b − (A U) O⁻¹ (V A b)``: one product with ``A``, one with
        ``V`` and with the cached ``A U``, and one solve with the cached factorisation of
        ``O``. When ``A`` dominates ``W`` (a Gaussian-process nugget ``A = I/σ²`` with a
        small ``σ²``, say) the two terms can be much larger than their difference, which
        then keeps only the digits the terms share. Each column of the result is checked:
        when a term exceeds the difference by more than :data:`CANCELLATION_FACTOR`, up
        to :data:`MAX_REFINEMENT_STEPS` steps of iterative refinement follow, in the
        variable ``s = A⁻¹ x`` (products with ``A``, solves with ``B`` and ``O``). ``A``
        is never factorised (``refine=k`` does factorise it).

        Examples
        --------
        >>> import numpy as np
        >>> import woodbury_sparse as ws
        >>> W = ws.WoodburyMatrix(np.diag([1.0, 2.0, 4.0]), np.eye(1), X=np.ones((3, 1)))
        >>> x = W.solve(np.ones(3))
        >>> bool(np.allclose(W @ x, np.ones(3)))
        True

        ``A`` and ``B`` scaled 16 orders of magnitude apart, solved without cancellation:

        >>> W = ws.WoodburyMatrix(1e8 * np.eye(2), 1e-8 * np.eye(2))  # W = (1e-8 + 1e8) I
        >>> W.solve(np.ones(2))
        array([1.e-08, 1.e-08])
        """
        steps = as_count(refine)
        if steps is None or steps < 0:  # a ValueError either way, as always
            raise ValueError(f"`refine` must be a non-negative integer, got {refine!r}")
        rhs = as_rhs(b, self.n)
        if rhs.dtype.kind == "c":  # W is real: the real and imaginary parts in one solve
            return _real_linear(lambda real: self.solve(real, refine), rhs)
        x = self._solve(rhs)
        for _ in range(steps):
            x = x + self._solve_once(rhs - self._apply(x))[0]
        return x

    def slogdet(self) -> SlogdetResult:
        """Sign and natural logarithm of ``|det W|``.

        Returns
        -------
        SlogdetResult
            A named pair, as :func:`numpy.linalg.slogdet` returns (it unpacks as
            ``sign, logabsdet = W.slogdet()``):

            sign : float
                ``1.0``, ``-1.0``, or ``0.0`` when ``W`` is singular.
            logabsdet : float
                ``log|det W|`` (``-inf`` when singular).

        Notes
        -----
        The determinant lemma ``det W = det O / (det A · det B)``, with signs carried
        separately from the logarithms. Needs factorisations of ``A``, ``B`` and ``O``.

        The other side of the lemma, ``det W = det(A W) / det A`` with the ``n×n`` matrix
        ``A W = I + (A U)(B⁻¹ V)``, is used instead when ``O`` is dense, ``n ≤ p`` (so
        that factorising ``A W`` densely, in ``O(n² p)``, costs no more than ``O`` did),
        ``O``'s estimated reciprocal condition number is below :data:`N_SIDE_RCOND` and
        ``A W``'s is 10 times larger. With ``p > n`` and ``A`` dominant (a Gaussian-process nugget
        ``A = I/σ²`` with a small ``σ²``), ``O`` has ``p − n`` eigenvalues of the size of
        ``B`` beside ``n`` of the size of ``A``, and its determinant loses about
        ``eps·cond(O)``, where ``A W`` is as well conditioned as ``W`` (for a
        well-conditioned ``A``).

        Examples
        --------
        >>> import numpy as np
        >>> import woodbury_sparse as ws
        >>> W = ws.WoodburyMatrix(np.diag([1.0, 2.0]), np.eye(1), X=np.ones((2, 1)))
        >>> W.slogdet()  # W = [[2, 1], [1, 1.5]], det W = 2
        SlogdetResult(sign=1.0, logabsdet=0.693147180559945...)
        >>> bool(np.isclose(W.slogdet().logabsdet, np.log(2.0)))
        True
        """
        sign, logabsdet = self._state.slogdet()
        return SlogdetResult(float(sign), float(logabsdet))

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

    def diagonal(self) -> np.ndarray:
        """The diagonal of ``W = A⁻¹ + U B⁻¹ V``, without forming ``W``.

        In the symmetric form of a Gaussian model, the marginal variances.

        Returns
        -------
        (n,) ndarray
            A new array.

        Raises
        ------
        SingularMatrixError
            When ``A`` or ``B`` is singular.
        FloatingPointError
            When an intermediate result overflows.

        See Also
        --------
        WoodburyInverse.diagonal : the diagonal of ``W⁻¹``.
        woodbury_sparse.selected_inverse : the selected inverse of a sparse precision.

        Notes
        -----
        ``diag W = diag(A⁻¹) + rowsum(U ∘ (B⁻¹ V)ᵀ)``, each term by the cheapest exact
        route its blocks allow (no ``n×n`` array is ever formed; the result is computed
        once and cached):

        * identity and diagonal blocks in closed form;
        * a sparse symmetric ``A`` (or ``B``, with ``U = V = I`` or sparse ``U``, ``V``)
          through the *selected inverse* of its cached ``L D Lᵀ`` factorisation (the
          Takahashi recursions; about the cost of the factorisation once more), which
          holds ``(B⁻¹)[j, k]`` wherever the factor ``L + Lᵀ`` has an entry. The sum
          ``Σⱼₖ U[i, j] (B⁻¹)[j, k] V[k, i]`` reads the pairs of ``|U|ᵀ |V|ᵀ``; where
          some lie off the factor's pattern, the pattern is enlarged: CHOLMOD
          factorises ``B`` once more with explicit zeros there, the SciPy backend
          (whose SuperLU drops explicit zeros) pads ``L``'s pattern symbolically, a
          Python loop over the columns (a selection ``X`` never needs either). A
          sparse block of the general form that is exactly symmetric is factorised
          as symmetric for this (its own factorisation is an LU);
        * otherwise (dense blocks, a dense ``U`` or ``V``, a general sparse ``A`` or
          ``B`` factorised by LU, which has no Takahashi recursion here) by solves with
          blocks of columns: ``B⁻¹ V[:, J]`` is ``p×k`` with ``p·k ≤ 2²⁰``, then
          ``rowsum(U[J] ∘ (B⁻¹ V[:, J])ᵀ)``. That costs ``n`` right-hand sides in all:
          ``O(n p²)`` for a dense ``B`` (cheap when ``p`` is small),
          ``O(n · nnz(factor))`` for a sparse general ``A`` or ``B``.

        Symmetric indefinite sparse blocks use their ``L D Lᵀ`` (``1×1`` pivots) in the
        same recursion. The two terms are added without any check for cancellation,
        which cannot happen when ``A`` and ``B`` are positive definite.

        Examples
        --------
        The marginal variances of an AR(1) process observed with unit noise:

        >>> import numpy as np
        >>> import scipy.sparse as sp
        >>> import woodbury_sparse as ws
        >>> from woodbury_sparse.testing import ar1_precision
        >>> W = ws.WoodburyMatrix(ar1_precision(1000, 0.9), sp.eye_array(1000))
        >>> d = W.diagonal()
        >>> bool(np.allclose(d, 1 + 1 / (1 - 0.9**2)))  # AR(1) variance + noise variance
        True
        >>> W = ws.WoodburyMatrix(np.diag([1.0, 2.0]), np.eye(1), X=np.ones((2, 1)))
        >>> W.diagonal()  # W = [[2, 1], [1, 1.5]]
        array([2. , 1.5])
        """
        return np.array(self._state.diagonal)

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

    @weak_cached_property
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
        parts, reuse = _updating.add_terms(self, B, X=X, U=U, V=V)
        cls = SymmetricWoodburyMatrix if parts.symmetric else WoodburyMatrix
        return cls._from_parts(parts, reuse=reuse)

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
        parts, reuse = _updating.replace(self, A, B, strict=True)
        return type(self)._from_parts(parts, reuse=reuse)

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
        parts, reuse = _updating.replace(self, A, B, strict=False)
        return type(self)._from_parts(parts, reuse=reuse)

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

    def _transpose(self):
        return self  # not cached: an operator holding itself would be a reference cycle

    _adjoint = _transpose

    def as_covariance(self):
        """``W`` as a :class:`scipy.stats.Covariance`, for ``scipy.stats`` distributions.

        Returns
        -------
        woodbury_sparse.stats.WoodburyCovariance
            Exact whitening and colouring maps; the same object while it is in use
            (``W`` holds it weakly: it holds ``W``).

        Raises
        ------
        NotPositiveDefiniteError
            When ``W`` is not positive definite, or when ``A`` is not: the exact square
            root is built on the Cholesky factor of ``A`` (of any kind, sparse included),
            and none is affordable otherwise (use :class:`~woodbury_sparse.WoodburyNormal`,
            which needs none).

        ValueError
            When ``k = min(n, p)`` exceeds 1024 (``X = I`` of order above 1024, say): the
            setup would cost ``O(n k²)``, cubic in ``n`` when ``X = I``.

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

    @weak_cached_property
    def _covariance_object(self):
        return WoodburyCovariance(self)


class WoodburyInverse(_RealOperator):
    """``W⁻¹`` for a :class:`WoodburyMatrix` ``W``, applied through ``W.solve``.

    Obtain it with :meth:`WoodburyMatrix.inv`. Immutable, like ``W``: its operand ``W``
    cannot be replaced. ``W`` holds it weakly and hands out the same object while it is in
    use; it holds ``W``, so no reference cycle keeps either alive (nor their factorisations).

    Attributes
    ----------
    W : WoodburyMatrix
        The operator this is the inverse of.
    args : tuple
        ``(W,)``, as SciPy's operators hold their operands.

    Examples
    --------
    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> W = ws.WoodburyMatrix(np.diag([1.0, 2.0, 4.0]), np.eye(3))  # A⁻¹ + I
    >>> Winv = W.inv()
    >>> Winv.W is W, Winv.inv() is W
    (True, True)
    >>> Winv @ np.array([2.0, 1.5, 1.25])  # W⁻¹ b = W.solve(b), W = diag(2, 1.5, 1.25)
    array([1., 1., 1.])
    """

    def __init__(self, W: WoodburyMatrix) -> None:
        object.__setattr__(self, "W", W)
        LinearOperator.__init__(self, dtype=np.float64, shape=W.shape)
        object.__setattr__(self, "_frozen", True)

    def __setattr__(self, name, value):
        if getattr(self, "_frozen", False):
            raise AttributeError(f"{type(self).__name__} is immutable; call inv() on an operator")
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self):
        return (_inverse_of, (self.W,))

    @property
    def args(self) -> tuple:
        """``(W,)``: the operand, as SciPy's adjoint and transposed operators hold theirs."""
        return (self.W,)

    def _forward(self, x: np.ndarray) -> np.ndarray:
        return self.W._solve(x)

    def _backward(self, x: np.ndarray) -> np.ndarray:
        return self.W.T._solve(x)

    def _transpose(self):
        return self.W.T.inv()

    _adjoint = _transpose

    def inv(self) -> WoodburyMatrix:
        """The operator this is the inverse of."""
        return self.W

    def slogdet(self) -> SlogdetResult:
        """``(sign, log|det W⁻¹|)``, named as :meth:`WoodburyMatrix.slogdet`'s."""
        sign, logabsdet = self.W.slogdet()
        return SlogdetResult(sign, -logabsdet)

    def diagonal(self) -> np.ndarray:
        """The diagonal of ``W⁻¹ = A − A U O⁻¹ V A``, without forming ``W⁻¹``.

        Returns
        -------
        (n,) ndarray
            A new array.

        Raises
        ------
        SingularMatrixError
            When the capacitance ``O`` (and so ``W``) is singular.
        FloatingPointError
            When an intermediate result overflows.

        Warns
        -----
        IllConditionedWarning
            When ``O`` is ill-conditioned (once per operator, as for ``W.solve``).

        Notes
        -----
        Never an ``n×n`` array; the result is computed once and cached. With
        ``U = I`` (``X = I``), ``W⁻¹ = A O⁻¹ B`` and the diagonal is
        ``Σⱼₖ A[i, j] (O⁻¹)[j, k] B[k, i]``; with ``V = I``, ``W⁻¹ = B O⁻¹ A``. Neither
        subtracts. Otherwise ``diag(A) − rowsum((A U O⁻¹) ∘ (V A)ᵀ)``, and entries where
        the two terms cancelled (a term more than :data:`CANCELLATION_FACTOR` times
        the difference) are recomputed by refined solves with unit vectors, one per
        such entry.

        The entries of ``O⁻¹`` the sums read are those at the pairs of
        ``|L|ᵀ |R|ᵀ`` for the outer factors ``L``, ``R`` (``A`` and ``B``, or ``A U`` and
        ``V A``). A sparse ``O`` (``X = I``, or a sparse ``X``) gives them through its
        selected inverse, from its cached factorisation when its factor's pattern holds
        them all (AR(1) + noise: ``B`` diagonal, the pairs are ``A``'s own), else on
        a pattern enlarged to hold the missing pairs (the pattern of ``A·B``: for an
        AR(1) ``B``, a factor of bandwidth 2 instead of 1).
        A small dense ``O`` (regression, ``p ≪ n``) gives them by solves with column
        blocks of ``V A``: ``O(n p²)``. See :meth:`WoodburyMatrix.diagonal` for the
        routes and costs.

        Examples
        --------
        >>> import numpy as np
        >>> import woodbury_sparse as ws
        >>> W = ws.WoodburyMatrix(np.diag([1.0, 2.0]), np.eye(1), X=np.ones((2, 1)))
        >>> W.inv().diagonal()  # W⁻¹ = [[1.5, -1], [-1, 2]] / 2
        array([0.75, 1.  ])
        """
        return np.array(self.W._state.inverse_diagonal)

    def toarray(self) -> np.ndarray:
        """``W⁻¹`` as a dense ndarray, in ``O(n² p)`` flops.

        By the formulas of :meth:`WoodburyMatrix.solve`: ``A O⁻¹ B`` when ``U = I``,
        ``B O⁻¹ A`` when ``V = I``, and otherwise ``A − (A U) O⁻¹ (V A)``, whose columns
        are refined where its subtraction cancelled.
        """
        return self.W._state.inverse_array()

    def __repr__(self) -> str:
        return f"<inverse of {self.W!r}>"


def _restore(class_name: str, parts: Parts, token: str | None = None) -> WoodburyMatrix:
    cls = {"WoodburyMatrix": WoodburyMatrix, "SymmetricWoodburyMatrix": SymmetricWoodburyMatrix}
    if token is None:  # a pickle from before tokens existed
        return cls[class_name]._from_parts(parts)
    return OPERATOR_CACHE.get(token, lambda: cls[class_name]._from_parts(parts, token=token))


def _restore_transpose(original: WoodburyMatrix) -> WoodburyMatrix:
    return original.T


def _inverse_of(W: WoodburyMatrix) -> WoodburyInverse:
    return W.inv()
