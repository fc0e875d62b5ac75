"""Updates of Woodbury operators that reuse every cached factorisation.

Operators are immutable, so every update returns a **new** operator; the old one keeps
its blocks and caches, unchanged bit for bit, and stays valid. What the two share:

=====================  ============================================================
update                 shared with the old operator
=====================  ============================================================
:func:`add_terms`      ``A`` and its factorisation, the old ``B`` blocks and their
                       factorisations, the cached ``A U``; the factorisation of the
                       capacitance ``O`` is *extended* by a block (bordered) update
:func:`refactor`       the symbolic analysis of CHOLMOD (numeric refactorisation
                       only); ``U``, ``V`` and, when only ``B`` changes, ``A U``
:func:`with_blocks`    as :func:`refactor` when the sparsity pattern is unchanged,
                       otherwise the new block is factorised afresh
:func:`update_a`       ``A ± C Cᵀ``: a CHOLMOD update/downdate of a copy of ``A``'s
                       factor, its pivots checked for positive definiteness
=====================  ============================================================

Adding terms
------------
Adding ``U₂ B₂⁻¹ V₂`` (``k`` new columns) to ``W = A⁻¹ + U B⁻¹ V`` borders the
capacitance::

    O' = [[O,       V A U₂      ],
          [V₂ A U,  B₂ + V₂ A U₂]]

With the Schur complement ``S = B₂ + V₂ A U₂ − V₂ A U O⁻¹ V A U₂`` (``k×k``), the new
factorisation is assembled from the old one instead of refactorising ``O'``:

* dense Cholesky ``O = L Lᵀ`` (symmetric positive definite ``O'``): the new factor is
  ``[[L, 0], [Cᵀ L⁻ᵀ, chol(S)]]`` with ``C = V A U₂``, at cost ``O(p²k + pk² + k³)``;
* anything else (LU, CHOLMOD, non positive definite ``S``): a bordered factor that
  solves through the old factor and a factorisation of ``S`` (block elimination).

The products cost ``O(nk)`` products with ``A`` plus ``O(npk)`` flops; nothing of size
``p'×p'`` is factorised.

**Rank-1 fast path** (Sherman–Morrison). When ``k = 1`` the Schur complement is the
scalar ``s = b₂ + v₂ᵀ A u₂ − (V A u₂)ᵀ O⁻¹ (V A u₂)``: no matrix is factorised at all —
the Cholesky factor gains one row from one triangular solve (``O(p²)``), or ``s`` is
inverted directly. For ``p = 0`` (``W = A⁻¹``) this is exactly Sherman–Morrison,
``(A⁻¹ + u vᵀ/b)⁻¹ = A − (A u)(vᵀ A)/(b + vᵀ A u)``, which never factorises ``A``.

The extension needs the old capacitance factor: when the old operator has not
factorised ``O`` yet, there is nothing to reuse, and the new operator factorises its
``O'`` when first needed (the ordinary lazy path).
"""

from __future__ import annotations

from . import _updating
from ._operators import WoodburyMatrix
from ._updating import same_pattern

__all__ = [
    "add_terms",
    "refactor",
    "same_pattern",
    "update_a",
    "with_blocks",
]


def _check_operator(W) -> None:
    if not isinstance(W, WoodburyMatrix):
        raise TypeError(f"`W` must be a WoodburyMatrix, got {type(W).__name__}")


