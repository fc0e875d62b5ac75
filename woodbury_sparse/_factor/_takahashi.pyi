# The interface of the compiled Takahashi kernel (_takahashi.c), for type checkers.
import numpy as np
from numpy.typing import NDArray

def takahashi(
    indptr: NDArray[np.int64],
    indices: NDArray[np.int64],
    values: NDArray[np.float64],
    dinv: NDArray[np.float64],
    z: NDArray[np.float64],
) -> None:
    """The selected inverse of ``L D Lᵀ`` on ``L``'s pattern, written into ``z``."""
