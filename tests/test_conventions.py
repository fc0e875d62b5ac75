"""Conventions shared with NumPy and SciPy, and where the package differs on purpose.

``slogdet()`` returns a named pair, as ``numpy.linalg.slogdet`` does, on every operator.
The values themselves are checked against dense references over the catalogue elsewhere
(``test_operations``, ``test_accuracy``); here: the names, the pair it still is, and that
the inverse's names mean the inverse's determinant.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from scipy.spatial import distance

import woodbury_sparse as ws
from woodbury_sparse import testing

CATALOGUE = testing.catalogue(seed=5, n=12)
#: ``log|det|`` of an n×n matrix: the dense reference's LU loses about n·eps·κ; the
#: constant 100 covers both factorisations' round-off (a loose check: the field names are
#: what is tested here).
C = 100


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_slogdet_is_named_and_still_a_pair(name):
    problem = CATALOGUE[name]
    W = problem.build()
    dense = problem.dense()
    ref = np.linalg.slogdet(dense)
    kappa = np.linalg.cond(dense)
    if not np.isfinite(kappa) or kappa > 1e10:
        pytest.skip("singular or too ill-conditioned for a dense reference")
    tol = C * dense.shape[0] * np.finfo(float).eps * kappa
    for op, sign, logabsdet in ((W, ref.sign, ref.logabsdet), (W.inv(), ref.sign, -ref.logabsdet)):
        result = op.slogdet()
        assert type(result).__name__ == "SlogdetResult"
        assert isinstance(result, tuple) and len(result) == 2
        assert result._fields == ("sign", "logabsdet")
        assert isinstance(result.sign, float) and isinstance(result.logabsdet, float)
        assert result.sign == sign
        assert abs(result.logabsdet - logabsdet) <= tol * max(1.0, abs(logabsdet))
        s, logdet = result  # unpacks as the pair did
        assert (s, logdet) == result == (result.sign, result.logabsdet)
        assert result[0] == s and result[1] == logdet and list(result) == [s, logdet]
        assert pickle.loads(pickle.dumps(result)) == result


def test_mahalanobis_is_the_square_of_scipys():
    """The README's claim: R's squared distance, from the covariance; SciPy's is its root
    and takes the inverse covariance."""
    problem = CATALOGUE["ar1_plus_noise"]
    W = problem.build()
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal(W.n), rng.standard_normal(W.n)
    ours = ws.mahalanobis(u, v, W)
    theirs = distance.mahalanobis(u, v, W.inv().toarray())
    kappa = np.linalg.cond(problem.dense())
    assert abs(np.sqrt(ours) - theirs) <= C * W.n * np.finfo(float).eps * kappa * theirs
    assert abs(ours - theirs) > 0.1 * theirs  # not the same number: one is the square
