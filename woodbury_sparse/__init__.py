"""Woodbury matrices ``W = A⁻¹ + U B⁻¹ V`` on SciPy's sparse stack and CHOLMOD.

The operators subclass :class:`scipy.sparse.linalg.LinearOperator`; cached sparse
factorisations of ``A``, ``B`` and the capacitance ``O = B + V A U`` drive solves,
log-determinants and products without ever forming ``W``.
"""

from . import fitting, ggm, gradients, updates
from ._exceptions import (
    AsymmetryWarning,
    FactorizationError,
    IllConditionedWarning,
    NotPositiveDefiniteError,
    SingularMatrixError,
    WoodburyWarning,
)
from ._factor import backend_info
from ._operators import SymmetricWoodburyMatrix, WoodburyInverse, WoodburyMatrix
from ._selected_inverse import selected_inverse
from .gradients import LogDensityGradient, log_density_gradient
from .stats import WoodburyCovariance, WoodburyNormal, dwnorm, mahalanobis, rwnorm
from .updates import add_terms, refactor, with_blocks

__version__ = "0.1.0"

__all__ = [
    "AsymmetryWarning",
    "FactorizationError",
    "IllConditionedWarning",
    "LogDensityGradient",
    "NotPositiveDefiniteError",
    "SingularMatrixError",
    "SymmetricWoodburyMatrix",
    "WoodburyCovariance",
    "WoodburyInverse",
    "WoodburyMatrix",
    "WoodburyNormal",
    "WoodburyWarning",
    "add_terms",
    "backend_info",
    "dwnorm",
    "fitting",
    "ggm",
    "gradients",
    "log_density_gradient",
    "mahalanobis",
    "refactor",
    "rwnorm",
    "selected_inverse",
    "updates",
    "with_blocks",
]
