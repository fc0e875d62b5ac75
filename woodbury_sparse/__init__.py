"""Woodbury matrices ``W = A⁻¹ + U B⁻¹ V`` on SciPy's sparse stack and CHOLMOD.

The operators subclass :class:`scipy.sparse.linalg.LinearOperator`; cached sparse
factorisations of ``A``, ``B`` and the capacitance ``O = B + V A U`` drive solves,
log-determinants and products without ever forming ``W``.
"""

from . import constraints, fitting, ggm, gradients, posterior, updates
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
from .constraints import ConstrainedNormal, sum_to_zero
from .gradients import LogDensityGradient, log_density_gradient
from .posterior import (
    LatentPosterior,
    NoisePosterior,
    PrecisionNormal,
    latent_posterior,
)
from .stats import WoodburyCovariance, WoodburyNormal, dwnorm, mahalanobis, rwnorm
from .updates import add_terms, refactor, with_blocks

__version__ = "0.1.0"

__all__ = [
    "AsymmetryWarning",
    "ConstrainedNormal",
    "FactorizationError",
    "IllConditionedWarning",
    "LatentPosterior",
    "LogDensityGradient",
    "NoisePosterior",
    "NotPositiveDefiniteError",
    "PrecisionNormal",
    "SingularMatrixError",
    "SymmetricWoodburyMatrix",
    "WoodburyCovariance",
    "WoodburyInverse",
    "WoodburyMatrix",
    "WoodburyNormal",
    "WoodburyWarning",
    "add_terms",
    "backend_info",
    "constraints",
    "dwnorm",
    "fitting",
    "ggm",
    "gradients",
    "latent_posterior",
    "log_density_gradient",
    "mahalanobis",
    "posterior",
    "refactor",
    "rwnorm",
    "selected_inverse",
    "sum_to_zero",
    "updates",
    "with_blocks",
]