def add_terms(W: WoodburyMatrix, B, X=None, U=None, V=None) -> WoodburyMatrix:
    """``W + U₂ B₂⁻¹ V₂`` (or ``W + X₂ B₂⁻¹ X₂ᵀ``) as a new operator sharing ``W``'s work.

    Parameters
    ----------
    W : WoodburyMatrix
        The operator to extend; it is not modified and stays valid.
    B : (k, k) array_like or sparse matrix, or list of them
        Inverse of the middle factor of each new term (several terms as in the
        constructor: block diagonal ``B₂``).
    X : (n, k) array_like or sparse matrix, or list of them, optional
        Factor of symmetric new terms ``X₂ B₂⁻¹ X₂ᵀ``; the result is symmetric when
        ``W`` is.
    U, V : array_like or sparse matrix, or list of them, optional
        Factors of general new terms ``U₂ B₂⁻¹ V₂`` (``n×k`` and ``k×n``, default the
        identity); the result is a general :class:`~woodbury_sparse.WoodburyMatrix`.

    Returns
    -------
    WoodburyMatrix
        ``A⁻¹ + [U U₂] blockdiag(B, B₂)⁻¹ [V; V₂]``, with ``p + k`` columns.

    Raises
    ------
    ValueError, TypeError
        For new blocks that do not fit ``W`` (messages name the argument), or a
        non-symmetric ``B`` with ``X``.

    Notes
    -----
    ``A`` (and its factorisation), the old ``B`` (and its factorisation), ``U``, ``V``
    and the cached ``A U`` are shared. When ``W`` has factorised its capacitance ``O``,
    the new operator's capacitance factorisation is the old one extended by a bordered
    update (see the module notes): ``O(p²k)`` flops plus ``k`` products with ``A`` and
    ``O(npk)`` for ``V A U₂``. A rank-1 addition (``k = 1``) factorises nothing
    (Sherman–Morrison).

    Examples
    --------
    Pathways arriving one at a time:

    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> from woodbury_sparse.updates import add_terms
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((6, 3))
    >>> W = ws.SymmetricWoodburyMatrix(np.eye(6), np.eye(1), X=X[:, :1])
    >>> _ = W.solve(np.ones(6))  # factorises O (1×1)
    >>> W2 = add_terms(W, np.eye(1), X=X[:, 1:2])
    >>> W3 = add_terms(W2, np.eye(1), X=X[:, 2:])
    >>> W3.p, bool(np.allclose(W3.toarray(), np.eye(6) + X @ X.T))
    (3, True)
    >>> W.p  # the old operator is unchanged
    1
    """
    _check_operator(W)
    return W.add_terms(B, X=X, U=U, V=V)


def refactor(W: WoodburyMatrix, A=None, B=None) -> WoodburyMatrix:
    """New values for ``A`` and/or ``B`` with the same sparsity pattern.

    CHOLMOD's symbolic analysis (fill-reducing ordering, elimination tree, pattern of
    the factor) of the old block is reused: only the numeric factorisation is redone.

    Parameters
    ----------
    W : WoodburyMatrix
        The operator; unchanged and still valid afterwards.
    A : (n, n) array_like or sparse matrix, optional
        New ``A``, with exactly the sparsity pattern of the old one.
    B : (p, p) array_like or sparse matrix, or list of them, optional
        New ``B``, with exactly the sparsity pattern of the old one.

    Returns
    -------
    WoodburyMatrix
        The operator with the new blocks (same class as ``W``).

    Raises
    ------
    ValueError
        When a new block has another kind, shape or sparsity pattern than the old one
        (use :func:`with_blocks`), or is not symmetric in a symmetric operator.
    TypeError
        When neither ``A`` nor ``B`` is given.

    Notes
    -----
    The reuse needs the old block's factorisation: when ``W`` has factorised ``A``
    with CHOLMOD, the new ``A`` is refactorised at once (numeric phase only); otherwise
    it is factorised on first use. Values that are not positive definite fall back to a
    fresh factorisation. SciPy's SuperLU (the fallback backend) exposes no reusable
    analysis, so there the pattern is checked but the factorisation is fresh. Dense and
    diagonal blocks have no symbolic phase. When only ``B`` changes, ``A U`` is shared.

    A new sparse symmetric block that stores exactly the old one's positions (CSC or
    CSR, float64) shares the old block's index arrays: its symmetry is checked against
    a map of mirrored entries built once per pattern (no transposition per call), and
    when ``X = I`` with a diagonal ``B`` and ``W`` has factorised ``O``, the new
    capacitance ``O = B + A`` is formed on the same arrays at once (a copy of ``A``'s
    values and ``n`` additions), its factorisation reusing the old ``O``'s analysis. A
    sweep over many values of a parameter pays for the pattern once.

    With scikit-sparse 0.4, the numeric refactorisation is made in place into the factor
    of an operator of the same chain that was dropped (``W = refactor(W, ...)`` in a loop
    drops the one before), rather than into a copy of ``W``'s factor: only factors that
    nothing can reach any more are reused (at most two per analysis, kept while an
    operator of the chain lives), and the numbers are those of a copy, bit for bit.

    Examples
    --------
    A new AR(1) correlation on the same tridiagonal pattern:

    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> from woodbury_sparse.testing import ar1_precision
    >>> from woodbury_sparse.updates import refactor
    >>> W = ws.SymmetricWoodburyMatrix(ar1_precision(50, 0.5), np.eye(50))
    >>> _ = W.logdet()  # factorises A
    >>> W2 = refactor(W, A=ar1_precision(50, 0.9))
    >>> ref = np.linalg.inv(ar1_precision(50, 0.9).toarray()) + np.eye(50)
    >>> bool(np.isclose(W2.logdet(), np.linalg.slogdet(ref)[1]))
    True
    """
    _check_operator(W)
    return W.refactor(A=A, B=B)


