"""``selected_inverse``: the public entry to the selected inversion of ``_factor``.

Above the validation layer (it normalises ``Q`` as the constructor normalises ``A``), so
that ``_factor`` imports nothing from the layers above it.
"""

from __future__ import annotations

from scipy import sparse

from ._factor import factor_selected_inverse
from ._validation import as_block, require_symmetric

__all__ = ["selected_inverse"]


def selected_inverse(Q) -> sparse.csc_array:
    """Entries of ``Q⁻¹`` on the pattern of ``Q``'s Cholesky factor, for sparse SPD ``Q``.

    The selected inverse: ``(Q⁻¹)[i, j]`` for every ``(i, j)`` where the Cholesky factor
    ``L`` of ``Q`` (in CHOLMOD's fill-reducing ordering) has an entry in ``L + Lᵀ`` — the
    whole diagonal (marginal variances, when ``Q`` is a precision matrix) and every
    ``(i, j)`` where ``Q`` is nonzero (covariances of neighbours) — computed exactly from
    one factorisation by the Takahashi recursions, never forming the dense inverse.

    Parameters
    ----------
    Q : array_like or scipy.sparse matrix/array, shape (n, n)
        Symmetric positive definite, real. Sparse input is the point; dense input is
        accepted (its selected inverse is its inverse) and a diagonal one handled in
        closed form. Never modified.

    Returns
    -------
    scipy.sparse.csc_array
        ``n×n``, symmetric, indices sorted, in ``Q``'s own ordering (the fill-reducing
        permutation undone). Entries outside the pattern are *not stored*; they are not
        zero in ``Q⁻¹``.

    Raises
    ------
    TypeError
        When ``Q`` is complex or not a matrix.
    ValueError
        When ``Q`` is not square, not symmetric, or contains NaN or infinite values.
    NotPositiveDefiniteError
        When ``Q`` is not positive definite (:class:`SingularMatrixError` when it is
        singular to working precision).

    See Also
    --------
    WoodburyMatrix : whose cached factorisations use the same recursion.

    Notes
    -----
    With ``Q[perm][:, perm] = L D Lᵀ``, ``Z = (L D Lᵀ)⁻¹`` satisfies
    ``Z = D⁻¹ L⁻¹ + (I − Lᵀ) Z``, solved column by column from the last for the entries on
    the pattern of ``L`` only (Takahashi, Fagan and Chin 1973; Rue and Martino 2007). The
    cost is close to that of the numeric factorisation; memory is that of ``L`` twice.
    This is R-INLA's ``inla.qinv`` and the selected inverse behind
    GaussianMarkovRandomFields.jl's ``var``.

    Examples
    --------
    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> from woodbury_sparse.testing import ar1_precision
    >>> Q = ar1_precision(1000, 0.9)  # stationary AR(1): unit innovations
    >>> S = ws.selected_inverse(Q)
    >>> variances = S.diagonal()  # 1 / (1 - 0.9²) everywhere
    >>> bool(np.allclose(variances, 1 / (1 - 0.9**2)))
    True
    >>> float(S[0, 1] / S[0, 0])  # lag-one correlation
    0.9
    """
    block = as_block(Q, "Q", square=True)
    require_symmetric([block], "a selected inverse needs a symmetric `Q`")
    block = block.symmetrized()
    return factor_selected_inverse(block.factor, "Q")
