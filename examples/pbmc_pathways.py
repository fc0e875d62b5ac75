"""Real gene expression: a shrinkage network of blood cells and the MHC class II pathway.

The data are scanpy's ``pbmc68k_reduced``: 700 peripheral blood mononuclear cells of 10x
Genomics' 68k PBMC data set, 765 genes with their symbols and log-normalised expression,
cell types in ``bulk_labels``. scanpy ships the file inside its wheel; it is read here with
``anndata`` from the installed package's files, without importing scanpy (nothing is
downloaded at run time).

With more genes than cells (``p > n``) the sample covariance ``S = ZᵀZ / n`` of the
standardised expression ``Z`` (``n × p``) is singular. The Ledoit–Wolf shrinkage estimate

    ``Σ = a μ I + (1 − a)/n · ZᵀZ``,   ``μ = tr(S) / p``,

is positive definite, and it is itself a Woodbury matrix ``A⁻¹ + X B⁻¹ Xᵀ`` with
``A = (a μ)⁻¹ I_p``, ``B = n/(1 − a) · I_n`` and ``X = Zᵀ``: every cell is a rank-one
term. Its precision ``Θ = Σ⁻¹`` is the lazy ``W.inv()`` (an ``n × n`` capacitance, no
``p × p`` inversion), and the shrinkage intensity ``a`` itself comes from the ``n × n`` Gram
matrix ``Z Zᵀ``, never ``p × p``. At 765 genes the dense computation is as fast (step 4
times it); what the Woodbury form changes is the memory, ``n·p`` numbers instead of ``p²``
(for all ~20 000 genes of a transcriptome and these 700 cells: 112 MB instead of 3.2 GB),
and the factorisation, ``O(n³)`` instead of ``O(p³)``.

1. The network: partial correlations of ``Θ`` and the strong edges, with gene symbols.
2. A pathway from the data: shrinkage pulls the co-expression program of the MHC class II
   genes (HLA-DRA … HLA-DPB1, the ones present) towards zero by the factor ``1 − a``.
   Trusting the pathway annotation, the update puts back what shrinkage took from its
   leading component, ``x xᵀ`` with ``x = √(a λ₁) v₁`` (``λ₁, v₁``: the leading eigenpair
   of the pathway genes' correlation matrix); the new precision is
   ``ggm.add_pathways(Θ, x)``, a rank-one update that reuses every factorisation.
3. The edges that change, and figures: the pathway's partial correlations before and
   after, and the largest changes of ``|ρ|``.
4. Verification against the dense computation (``p × p`` matrices, ``O(p³)``
   inversions): shrinkage intensity, both precisions, partial correlations and the
   strong-edge sets, each to a tolerance derived from ``p``, ``ε`` and ``κ(Σ)``.

Needs scanpy's data file (the ``examples`` extra installs scanpy) and anndata; without
them the example says so and stops. Run ``python examples/pbmc_pathways.py [--quick]``
(``--quick``: every second cell, 350 cells); figures go to ``examples/output/``.
"""

from __future__ import annotations

import importlib.metadata
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import linalg, sparse

import woodbury_sparse as ws
from woodbury_sparse import ggm

OUTPUT = Path(__file__).resolve().parent / "output"
DATA_FILE = "scanpy/datasets/10x_pbmc68k_reduced.h5ad"
#: The MHC class II antigen-presentation genes (the classical DR, DQ, DP and the DM
#: chaperone); the example uses those present in the data.
MHC_CLASS_II = (
    "HLA-DRA",
    "HLA-DRB1",
    "HLA-DRB5",
    "HLA-DQA1",
    "HLA-DQA2",
    "HLA-DQB1",
    "HLA-DMA",
    "HLA-DMB",
    "HLA-DPA1",
    "HLA-DPB1",
)
THRESHOLD = 0.1
EPS = float(np.finfo(np.float64).eps)


