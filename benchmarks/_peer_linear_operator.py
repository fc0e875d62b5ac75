"""Run inside the separate peer venv (torch + linear_operator); prints one JSON line.

usage: python _peer_linear_operator.py N P SIGMA2 TAU REPEATS
The data are regenerated from the same seed as ``case_regression.problem``.
"""

import json
import sys
import time

import numpy as np
import torch
from linear_operator.operators import DiagLinearOperator, LowRankRootLinearOperator

n, p, sigma2, tau, reps = (
    int(sys.argv[1]),
    int(sys.argv[2]),
    float(sys.argv[3]),
    float(sys.argv[4]),
    int(sys.argv[5]),
)
rng = np.random.default_rng(0)
X = rng.standard_normal((n, p))
beta = rng.standard_normal(p) / np.sqrt(tau)
y = X @ beta + np.sqrt(sigma2) * rng.standard_normal(n)
Xt = torch.from_numpy(X / np.sqrt(tau))
yt = torch.from_numpy(y)
torch.set_num_threads(2)


def build():
    return LowRankRootLinearOperator(Xt) + DiagLinearOperator(
        torch.full((n,), sigma2, dtype=torch.float64)
    )


def logpdf(op):
    quad, logdet = op.inv_quad_logdet(inv_quad_rhs=yt.unsqueeze(-1), logdet=True)
    return float(-0.5 * (n * np.log(2 * np.pi) + logdet + quad))


first, rep = [], []
op = build()
value = logpdf(op)
for _ in range(reps):
    t0 = time.perf_counter()
    logpdf(build())
    first.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    logpdf(op)
    rep.append(time.perf_counter() - t0)
print(
    json.dumps(
        {
            "first": float(np.median(first)),
            "repeated": float(np.median(rep)),
            "value": value,
            "type": type(op).__name__,
            "torch": torch.__version__,
        }
    )
)
