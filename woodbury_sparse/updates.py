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

import numpy as np
from scipy import sparse

from ._blocks import Block
from ._cache import cached_property
from ._exceptions import FactorizationError
from ._factor import Factor, checked, factorize, reuse_analysis
from ._factor._bordered import extend_factor
from ._factor._closed_form import IdentityFactor
from ._operators import CAPACITANCE_DONOR, SymmetricWoodburyMatrix, WoodburyMatrix
from ._validation import (
    Parts,
    _as_list,
    _block_diag,
    _side_block,
    _term_names,
    as_block,
    require_symmetric,
)

__all__ = [
    "add_terms",
    "refactor",
    "same_pattern",
    "update_a",
    "with_blocks",
]


# -- block helpers --------------------------------------------------------------------
def _dense(block: Block) -> np.ndarray:
    return block.data if block.kind == "dense" else block.toarray()


def _stack(blocks: list[Block], axis: int, name: str = "") -> Block:
    """Stack blocks side by side (``axis=1``) or on top of each other (``axis=0``)."""
    blocks = [b for b in blocks if b.shape[axis] > 0] or blocks[:1]
    if len(blocks) == 1:
        return blocks[0].renamed(name)
    if any(b.kind == "dense" for b in blocks):
        parts = [_dense(b) for b in blocks]
        return Block.from_matrix(np.concatenate(parts, axis=axis), name=name)
    stack = sparse.hstack if axis == 1 else sparse.vstack
    return Block.from_matrix(stack([b.operand for b in blocks], format="csc"), name=name)


def _validate_terms(W: WoodburyMatrix, B, U, V, X):
    """The new terms as ``(B, U, V, symmetric)`` blocks, validated like the constructor."""
    if X is not None and (U is not None or V is not None):
        raise ValueError(
            "`X` cannot be combined with `U` or `V`: give `X` for symmetric terms "
            "X B⁻¹ Xᵀ, or `U` and `V` for general terms U B⁻¹ V"
        )
    a = W._parts.A
    n = W.n
    lists = {key: _as_list(val, key) for key, val in (("B", B), ("U", U), ("V", V), ("X", X))}
    if lists["B"] is None:
        raise TypeError("`B` is required")
    count = max(len(v) for v in lists.values() if v is not None)
    names = {key: _term_names(key, count) for key in lists}
    side = "X" if lists["X"] is not None else "U"
    b_blocks, u_blocks, v_blocks = [], [], []
    for i in range(count):
        b = as_block(lists["B"][i % len(lists["B"])], names["B"][i], square=True)
        p = b.shape[0]
        u = _side_block(lists, side, i, names, n, p, b, a)
        v = u.T if side == "X" else _side_block(lists, "V", i, names, n, p, b, a, rows=False)
        b_blocks.append(b)
        u_blocks.append(u)
        v_blocks.append(v)
    symmetric = W._parts.symmetric and side == "X"
    if symmetric:
        require_symmetric(
            b_blocks,
            "the symmetric terms X B⁻¹ Xᵀ need a symmetric `B` (give `U` and `V` for a "
            "general term)",
        )
        b_blocks = [blk.symmetrized() for blk in b_blocks]
    b_new = _block_diag(b_blocks, "B")
    u_new = _stack(u_blocks, 1, "U")
    v_new = u_new.T if symmetric else _stack(v_blocks, 0, "V")
    return b_new, u_new, v_new, symmetric


