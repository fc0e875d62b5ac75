# The interface of the compiled Takahashi kernel (_takahashi.c), for type checkers.
import numpy as np
from numpy.typing import NDArray

def takahashi(
    indptr: NDArray[np.int64],
    indices: NDArray[np.int64],
    values: NDArray[np.float64],
    dinv: NDArray[np.float64] | None,
    z: NDArray[np.float64],
) -> None:
    """The selected inverse of ``L D Lᵀ`` (``L Lᵀ`` if ``dinv`` is None) on ``L``'s pattern."""

def symmetric(
    indptr: NDArray[np.int64],
    indices: NDArray[np.int64],
    z: NDArray[np.float64],
    perm: NDArray[np.int64],
    out_indptr: NDArray[np.int32] | NDArray[np.int64],
    out_indices: NDArray[np.int32] | NDArray[np.int64],
    out_data: NDArray[np.float64],
) -> None:
    """``Pᵀ (Z + Zᵀ − diag Z) P`` in CSC form (row indices sorted) from ``Z``'s lower triangle."""
