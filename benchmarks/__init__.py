"""Benchmark suite of woodbury_sparse: ``python -m benchmarks.run [--quick]``.

Every case measures our operators against their baselines (direct dense computations,
bare CHOLMOD factorisations and solves) in the same process, interleaved, and reports
medians and ratios; see ``benchmarks/results/REPORT.md``.
"""