class _FactorPair(Factor):
    """``blockdiag(M₁, M₂)`` solved through the factorisations of ``M₁`` and ``M₂``."""

    def __init__(self, first: Factor, second: Factor) -> None:
        self.first = first
        self.second = second
        self.n = first.n + second.n
        self.symmetric = first.symmetric and second.symmetric
        self.positive_definite = first.positive_definite and second.positive_definite
        self.method = f"block-diagonal({first.method}; {second.method})"

    def _split(self, method: str, b: np.ndarray, **kwargs) -> np.ndarray:
        p = self.first.n
        top = getattr(self.first, method)(b[:p], **kwargs)
        bottom = getattr(self.second, method)(b[p:], **kwargs)
        return np.concatenate([top, bottom], axis=0)

    def solve(self, b: np.ndarray, transpose: bool = False) -> np.ndarray:
        return self._split("solve", b, transpose=transpose)

    def _slogdet(self) -> tuple[float, float]:
        s1, l1 = self.first.slogdet
        s2, l2 = self.second.slogdet
        return s1 * s2, l1 + l2

    def solve_sqrt_t(self, z: np.ndarray) -> np.ndarray:
        return self._split("solve_sqrt_t", z)

    def sqrt_t_matmul(self, x: np.ndarray) -> np.ndarray:
        return self._split("sqrt_t_matmul", x)


class _BlockDiagonalFactor(Factor):
    """Factorisation of ``blockdiag(B₁, B₂)`` from the (lazily built) factors of each.

    Built on first use, and held to the standard of a fresh factorisation of the
    combined matrix: when a part cannot be factorised, or the pair's reciprocal condition
    estimate is below ``p·eps`` (the parts' own tests use their own, smaller orders), the
    combined matrix is factorised afresh instead — which raises exactly the error a
    freshly built operator raises, or succeeds where its own test passes.
    """

    def __init__(self, first: Block, second: Block, combined: Block) -> None:
        self.first = first
        self.second = second
        # The combined block holds this factor: keep its matrix, not the block (no cycle).
        self._matrix = combined.data
        self._kind = combined.kind
        self.n = combined.shape[0]
        self.symmetric = combined.symmetric
        self.method = "block-diagonal"

    @cached_property
    def _resolved(self) -> Factor:
        try:
            pair = _FactorPair(self.first.factor, self.second.factor)
        except FactorizationError:
            pair = None
        if pair is not None and checked(pair, self._matrix, self._kind, self.n, "B") is not None:
            return pair
        return factorize(self._matrix, self._kind, self.n, self.symmetric, "B")

    @property
    def positive_definite(self) -> bool:  # type: ignore[override]
        return self._resolved.positive_definite

    def solve(self, b: np.ndarray, transpose: bool = False) -> np.ndarray:
        return self._resolved.solve(b, transpose=transpose)

    def _slogdet(self) -> tuple[float, float]:
        return self._resolved.slogdet

    def rcond(self, anorm: float) -> float:
        return self._resolved.rcond(anorm)

    def screening_rcond(self, anorm: float) -> float:
        return self._resolved.screening_rcond(anorm)

    def solve_sqrt_t(self, z: np.ndarray) -> np.ndarray:
        return self._resolved.solve_sqrt_t(z)

    def sqrt_t_matmul(self, x: np.ndarray) -> np.ndarray:
        return self._resolved.sqrt_t_matmul(x)


def _combined_b(old: Block, new: Block) -> Block:
    """``blockdiag(old, new)`` sharing the factorisation of ``old`` (and of ``new``)."""
    if old.shape[0] == 0:
        return new.renamed("B")
    out = _block_diag([old, new], "B")
    if out.kind in ("dense", "sparse"):
        out.__dict__["factor"] = _BlockDiagonalFactor(old, new, out)
    return out