def with_blocks(W: WoodburyMatrix, A=None, B=None) -> WoodburyMatrix:
    """New values for ``A`` and/or ``B``, reusing the analysis where the pattern allows.

    Like :func:`refactor`, but a block whose pattern changed is simply factorised afresh
    instead of refused.

    Examples
    --------
    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> from woodbury_sparse.updates import with_blocks
    >>> W = ws.SymmetricWoodburyMatrix(np.eye(3), np.eye(3))
    >>> with_blocks(W, B=2 * np.eye(3)).toarray()[0, 0]
    np.float64(1.5)
    """
    _check_operator(W)
    return W.with_blocks(A=A, B=B)


def update_a(W: WoodburyMatrix, C, *, downdate: bool = False) -> WoodburyMatrix:
    """``A ± C Cᵀ`` in place of ``A``, updating ``A``'s CHOLMOD factor instead of refactorising.

    Parameters
    ----------
    W : WoodburyMatrix
        The operator; unchanged and still valid afterwards.
    C : (n, k) array_like or sparse matrix
        The update (best sparse, ``k`` small).
    downdate : bool
        ``False``: ``A + C Cᵀ``; ``True``: ``A − C Cᵀ``.

    Returns
    -------
    WoodburyMatrix
        The operator with the new ``A`` (same class as ``W``): the same answers and the
        same errors as an operator built afresh with ``A ± C Cᵀ``.

    Raises
    ------
    ValueError
        When ``C`` does not have ``n`` rows, or holds NaN or infinite values (or ``A ±
        C Cᵀ`` does).

    Notes
    -----
    When ``W`` holds a CHOLMOD ``LLᵀ`` factor of ``A`` (scikit-sparse backend), a copy is
    updated or downdated by CHOLMOD (cost about ``k`` times the nonzeros of the factor);
    the old factor is untouched. The result is kept only when every pivot is positive
    and it passes the singularity test of a fresh factorisation (reciprocal condition
    estimate at least ``n·eps``); a downdate that leaves ``A`` indefinite or numerically
    singular is factorised afresh when first needed, exactly as by the constructor
    (``LDLᵀ`` or LU, or ``SingularMatrixError``). Otherwise the new ``A`` is factorised
    when first needed. ``A U`` and the capacitance depend on ``A`` and are recomputed
    lazily; ``B``, ``U`` and ``V`` are shared.

    Examples
    --------
    >>> import numpy as np
    >>> import scipy.sparse as sp
    >>> import woodbury_sparse as ws
    >>> from woodbury_sparse.testing import ar1_precision
    >>> from woodbury_sparse.updates import update_a
    >>> W = ws.SymmetricWoodburyMatrix(ar1_precision(5, 0.5), np.eye(5))
    >>> _ = W.logdet()
    >>> C = sp.csc_array(np.eye(5)[:, :1])
    >>> W2 = update_a(W, C)
    >>> A2 = ar1_precision(5, 0.5).toarray() + np.outer(C.toarray(), C.toarray())
    >>> bool(np.isclose(W2.logdet(), np.linalg.slogdet(np.linalg.inv(A2) + np.eye(5))[1]))
    True
    """
    _check_operator(W)
    return type(W)._from_parts(_updating.update_a(W, C, downdate))
