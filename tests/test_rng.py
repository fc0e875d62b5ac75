"""``rng`` (SPEC 7) wherever the package draws, beside the older spellings it keeps.

``rng`` is keyword-only and read as ``numpy.random.default_rng(rng)``; ``random_state`` and
``seed`` keep their meaning (a ``RandomState`` is used as it is); giving both is a
``TypeError``. Draws are compared exactly: the same generator state must give the same bits.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import woodbury_sparse as ws
from woodbury_sparse import testing
from woodbury_sparse.testing import ar1_precision

HAVE_DASK = importlib.util.find_spec("dask") is not None


def small_covariance() -> ws.SymmetricWoodburyMatrix:
    return ws.WoodburyMatrix(ar1_precision(5, 0.6), np.eye(2), X=np.ones((5, 2)))


#: Every kind of value SPEC 7's ``rng`` takes, as a factory (a generator is used up).
SEEDS = {
    "int": lambda: 7,
    "numpy-int": lambda: np.uint16(7),
    "list": lambda: [1, 2],
    "seed-sequence": lambda: np.random.SeedSequence(4),
    "bit-generator": lambda: np.random.PCG64(4),
    "generator": lambda: np.random.default_rng(4),
}


# -- rwnorm -------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", SEEDS)
def test_rwnorm_rng_draws_as_default_rng_does(kind):
    W = small_covariance()
    expected = ws.rwnorm(3, 0.0, W, random_state=np.random.default_rng(SEEDS[kind]()))
    np.testing.assert_array_equal(ws.rwnorm(3, 0.0, W, rng=SEEDS[kind]()), expected)


def test_rwnorm_rng_none_is_fresh_entropy():
    W = small_covariance()
    assert not np.array_equal(ws.rwnorm(2, 0.0, W, rng=None), ws.rwnorm(2, 0.0, W, rng=None))


def test_rwnorm_generator_is_used_and_advanced():
    W = small_covariance()
    gen = np.random.default_rng(11)
    first, second = ws.rwnorm(2, 0.0, W, rng=gen), ws.rwnorm(2, 0.0, W, rng=gen)
    assert not np.array_equal(first, second)
    replay = np.random.default_rng(11)
    np.testing.assert_array_equal(ws.rwnorm(2, 0.0, W, rng=replay), first)
    np.testing.assert_array_equal(ws.rwnorm(2, 0.0, W, rng=replay), second)


def test_rwnorm_old_spellings_keep_working():
    W = small_covariance()
    by_rng = ws.rwnorm(3, 0.0, W, rng=5)
    np.testing.assert_array_equal(ws.rwnorm(3, 0.0, W, random_state=5), by_rng)
    np.testing.assert_array_equal(ws.rwnorm(3, 0.0, W, 5), by_rng)  # by position
    # a RandomState is still used as it is (its state advances), as before
    legacy = np.random.RandomState(3)
    before = legacy.get_state()[1].copy()
    draws = ws.rwnorm(3, 0.0, W, random_state=legacy)
    assert not np.array_equal(legacy.get_state()[1], before)
    np.testing.assert_array_equal(
        ws.rwnorm(3, 0.0, W, random_state=np.random.RandomState(3)), draws
    )


def test_rwnorm_rng_is_keyword_only():
    with pytest.raises(TypeError, match="positional argument"):
        ws.rwnorm(3, 0.0, small_covariance(), None, 5)


def test_rwnorm_both_spellings_is_an_error():
    W = small_covariance()
    with pytest.raises(
        TypeError, match=r"rwnorm\(\) got both `rng` and `random_state` \(its older name\)"
    ):
        ws.rwnorm(3, 0.0, W, random_state=1, rng=1)
    with pytest.raises(TypeError, match=r"rwnorm\(\) got both `rng` and `random_state`"):
        ws.rwnorm(3, 0.0, W, 1, rng=np.random.default_rng(1))


@pytest.mark.parametrize(
    ("value", "error"),
    [("abc", TypeError), (2.5, TypeError), (-1, ValueError), (True, TypeError), ({}, TypeError)],
    ids=["str", "float", "negative", "bool", "dict"],
)
def test_bad_rng_is_named(value, error):
    W = small_covariance()
    expected = r"`rng` must be None, a non-negative int, a sequence of non-negative ints"
    with pytest.raises(error, match=expected):
        ws.rwnorm(2, 0.0, W, rng=value)
    with pytest.raises(error, match=expected):
        ws.WoodburyNormal(cov=W, rng=value)
    with pytest.raises(error, match=expected):
        ws.WoodburyNormal(cov=W).rvs(rng=value)
    with pytest.raises(error, match=expected):
        testing.catalogue(rng=value)


# -- WoodburyNormal -----------------------------------------------------------------------
@pytest.mark.parametrize("kind", SEEDS)
def test_frozen_rng_is_the_default_generator(kind):
    W = small_covariance()
    dist = ws.WoodburyNormal(cov=W, rng=SEEDS[kind]())
    assert isinstance(dist.random_state, np.random.Generator)
    reference = ws.WoodburyNormal(cov=W, seed=np.random.default_rng(SEEDS[kind]()))
    np.testing.assert_array_equal(dist.rvs(size=3), reference.rvs(size=3))
    np.testing.assert_array_equal(dist.rvs(), reference.rvs())  # both advanced alike


def test_frozen_rvs_rng_overrides_for_one_call():
    W = small_covariance()
    dist = ws.WoodburyNormal(cov=W, rng=1)
    own = ws.WoodburyNormal(cov=W, rng=1).rvs(size=2)
    np.testing.assert_array_equal(dist.rvs(size=2, rng=9), ws.rwnorm(2, 0.0, W, rng=9))
    np.testing.assert_array_equal(dist.rvs(size=2), own)  # its own generator untouched
    np.testing.assert_array_equal(
        dist.rvs(size=2, random_state=9), ws.rwnorm(2, 0.0, W, random_state=9)
    )


def test_frozen_both_spellings_is_an_error():
    W = small_covariance()
    with pytest.raises(TypeError, match=r"WoodburyNormal\(\) got both `rng` and `seed`"):
        ws.WoodburyNormal(cov=W, seed=1, rng=2)
    with pytest.raises(TypeError, match=r"rvs\(\) got both `rng` and `random_state`"):
        ws.WoodburyNormal(cov=W).rvs(2, 1, rng=2)


def test_frozen_seed_keeps_its_meaning():
    W = small_covariance()
    legacy = np.random.RandomState(2)
    assert ws.WoodburyNormal(cov=W, seed=legacy).random_state is legacy
    gen = np.random.default_rng(2)
    assert ws.WoodburyNormal(cov=W, rng=gen).random_state is gen


# -- the testing catalogue ----------------------------------------------------------------
def test_catalogue_rng_draws_the_same_problems_as_seed():
    by_seed = testing.catalogue(seed=4, n=8)
    by_rng = testing.catalogue(n=8, rng=4)
    by_generator = testing.catalogue(n=8, rng=np.random.default_rng(4))
    assert by_seed.keys() == by_rng.keys() == by_generator.keys()
    for name, problem in by_seed.items():
        np.testing.assert_array_equal(by_rng[name].dense(), problem.dense(), err_msg=name)
        np.testing.assert_array_equal(by_generator[name].dense(), problem.dense(), err_msg=name)


def test_catalogue_is_reproducible_by_default_and_refuses_both():
    first, second = testing.catalogue(n=8), testing.catalogue(n=8)
    for name, problem in first.items():
        np.testing.assert_array_equal(second[name].dense(), problem.dense(), err_msg=name)
    with pytest.raises(TypeError, match=r"catalogue\(\) got both `rng` and `seed`"):
        testing.catalogue(seed=3, rng=3)


# -- Dask ---------------------------------------------------------------------------------
@pytest.mark.skipif(not HAVE_DASK, reason="needs the dask extra")
def test_dask_sample_rng():
    import dask

    import woodbury_sparse.dask as wsd

    W = small_covariance()

    def draws(**kw):
        with dask.config.set(scheduler="synchronous"):
            return wsd.sample(W, 10, block_size=4, **kw).compute()

    np.testing.assert_array_equal(draws(rng=3, chunks=5), draws(seed=3, chunks=(2, 8)))
    seq = draws(rng=np.random.SeedSequence(3))
    np.testing.assert_array_equal(seq, draws(seed=3))
    # a generator seeds the root from its stream: reproducible, advanced, chunk-free
    gen = np.random.default_rng(8)
    first = draws(rng=gen, chunks=3)
    assert not np.array_equal(draws(rng=gen), first)
    np.testing.assert_array_equal(draws(rng=np.random.default_rng(8), chunks=(7, 3)), first)
    np.testing.assert_array_equal(draws(rng=np.random.PCG64(8)), first)
    with pytest.raises(TypeError, match=r"sample\(\) got both `rng` and `seed`"):
        wsd.sample(W, 10, seed=1, rng=1)
    with pytest.raises(TypeError, match=r"`seed` must be an int.*pass it as `rng=`"):
        wsd.sample(W, 10, seed=np.random.default_rng(1))
    with pytest.raises(ValueError, match="`rng` must be None, a non-negative int"):
        wsd.sample(W, 10, rng=-1)


def test_testing_generators_read_rng_as_default_rng():
    for kind, make in SEEDS.items():
        by_rng = testing.random_spd(6, make())
        expected = testing.random_spd(6, np.random.default_rng(make()))
        np.testing.assert_array_equal(by_rng.toarray(), expected.toarray(), err_msg=kind)
    gen = np.random.default_rng(3)
    first = testing.random_symmetric_indefinite(5, gen)
    assert (testing.random_symmetric_indefinite(5, gen) != first).nnz  # advanced
    testing.assert_dot_test(testing.random_sparse(4, 4, 0.5, 1, diagonal=1.0), 2)
    with pytest.raises(TypeError, match="`rng` must be None, a non-negative int"):
        testing.random_sparse(4, 4, 0.5, "seed")