# -- public functions -------------------------------------------------------------------
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
    if not isinstance(W, WoodburyMatrix):
        raise TypeError(f"`W` must be a WoodburyMatrix, got {type(W).__name__}")
    b_new, u_new, v_new, term_symmetric = _validate_terms(W, B, U, V, X)
    old = W._parts
    symmetric = old.symmetric and term_symmetric
    b_all = _combined_b(old.B, b_new)
    u_all = _stack([old.U, u_new], 1, "X" if symmetric else "U")
    v_all = u_all.T if symmetric else _stack([old.V, v_new], 0, "V")
    parts = Parts(old.A, b_all, u_all, v_all, symmetric)
    cls = SymmetricWoodburyMatrix if symmetric else WoodburyMatrix
    out = cls._from_parts(parts)

    cache = W.__dict__
    if W.p > 0 and "_O" not in cache:
        return out  # no capacitance built yet: nothing to extend, the new operator is lazy
    au_new = old.A.times(u_new)
    au_all = _stack([W._AU, au_new], 1)
    out.__dict__["_AU"] = au_all
    if symmetric:
        va_new = au_new.T
    else:
        va_new = v_new.times(old.A)
        out.__dict__["_VA"] = _stack([W._VA, va_new], 0)
    o_old = W._O
    c12 = _dense(old.V.times(au_new))  # V A U₂   (p×k)
    c21 = c12.T if symmetric else _dense(va_new.times(old.U))  # V₂ A U   (k×p)
    d22 = _dense(b_new.plus(v_new.times(au_new)))  # B₂ + V₂ A U₂
    if symmetric:
        d22 = 0.5 * (d22 + d22.T)
    with np.errstate(over="ignore", invalid="ignore"):  # checked just below
        if o_old.kind == "sparse":
            o_data = sparse.bmat([[o_old.data, c12], [c21, d22]], format="csc")
        else:
            o_data = np.block([[_dense(o_old), c12], [c21, d22]])
    # Kind and checks as the constructor's capacitance (see WoodburyMatrix._O): an
    # overflowed O' is left for the lazy path to report, a bordered factor is kept only
    # when it passes a fresh factorisation's singularity test on O' — else O' is
    # factorised the ordinary way, with the ordinary outcome (a cancelled term, Σ − u uᵀ
    # singular, raises SingularMatrixError as a freshly built operator does).
    o_block = Block.from_matrix(o_data, symmetric=symmetric, name="O").densified()
    if not o_block.is_finite():
        return out
    f11 = IdentityFactor(0) if W.p == 0 else o_old.__dict__.get("factor")
    if f11 is not None:
        factor = extend_factor(f11, c12, c21, d22, symmetric)
        if factor is not None:
            factor = checked(factor, o_block.data, o_block.kind, o_block.shape[0], "O")
        if factor is not None:
            o_block.__dict__["factor"] = factor
    out.__dict__["_O"] = o_block
    return out


def same_pattern(old, new) -> bool:
    """Whether two matrices (or blocks) have the same kind, shape and sparsity pattern.

    Dense matrices of equal shape count as the same pattern, as do diagonal ones (the
    identity included); sparse ones must store exactly the same positions.

    Examples
    --------
    >>> from woodbury_sparse.testing import ar1_precision
    >>> from woodbury_sparse.updates import same_pattern
    >>> same_pattern(ar1_precision(5, 0.5), ar1_precision(5, 0.9))
    True
    >>> same_pattern(ar1_precision(5, 0.5), ar1_precision(6, 0.5))
    False
    """
    old = old if isinstance(old, Block) else as_block(old, "old")
    new = new if isinstance(new, Block) else as_block(new, "new")
    diagonal = ("identity", "diagonal")
    if old.kind in diagonal and new.kind in diagonal:
        return old.shape == new.shape
    if old.kind != new.kind or old.shape != new.shape:
        return False
    if old.kind != "sparse":
        return True
    return bool(
        np.array_equal(old.data.indptr, new.data.indptr)
        and np.array_equal(old.data.indices, new.data.indices)
    )


def _describe_pattern(block: Block) -> str:
    shape = "×".join(map(str, block.shape))
    extra = f", nnz={block.data.nnz}" if block.kind == "sparse" else ""
    return f"{shape} {block.kind}{extra}"


def _new_square(W: WoodburyMatrix, value, old: Block, name: str) -> Block:
    """Validate a replacement for ``A`` or ``B`` the way the constructor would."""
    if isinstance(value, (list, tuple)):
        if len(value) == 0:
            raise ValueError(f"`{name}` is an empty list; give at least one matrix")
        names = _term_names(name, len(value))
        blk = _block_diag(
            [as_block(v, nm, square=True) for v, nm in zip(value, names, strict=True)], name
        )
    else:
        blk = as_block(value, name, square=True)
    if blk.shape != old.shape:
        raise ValueError(f"`{name}` has shape {blk.shape}, but the operator's is {old.shape}")
    if W._parts.symmetric:
        require_symmetric([blk], "the operator is symmetric")
        blk = blk.symmetrized().renamed(name)
    return blk