# -- the data -------------------------------------------------------------------------------
def dataset_path() -> Path | None:
    """Where the installed scanpy keeps ``pbmc68k_reduced``; None without scanpy or anndata.

    Found through the distribution's metadata: scanpy itself (numba, scikit-learn, …) is
    never imported.
    """
    try:
        importlib.metadata.version("anndata")
        path = Path(str(importlib.metadata.distribution("scanpy").locate_file(DATA_FILE)))
    except importlib.metadata.PackageNotFoundError:
        return None
    return path if path.is_file() else None


def load_pbmc(path: Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``(expression, genes, cell_types)``: log-normalised counts (cells × genes), float64."""
    import anndata  # optional: only this example needs it

    with warnings.catch_warnings():
        # The file was written by an early anndata (no encoding metadata, graphs in .uns):
        # today's anndata reads it, converting as it goes, and says so for every element.
        warnings.filterwarnings("ignore", category=anndata.OldFormatWarning)
        warnings.filterwarnings("ignore", message="Moving element", category=FutureWarning)
        adata = anndata.read_h5ad(path)
    # .raw: log-normalised expression. .X holds scaled values, not centred over these cells.
    raw = adata.raw
    expression = raw.X.toarray() if sparse.issparse(raw.X) else np.asarray(raw.X)
    return (
        expression.astype(np.float64),
        [str(g) for g in raw.var_names],
        adata.obs["bulk_labels"].to_numpy(dtype=str),
    )


def standardise(expression: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each gene centred and scaled to unit variance (``S`` is then a correlation matrix).

    Returns ``Z`` and the mask of the genes kept: those not constant over these cells.
    """
    centred = expression - expression.mean(axis=0)
    sd = centred.std(axis=0)
    keep = sd > 0
    return centred[:, keep] / sd[keep], keep


# -- the shrinkage covariance as a Woodbury matrix -------------------------------------------
def ledoit_wolf(Z: np.ndarray) -> dict[str, float]:
    """Ledoit–Wolf's intensity ``a`` and target scale ``μ`` from the Gram matrix ``Z Zᵀ``.

    With ``G = Z Zᵀ`` (``n × n``): ``tr S = tr G / n``, ``‖S‖²_F = ‖G‖²_F / n²`` and, for
    cell ``k``, ``‖z_k z_kᵀ − S‖²_F = G_kk² − 2 Σ_j G_kj² / n + ‖S‖²_F``. So
    ``d² = ‖S − μ I‖²_F / p`` and ``b² = Σ_k ‖z_k z_kᵀ − S‖²_F / (n² p)`` cost
    ``O(n² p)``; ``a = min(b², d²) / d²``. Also returns ``λ_max(S)``, for ``κ(Σ)``.
    """
    n, p = Z.shape
    G = Z @ Z.T
    mu = np.trace(G) / (n * p)
    s_f2 = float(np.sum(G**2)) / n**2
    d2 = (s_f2 - 2 * mu * np.trace(G) / n + mu**2 * p) / p
    per_cell = np.diag(G) ** 2 - 2 * np.sum(G**2, axis=1) / n + s_f2
    b2 = min(float(per_cell.sum()) / (n**2 * p), d2)
    # the size of the terms each difference cancels, for the tolerance of the dense check
    cancel = (s_f2 / p + mu**2) / d2 + (float(np.mean(np.diag(G) ** 2)) / p + s_f2 / p) / b2
    return dict(
        a=b2 / d2,
        mu=float(mu),
        lambda_max=float(linalg.eigvalsh(G, subset_by_index=[n - 1, n - 1])[0]) / n,
        cancellation=float(cancel),
    )


def shrinkage_covariance(Z: np.ndarray, a: float, mu: float) -> ws.SymmetricWoodburyMatrix:
    """``Σ = a μ I_p + (1 − a)/n · ZᵀZ`` as ``A⁻¹ + X B⁻¹ Xᵀ`` (``X = Zᵀ``, ``p × n``)."""
    n, p = Z.shape
    A = sparse.eye_array(p, format="csc") / (a * mu)
    B = sparse.eye_array(n, format="csc") * (n / (1 - a))
    return ws.SymmetricWoodburyMatrix(A=A, B=B, X=Z.T)


def pathway_loadings(Z: np.ndarray, members: np.ndarray, a: float):
    """``x = √(a λ₁) v₁`` on the pathway's genes: what shrinkage took from its program.

    ``λ₁, v₁``: the leading eigenpair of the members' correlation block ``S_pp``
    (``v₁`` signed to sum positive). Returns ``x`` (``p × 1``), ``λ₁`` and ``v₁``.
    """
    n, p = Z.shape
    block = Z[:, members].T @ Z[:, members] / n
    values, vectors = linalg.eigh(block)
    lam, v = float(values[-1]), vectors[:, -1]
    v = v if v.sum() >= 0 else -v
    x = np.zeros((p, 1))
    x[members, 0] = np.sqrt(a * lam) * v
    return x, lam, v


# -- dense reference -------------------------------------------------------------------------
def dense_precision(sigma: np.ndarray) -> np.ndarray:
    """``Σ⁻¹`` by a dense Cholesky factorisation, ``O(p³)``."""
    factor = linalg.cho_factor(sigma)
    return linalg.cho_solve(factor, np.eye(sigma.shape[0]))


def dense_partial_correlations(theta: np.ndarray) -> np.ndarray:
    s = 1 / np.sqrt(np.diag(theta))
    rho = -theta * s[:, None] * s[None, :]
    np.fill_diagonal(rho, 1.0)
    return rho


def edge_set(edges: ggm.Edges) -> set[tuple[str, str]]:
    return set(edges.names())


# -- figures ---------------------------------------------------------------------------------
def pathway_heatmaps(genes, before: np.ndarray, after: np.ndarray, path: Path) -> None:
    """Partial correlations among the pathway genes: before, after and the change."""
    k = len(genes)
    off = ~np.eye(k, dtype=bool)
    vmax = max(np.abs(before[off]).max(), np.abs(after[off]).max())
    change = np.abs(after) - np.abs(before)
    dmax = np.abs(change[off]).max()
    fig, axes = plt.subplots(1, 3, figsize=(16, 5.2))
    panels = [
        (before, "before: shrinkage precision Θ", vmax, "RdBu_r"),
        (after, "after: + MHC class II program (rank 1)", vmax, "RdBu_r"),
        (change, "change of |ρ|", dmax, "PuOr_r"),
    ]
    for ax, (values, title, scale, cmap) in zip(axes, panels, strict=True):
        shown = np.where(off, values, np.nan)
        image = ax.imshow(shown, cmap=cmap, vmin=-scale, vmax=scale)
        ax.set_xticks(range(k))
        ax.set_xticklabels(genes, rotation=90, fontsize=8)
        ax.set_yticks(range(k))
        ax.set_yticklabels(genes, fontsize=8)
        ax.set_title(title, fontsize=10)
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle("Partial correlations among the MHC class II genes (pbmc68k_reduced)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _arrows(ax, changes: ggm.EdgeChanges, threshold: float, title: str) -> None:
    order = np.arange(len(changes))[::-1]
    names = [f"{a}–{b}" for a, b in changes.names()]
    for row, k in enumerate(order):
        colour = "#c0392b" if changes.change[k] > 0 else "#2471a3"
        ax.annotate(
            "",
            xy=(changes.after[k], row),
            xytext=(changes.before[k], row),
            arrowprops=dict(arrowstyle="->", color=colour, lw=1.5),
        )
        ax.plot(changes.before[k], row, "o", color="grey", markersize=4)
    for sign in (1, -1):
        ax.axvline(sign * threshold, color="black", linestyle="--", linewidth=0.8)
    lo = min(changes.before.min(), changes.after.min(), -threshold)
    hi = max(changes.before.max(), changes.after.max(), threshold)
    ax.set_xlim(lo - 0.02, hi + 0.02)
    ax.set_ylim(-0.7, len(changes) - 0.3)
    ax.set_yticks(range(len(changes)))
    ax.set_yticklabels([names[k] for k in order], fontsize=8)
    ax.set(xlabel="partial correlation ρ", title=title)
    ax.grid(True, axis="x", alpha=0.3)


def edge_changes_figure(top, cross, threshold: float, path: Path) -> None:
    """The pairs whose ``|ρ|`` changed most, all pairs and pathway–other pairs.

    Grey: ``ρ`` before the update; arrow head: after; dashed: ``±threshold``.
    """
    fig, axes = plt.subplots(1, 2, figsize=(14, 0.3 * max(len(top), len(cross)) + 1.8))
    _arrows(axes[0], top, threshold, f"The {len(top)} largest changes of |ρ|")
    _arrows(axes[1], cross, threshold, "… between a pathway gene and another gene")
    fig.suptitle(
        f"Partial correlations before (grey) and after (arrow) the MHC class II update; "
        f"dashed: ±{threshold}"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- the example -----------------------------------------------------------------------------
def network(Z: np.ndarray, genes: list[str]) -> dict:
    """The shrinkage covariance as a Woodbury matrix, its precision and strong edges."""
    n, p = Z.shape
    start = time.perf_counter()
    lw = ledoit_wolf(Z)
    a, mu = lw["a"], lw["mu"]
    sigma = shrinkage_covariance(Z, a, mu)
    theta = sigma.inv()  # lazy; the n×n capacitance is factorised at first use
    diag = ggm.precision_diagonal(theta)
    edges = ggm.strong_edges(theta, THRESHOLD, genes=genes)
    elapsed = time.perf_counter() - start
    # p > n: the smallest eigenvalue of Σ is a μ exactly, the largest a μ + (1 − a) λ_max(S)
    kappa = (a * mu + (1 - a) * lw["lambda_max"]) / (a * mu)
    print(f"Ledoit–Wolf shrinkage: a = {a:.4f}, μ = {mu:.4f}, κ(Σ) = {kappa:.1f}")
    print(
        f"Σ = {type(sigma).__name__}: A = (aμ)⁻¹ I_{p}, B = n/(1−a) I_{n}, X = Zᵀ "
        f"({sigma.nbytes / 1e6:.1f} MB; a dense Σ: {8 * p * p / 1e6:.1f} MB)"
    )
    print(f"precision diagonal Θᵢᵢ in [{diag.min():.3f}, {diag.max():.3f}]")
    print(f"strong edges |ρ| > {THRESHOLD}: {len(edges)} of {p * (p - 1) // 2} pairs; strongest:")
    for k in np.argsort(-np.abs(edges.rho))[:10]:
        g1, g2 = edges.names()[k]
        print(f"  {g1:>13} – {g2:<13} ρ = {edges.rho[k]:+.3f}")
    print(f"(Σ, its precision's diagonal and the edge scan: {elapsed:.2f} s)")
    return dict(lw, theta=theta, edges=edges, kappa=kappa)


def pathway_update(Z, genes, cell_types, base: dict, outdir: Path) -> dict:
    """The MHC class II program as a rank-one update; the edges that change; figures."""
    theta, before = base["theta"], base["edges"]
    present = [g for g in MHC_CLASS_II if g in genes]
    missing = sorted(set(MHC_CLASS_II) - set(present))
    members = np.array([genes.index(g) for g in present])
    x, lam, v = pathway_loadings(Z, members, base["a"])
    print(
        f"\nMHC class II pathway: {len(present)} genes present"
        + (f" (absent: {', '.join(missing)})" if missing else "")
        + f"; leading component λ₁ = {lam:.2f} of {len(present)} "
        f"({100 * lam / len(present):.0f}% of their variance)"
    )
    score = Z[:, members] @ v
    print("mean pathway score by cell type (high in the antigen-presenting cells):")
    for t in sorted(set(cell_types), key=lambda t: -score[cell_types == t].mean()):
        cells = cell_types == t
        print(f"  {t:<30} {score[cells].mean():+6.2f}  ({np.sum(cells)} cells)")

    start = time.perf_counter()
    updated = ggm.add_pathways(theta, x)  # Σ + x xᵀ: one more term, factorisations reused
    after = ggm.strong_edges(updated, THRESHOLD, genes=genes)
    top = ggm.top_changed_edges(theta, updated, k=20, genes=genes)
    elapsed = time.perf_counter() - start
    print(ggm.summary_table(*(ggm.network_summary(P, THRESHOLD) for P in (theta, updated))))
    gained, lost = edge_set(after) - edge_set(before), edge_set(before) - edge_set(after)
    for name, pairs in (("gained", gained), ("lost", lost)):
        listed = ", ".join(f"{g}–{h}" for g, h in sorted(pairs)) or "none"
        print(f"edges {name} ({len(pairs)}): {listed}")
    print("largest changes of |ρ|:")
    for (g1, g2), old, new in list(zip(top.names(), top.before, top.after, strict=True))[:5]:
        print(f"  {g1:>9} – {g2:<9} {old:+.3f} → {new:+.3f}")
    # between a pathway gene and any other gene: O(D) per pair, nothing N×N
    others = [g for g in genes if g not in present]
    cross = np.array([[g, h] for g in present for h in others], dtype=object)
    old, new = (ggm.partial_correlation_entries(P, cross, genes=genes) for P in (theta, updated))
    order = np.argsort(-np.abs(np.abs(new) - np.abs(old)))[:12]
    cross_top = ggm.EdgeChanges(
        np.array([genes.index(g) for g in cross[order, 0]]),
        np.array([genes.index(h) for h in cross[order, 1]]),
        old[order],
        new[order],
        np.abs(new[order]) - np.abs(old[order]),
        tuple(genes),
    )
    print("largest changes between a pathway gene and another gene:")
    for (g1, g2), o, w in list(zip(cross_top.names(), old[order], new[order], strict=True))[:5]:
        print(f"  {g1:>9} – {g2:<9} {o:+.3f} → {w:+.3f}")
    print(f"(update, edge scans and changes: {elapsed:.2f} s)")

    k = len(present)
    square = [[g, h] for g in present for h in present]
    rho_pathway = [
        ggm.partial_correlation_entries(P, square, genes=genes).reshape(k, k)
        for P in (theta, updated)
    ]
    pathway_heatmaps(present, *rho_pathway, outdir / "pbmc_pathways_mhc2.png")
    edge_changes_figure(top, cross_top, THRESHOLD, outdir / "pbmc_pathways_edges.png")
    return dict(
        x=x,
        updated=updated,
        edges=after,
        top=top,
        cross_top=cross_top,
        pathway=present,
        gained=gained,
        lost=lost,
    )


def verify(Z: np.ndarray, base: dict, update: dict) -> dict:
    """Everything above against the dense ``p × p`` computation, to derived tolerances."""
    n, p = Z.shape
    a, mu, x = base["a"], base["mu"], update["x"]
    start = time.perf_counter()
    S = Z.T @ Z / n
    sigma_dense = a * mu * np.eye(p) + (1 - a) * S
    theta_dense = dense_precision(sigma_dense)
    updated_dense = dense_precision(sigma_dense + x @ x.T)
    d2 = np.sum((S - mu * np.eye(p)) ** 2) / p
    b2 = sum(np.sum((np.outer(z, z) - S) ** 2) for z in Z) / (n**2 * p)
    a_dense = min(b2, d2) / d2
    elapsed = time.perf_counter() - start
    # Tolerances. The shrinkage intensity: its sums of n + p terms lose the digits their
    # differences cancel (constant 4: two ratios of two estimates). A precision: an inverse
    # computed in floating point has a relative error of order p·ε·κ (constant 1); κ of
    # Σ + x xᵀ is at most (λ_max(Σ) + ‖x‖²) / (a μ).
    tol_a = 4 * (n + p) * EPS * base["cancellation"]
    err_a = abs(a - a_dense) / a_dense
    kappas = (base["kappa"], base["kappa"] + float(np.sum(x**2)) / (a * mu))
    print(f"\nverification against the dense computation ({elapsed:.2f} s, O(p³)):")
    print(f"  shrinkage intensity a: relative difference {err_a:.1e} (tolerance {tol_a:.1e})")
    assert err_a <= tol_a, (err_a, tol_a)
    checked = {}
    for name, lazy, dense, edges, kappa in zip(
        ("Θ", "Θ updated"),
        (base["theta"], update["updated"]),
        (theta_dense, updated_dense),
        (base["edges"], update["edges"]),
        kappas,
        strict=True,
    ):
        scale = np.abs(dense).max()  # the largest diagonal entry
        tol = p * EPS * kappa
        err = np.abs(lazy.toarray() - dense).max() / scale
        # |δρᵢⱼ| ≤ (|δΘᵢⱼ| + |ρᵢⱼ| max(|δΘᵢᵢ|, |δΘⱼⱼ|)) / min Θᵢᵢ ≤ 2 tol max|Θ| / min Θᵢᵢ
        tol_rho = 2 * tol * scale / np.diag(dense).min()
        rho = dense_partial_correlations(dense)
        err_rho = np.abs(ggm.partial_correlations(lazy) - rho).max()
        # the strong edges agree, except pairs within tol_rho of the threshold
        upper = np.triu(np.abs(rho), k=1)
        strong = set(zip(*np.nonzero(upper > THRESHOLD), strict=True))
        near = set(zip(*np.nonzero(np.abs(upper - THRESHOLD) <= tol_rho), strict=True))
        found = set(zip(edges.i, edges.j, strict=True))
        differ = (found ^ strong) - near
        print(
            f"  {name:<9} max|ΔΘ|/max|Θ| {err:.1e} (tolerance p·ε·κ = {tol:.1e}); "
            f"max|Δρ| {err_rho:.1e} (tolerance {tol_rho:.1e}); strong edges: "
            f"{len(found)}, {len(found ^ strong)} differ ({len(near)} within the tolerance)"
        )
        assert err <= tol and err_rho <= tol_rho and not differ, (err, tol, err_rho, tol_rho)
        checked[name] = dict(error=err, tolerance=tol, rho_error=err_rho, rho_tolerance=tol_rho)
    return dict(a_dense=a_dense, a_error=err_a, a_tolerance=tol_a, checks=checked)


def main(quick: bool = False, outdir: Path = OUTPUT) -> dict:
    """Run the example; returns the checked numbers (empty without the data)."""
    outdir = Path(outdir)
    path = dataset_path()
    if path is None:
        print(
            "scanpy's pbmc68k_reduced data file (and anndata to read it) are not installed: "
            "skipping this example (pip install scanpy, or the package's `examples` extra)"
        )
        return {}
    outdir.mkdir(parents=True, exist_ok=True)
    expression, genes, cell_types = load_pbmc(path)
    if quick:
        expression, cell_types = expression[::2], cell_types[::2]
    Z, keep = standardise(expression)
    genes = [g for g, k in zip(genes, keep, strict=True) if k]
    n, p = Z.shape
    print(
        f"pbmc68k_reduced: {n} cells × {p} genes (p > n: S = ZᵀZ/n has rank ≤ {n})"
        + (
            f"; left out, constant over these cells: {np.sum(~keep)} gene(s)"
            if not keep.all()
            else ""
        )
    )
    base = network(Z, genes)
    update = pathway_update(Z, genes, cell_types, base, outdir)
    checks = verify(Z, base, update)
    return dict(
        n_cells=n,
        n_genes=p,
        a=base["a"],
        kappa=base["kappa"],
        pathway=update["pathway"],
        n_edges_before=len(base["edges"]),
        n_edges_after=len(update["edges"]),
        gained=sorted(update["gained"]),
        lost=sorted(update["lost"]),
        top_changes=update["top"].names(),
        cross_changes=update["cross_top"].names(),
        **checks,
    )


if __name__ == "__main__":
    from _cli import run_example

    run_example(main, __doc__)
