"""Exception and warning classes of woodbury_sparse."""

from __future__ import annotations

import numpy as np

__all__ = [
    "FactorizationError",
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
    """

    def __init__(self, block: str, message: str) -> None:
        super().__init__(message)
        self.block = block

    def __reduce__(self):
        return (type(self), (self.block, self.args[0]))


class SingularMatrixError(FactorizationError):
    """A block that must be inverted is singular (to working precision)."""


class NotPositiveDefiniteError(FactorizationError):
    """A block that must be positive definite is not."""


class WoodburyWarning(UserWarning):
    """Base class of the warnings issued by woodbury_sparse."""
