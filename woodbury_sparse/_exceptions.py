"""Exception and warning classes of woodbury_sparse."""

from __future__ import annotations

import sys
import warnings
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from types import FrameType

__all__ = [
    "AsymmetryWarning",
    "FactorizationError",
    "IllConditionedWarning",
    "NotPositiveDefiniteError",
    "SingularMatrixError",
    "WoodburyWarning",
]


class FactorizationError(np.linalg.LinAlgError):
    """A block of a Woodbury matrix could not be factorised.

    Parameters
    ----------
    block : str
        Which matrix failed: ``"A"``, ``"B"`` or ``"O"`` (the capacitance
        ``B + V A U``).
    message : str
        What went wrong.

    Attributes
    ----------
    block : str
        Which matrix failed.

    Examples
    --------
    The base class of :class:`SingularMatrixError` and :class:`NotPositiveDefiniteError`:

    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> W = ws.WoodburyMatrix(np.diag([1.0, 0.0]), np.eye(2))
    >>> try:
    ...     W.logdet()
    ... except ws.FactorizationError as err:
    ...     print(type(err).__name__, err.block)
    SingularMatrixError A
    """

    def __init__(self, block: str, message: str) -> None:
        super().__init__(message)
        self.block = block

    def __reduce__(self):
        return (type(self), (self.block, self.args[0]))


class SingularMatrixError(FactorizationError):
    """A block that must be inverted is singular (to working precision).

    Examples
    --------
    ``W = A⁻¹ + B⁻¹`` needs ``A⁻¹``, which a singular ``A`` does not have:

    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> W = ws.WoodburyMatrix(np.diag([1.0, 0.0]), np.eye(2))
    >>> W @ np.ones(2)
    Traceback (most recent call last):
    ...
    woodbury_sparse...SingularMatrixError: `A` is singular to working precision: ...
    """


class NotPositiveDefiniteError(FactorizationError):
    """A block that must be positive definite is not.

    Examples
    --------
    A Gaussian density needs a positive definite covariance; ``−I + I/2`` is not one:

    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> W = ws.WoodburyMatrix(-np.eye(2), 2 * np.eye(2))
    >>> try:
    ...     ws.dwnorm(np.zeros(2), None, W)
    ... except ws.NotPositiveDefiniteError as err:
    ...     print(err.block)
    W
    """


class WoodburyWarning(UserWarning):
    """Base class of the warnings issued by woodbury_sparse.

    Examples
    --------
    Filter every warning of the package at once:

    >>> import warnings
    >>> import woodbury_sparse as ws
    >>> issubclass(ws.IllConditionedWarning, ws.WoodburyWarning)
    True
    >>> with warnings.catch_warnings():
    ...     warnings.filterwarnings("ignore", category=ws.WoodburyWarning)
    ...     # ... calls whose warnings are known and accepted ...
    """


class IllConditionedWarning(WoodburyWarning):
    """A matrix is so ill-conditioned that results may have lost about half their digits.

    Issued when the estimated reciprocal condition number of the capacitance
    ``O = B + V A U`` falls below ``√eps`` (about ``1.5e-8``).

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> W = ws.WoodburyMatrix(np.diag([1.0, 1e-10]), np.diag([1.0, 1e-10]))
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     x = W.solve(np.ones(2))
    >>> [w.category.__name__ for w in caught]
    ['IllConditionedWarning']
    """


class AsymmetryWarning(WoodburyWarning):
    """A block given as symmetric is so only to more than rounding, and is symmetrised.

    Issued when the relative asymmetry ``‖M − Mᵀ‖_F/‖M‖_F`` of a block used as symmetric
    lies between what rounding leaves (``4·√n·eps``) and ``√eps`` (above which the block
    is refused as not symmetric). A precision computed as ``numpy.linalg.inv(Σ)`` carries
    an asymmetry of about ``cond(Σ)·eps`` and meets this warning; symmetrise it,
    ``(Q + Q.T) / 2``, or filter this class.

    Examples
    --------
    >>> import warnings
    >>> import numpy as np
    >>> import woodbury_sparse as ws
    >>> A = np.array([[2.0, 1.0 + 1e-10], [1.0, 2.0]])  # symmetric but for 1e-10
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     W = ws.WoodburyMatrix(A, np.eye(2))
    >>> [w.category.__name__ for w in caught], type(W).__name__
    (['AsymmetryWarning'], 'SymmetricWoodburyMatrix')
    >>> W = ws.WoodburyMatrix((A + A.T) / 2, np.eye(2))  # no warning
    """


#: Modules whose frames a warning is never attributed to.
_SKIPPED = (__name__.rpartition(".")[0] + ".", "scipy.sparse.linalg.")


def warn(message: str, category: type[Warning] = WoodburyWarning) -> None:
    """Issue ``message`` attributed to the first caller outside woodbury_sparse.

    The right ``stacklevel`` depends on how deep inside the package the condition was
    found; counting frames up to the user's code keeps the warning pointing there.
    SciPy's ``LinearOperator`` dispatch (``W.inv() @ b``, a Krylov solver's
    preconditioner) is skipped too.
    """
    frame: FrameType | None = sys._getframe(1)
    level = 2  # stacklevel 1 is this function, 2 its caller (``frame``)
    while frame is not None and frame.f_globals.get("__name__", "").startswith(_SKIPPED):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