def _reuse_analysis(old: Block, new: Block) -> None:
    """Give ``new`` a numeric refactorisation of ``old``'s cached factor, when possible.

    Only a refactorisation that passes the checks of a fresh factorisation is kept;
    otherwise ``new`` is factorised afresh when first needed, and fails (or not) exactly
    as in a freshly built operator.
    """
    factor = reuse_analysis(old.__dict__.get("factor"), new.data, new.kind, new.shape[0], new.name)
    if factor is not None:
        new.__dict__["factor"] = factor


def _replace(W: WoodburyMatrix, A, B, strict: bool) -> WoodburyMatrix:
    if not isinstance(W, WoodburyMatrix):
        raise TypeError(f"`W` must be a WoodburyMatrix, got {type(W).__name__}")
    if A is None and B is None:
        raise TypeError("give a new `A`, a new `B`, or both")
    old = W._parts
    new_blocks = {}
    for name, value, old_block in (("A", A, old.A), ("B", B, old.B)):
        if value is None:
            new_blocks[name] = old_block
            continue
        blk = _new_square(W, value, old_block, name)
        if same_pattern(old_block, blk):
            _reuse_analysis(old_block, blk)
        elif strict:
            raise ValueError(
                f"the new `{name}` ({_describe_pattern(blk)}) does not have the sparsity "
                f"pattern of the old one ({_describe_pattern(old_block)}); refactor() "
                "needs the same pattern — use with_blocks() or construct a new operator"
            )
        new_blocks[name] = blk
    parts = Parts(new_blocks["A"], new_blocks["B"], old.U, old.V, old.symmetric)
    out = type(W)._from_parts(parts)
    o_old = W.__dict__.get("_O")
    if o_old is not None and hasattr(o_old.__dict__.get("factor"), "refactor"):
        # U and V are W's: when the new capacitance B + V A U keeps the old one's sparsity
        # pattern (checked when it is built), its factorisation reuses the old analysis.
        out.__dict__[CAPACITANCE_DONOR] = o_old
    if A is None and "_AU" in W.__dict__:
        out.__dict__["_AU"] = W._AU
        if not old.symmetric:
            out.__dict__["_VA"] = W._VA
    return out


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
    return _replace(W, A, B, strict=True)


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
    return _replace(W, A, B, strict=False)


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
    if not isinstance(W, WoodburyMatrix):
        raise TypeError(f"`W` must be a WoodburyMatrix, got {type(W).__name__}")
    old = W._parts
    c = as_block(C, "C")
    if c.shape[0] != W.n:
        raise ValueError(f"`C` has shape {c.shape}, but `A` is {W.n}×{W.n}: expected {W.n} rows")
    c_op = c.operand if c.kind != "dense" else sparse.csc_array(c.data)
    cct = c_op @ c_op.T
    new_a = old.A.operand - cct if downdate else old.A.operand + cct
    if sparse.issparse(new_a) and old.A.kind == "dense":
        new_a = new_a.toarray()
    # Normalised as the constructor normalises `A` (kind detection included: a diagonal
    # result is a diagonal block), so that every later test is a fresh operator's.
    a_block = as_block(new_a, "A", square=True)
    if old.symmetric:
        a_block = a_block.symmetrized().renamed("A")
    cached = old.A.__dict__.get("factor")
    updatable = cached is not None and cached.positive_definite and hasattr(cached, "updown")
    if updatable and a_block.kind == "sparse":
        # CHOLMOD: update/downdate a copy; kept only if positive definite and regular.
        factor = cached.updown(sparse.csc_array(c_op), subtract=downdate)
        if factor is not None:
            factor = checked(factor, a_block.data, "sparse", W.n, "A")
        if factor is not None:
            a_block.__dict__["factor"] = factor
    parts = Parts(a_block, old.B, old.U, old.V, old.symmetric)
    return type(W)._from_parts(parts)
