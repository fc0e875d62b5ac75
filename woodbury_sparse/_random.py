"""Random generators from the arguments that name them: ``rng`` (SPEC 7) and the old spellings.

Every public function that draws takes ``rng`` (keyword-only), read as SPEC 7 reads it:
``numpy.random.default_rng(rng)``, so ``None`` is fresh entropy, an int, a sequence of ints
or a ``SeedSequence`` seeds a new ``Generator``, a ``BitGenerator`` is wrapped in one and a
``Generator`` is used as it is (and advanced). The older spelling of each function
(``random_state``, ``seed``) keeps its own meaning, unchanged: there a ``RandomState`` is
also used as it is. ``None`` is "not given" for both, and giving both is a ``TypeError``
(as Python's own "got multiple values for argument").
"""

from __future__ import annotations

import numpy as np

from ._validation import short_repr

RandomGenerator = np.random.Generator | np.random.RandomState

#: What ``rng`` takes: whatever ``numpy.random.default_rng`` does.
RngLike = np.random.Generator | np.random.BitGenerator | np.random.SeedSequence | int | None

_SEEDS = "a non-negative int, a sequence of non-negative ints, a numpy.random.SeedSequence"


def _default_rng(value: object, expected: str) -> np.random.Generator:
    """``default_rng(value)``, refused in the library's words (naming the argument)."""
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise TypeError(f"{expected}; got {short_repr(value)}")
    try:
        return np.random.default_rng(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{expected}; got {short_repr(value)}") from None
    except ValueError:
        raise ValueError(f"{expected}; got {short_repr(value)}") from None


def generator(rng: object, name: str = "rng") -> np.random.Generator:
    """``rng`` as SPEC 7 reads it: ``numpy.random.default_rng(rng)``."""
    if isinstance(rng, np.random.Generator):
        return rng
    return _default_rng(rng, f"`{name}` must be None, {_SEEDS}, BitGenerator or Generator")


def legacy_generator(seed: object, name: str = "random_state") -> RandomGenerator:
    """The old spellings' meaning: ``default_rng(seed)``, a ``RandomState`` kept as it is.

    A ``Generator`` or ``RandomState`` is used as it is; anything else goes through
    ``default_rng`` (the library never made a ``RandomState`` from an int).
    """
    if isinstance(seed, (np.random.Generator, np.random.RandomState)):
        return seed
    return _default_rng(
        seed, f"`{name}` must be None, {_SEEDS}, BitGenerator, Generator or RandomState"
    )


def check_one(rng: object, old: object, old_name: str, function: str) -> None:
    """Refuse ``rng`` and its old spelling ``old_name`` given together."""
    if rng is not None and old is not None:
        raise TypeError(
            f"{function}() got both `rng` and `{old_name}` (its older name); pass only "
            f"`rng`, got rng={short_repr(rng)} and {old_name}={short_repr(old)}"
        )


def resolve(rng: object, old: object, old_name: str, function: str) -> RandomGenerator:
    """The generator a call draws from: ``rng`` if given, else the old spelling's."""
    check_one(rng, old, old_name, function)
    if rng is not None:
        return generator(rng)
    return legacy_generator(old, old_name)
