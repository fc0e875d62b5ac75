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
matrix ``Z Zᵀ``, never ``p × p``.

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
    raw = adata.raw  # log-normalised expression; adata.X is scaled on all 68k cells
    expression = raw.X.toarray() if sparse.issparse(raw.X) else np.asarray(raw.X)
    return (
        expression.astype(np.float64),
        [str(g) for g in raw.var_names],
        adata.obs["bulk_labels"].to_numpy(dtype=str),
    )


def standardise(expression: np.ndarray) -> np.ndarray:
    """Each gene centred and scaled to unit variance (``S`` is then a correlation matrix)."""
    centred = expression - expression.mean(axis=0)
    sd = centred.std(axis=0)
    if not np.all(sd > 0):
        raise ValueError(f"{int(np.sum(sd == 0))} genes are constant over these cells")
    return centred / sd


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


def edge_changes_figure(top: ggm.EdgeChanges, threshold: float, path: Path) -> None:
    """The pairs whose ``|ρ|`` changed most: ``ρ`` before → after, threshold marked."""
    order = np.arange(len(top))[::-1]
    names = [f"{a}–{b}" for a, b in top.names()]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(top) + 1.5))
    for row, k in enumerate(order):
        colour = "#c0392b" if top.change[k] > 0 else "#2471a3"
        ax.annotate(
            "",
            xy=(top.after[k], row),
            xytext=(top.before[k], row),
            arrowprops=dict(arrowstyle="->", color=colour, lw=1.5),
        )
        ax.plot(top.before[k], row, "o", color="grey", markersize=4)
    for sign in (1, -1):
        ax.axvline(sign * threshold, color="black", linestyle="--", linewidth=0.8)
    lo = min(top.before.min(), top.after.min(), -threshold)
    hi = max(top.before.max(), top.after.max(), threshold)
    ax.set_xlim(lo - 0.02, hi + 0.02)
    ax.set_yticks(range(len(top)))
    ax.set_yticklabels([names[k] for k in order], fontsize=8)
    ax.set(
        xlabel=f"partial correlation ρ (grey: before; arrow: after; dashed: ±{threshold})",
        title=f"The {len(top)} largest changes of |ρ| after the MHC class II update",
    )
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- the example -----------------------------------------------------------------------------
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
    Z = standardise(expression)
    n, p = Z.shape
    print(f"pbmc68k_reduced: {n} cells × {p} genes (p > n: S = ZᵀZ/n has rank ≤ {n})")

    # -- 1. the shrinkage covariance and its network -------------------------------------------
    start = time.perf_counter()
    lw = ledoit_wolf(Z)
    a, mu = lw["a"], lw["mu"]
    sigma = shrinkage_covariance(Z, a, mu)
    theta = sigma.inv()  # lazy; the n×n capacitance is factorised at first use
    diag = ggm.precision_diagonal(theta)
    before = ggm.strong_edges(theta, THRESHOLD, genes=genes)
    t_woodbury = time.perf_counter() - start
    # p > n: the smallest eigenvalue of Σ is a μ exactly, the largest a μ + (1 − a) λ_max(S)
    kappa = (a * mu + (1 - a) * lw["lambda_max"]) / (a * mu)
    print(f"Ledoit–Wolf shrinkage: a = {a:.4f}, μ = {mu:.4f}, κ(Σ) = {kappa:.1f}")
    print(
        f"Σ = {type(sigma).__name__}: A = (aμ)⁻¹ I_{p}, B = n/(1−a) I_{n}, X = Zᵀ "
        f"({sigma.nbytes / 1e6:.1f} MB; a dense Σ: {8 * p * p / 1e6:.1f} MB)"
    )
    print(f"precision diagonal Θᵢᵢ in [{diag.min():.3f}, {diag.max():.3f}]")
    print(f"strong edges |ρ| > {THRESHOLD}: {len(before)} of {p * (p - 1) // 2} pairs; strongest:")
    for k in np.argsort(-np.abs(before.rho))[:10]:
        g1, g2 = before.names()[k]
        print(f"  {g1:>12} – {g2:<12} ρ = {before.rho[k]:+.3f}")

    # -- 2. the MHC class II pathway, a rank-one update ----------------------------------------
    present = [g for g in MHC_CLASS_II if g in genes]
    missing = sorted(set(MHC_CLASS_II) - set(present))
    members = np.array([genes.index(g) for g in present])
    x, lam, v = pathway_loadings(Z, members, a)
    print(
        f"\nMHC class II pathway: {len(present)} genes present"
        + (f" (absent: {', '.join(missing)})" if missing else "")
        + f"; leading component λ₁ = {lam:.2f} of {len(present)} "
        f"({100 * lam / len(present):.0f}% of their variance)"
    )
    score = Z[:, members] @ v
    print("  mean pathway score by cell type (the antigen-presenting cells are high):")
    types = sorted(set(cell_types), key=lambda t: -score[cell_types == t].mean())
    for t in types:
        print(
            f"    {t:<30} {score[cell_types == t].mean():+6.2f}  ({np.sum(cell_types == t)} cells)"
        )
    start = time.perf_counter()
    updated = ggm.add_pathways(theta, x)  # Σ + x xᵀ: one more term, factorisations reused
    after = ggm.strong_edges(updated, THRESHOLD, genes=genes)
    top = ggm.top_changed_edges(theta, updated, k=20, genes=genes)
    t_update = time.perf_counter() - start
    print(ggm.summary_table(*(ggm.network_summary(P, THRESHOLD) for P in (theta, updated))))
    gained, lost = edge_set(after) - edge_set(before), edge_set(before) - edge_set(after)
    print(f"edges gained ({len(gained)}): " + ", ".join(f"{g}–{h}" for g, h in sorted(gained)))
    print(f"edges lost ({len(lost)}): " + (", ".join(f"{g}–{h}" for g, h in sorted(lost)) or "-"))
    print("largest changes of |ρ|:")
    for (g1, g2), old, new in list(zip(top.names(), top.before, top.after, strict=True))[:8]:
        print(f"  {g1:>9} – {g2:<9} {old:+.3f} → {new:+.3f}")
    pairs = [[g, h] for g in present for h in present]
    k = len(present)
    rho_pathway = [
        ggm.partial_correlation_entries(P, pairs, genes=genes).reshape(k, k)
        for P in (theta, updated)
    ]
    pathway_heatmaps(present, *rho_pathway, outdir / "pbmc_pathways_mhc2.png")
    edge_changes_figure(top, THRESHOLD, outdir / "pbmc_pathways_edges.png")
    print(f"Woodbury: Σ, Θ and the scan {t_woodbury:.2f} s; update and scans {t_update:.2f} s")

    # -- 3. the dense computation ----------------------------------------------------------------
    start = time.perf_counter()
    S = Z.T @ Z / n
    sigma_dense = a * mu * np.eye(p) + (1 - a) * S
    theta_dense = dense_precision(sigma_dense)
    updated_dense = dense_precision(sigma_dense + x @ x.T)
    rho_dense = [dense_partial_correlations(t) for t in (theta_dense, updated_dense)]
    t_dense = time.perf_counter() - start
    d2 = np.sum((S - mu * np.eye(p)) ** 2) / p
    b2 = sum(np.sum((np.outer(z, z) - S) ** 2) for z in Z) / (n**2 * p)
    a_dense = min(b2, d2) / d2
    # Tolerances: an inverse computed in floating point has a relative error of order
    # p·ε·κ (constant 1 here); the shrinkage intensity's sums lose the digits their
    # differences cancel (n + p terms, constant 4: two ratios of two estimates).
    tol_theta = p * EPS * kappa
    tol_a = 4 * (n + p) * EPS * lw["cancellation"]
    err_a = abs(a - a_dense) / a_dense
    errors, tol_rho = [], []
    for lazy, dense, rho in zip((theta, updated), (theta_dense, updated_dense), rho_dense):
        scale = np.abs(dense).max()
        errors.append(np.abs(lazy.toarray() - dense).max() / scale)
        d = np.diag(dense)
        # |δρ| ≤ (|δΘᵢⱼ| + |ρ|·max(|δΘᵢᵢ|, |δΘⱼⱼ|)) / min Θᵢᵢ ≤ 2 tol ‖Θ‖_max / min Θᵢᵢ
        tol_rho.append(2 * tol_theta * scale / d.min())
    err_rho = [
        np.abs(ggm.partial_correlations(P) - rho).max()
        for P, rho in zip((theta, updated), rho_dense, strict=True)
    ]
    print(f"\nverification against the dense computation ({t_dense:.2f} s, O(p³)):")
    print(f"  shrinkage intensity a: relative difference {err_a:.1e} (tolerance {tol_a:.1e})")
    for name, err, rerr, rtol in zip(("Θ", "Θ + update"), errors, err_rho, tol_rho):
        print(
            f"  {name:<11} max|Δ|/max|Θ| {err:.1e} (tolerance p·ε·κ = {tol_theta:.1e}); "
            f"max|Δρ| {rerr:.1e} (tolerance {rtol:.1e})"
        )
    assert err_a <= tol_a, (err_a, tol_a)
    for err, rerr, rtol in zip(errors, err_rho, tol_rho, strict=True):
        assert err <= tol_theta and rerr <= rtol, (err, rerr, tol_theta, rtol)
    # the strong edges agree, except pairs within the tolerance of the threshold
    for edges, rho, rtol in zip((before, after), rho_dense, tol_rho, strict=True):
        upper = np.triu(np.abs(rho), k=1)
        dense_edges = {(genes[i], genes[j]) for i, j in zip(*np.nonzero(upper > THRESHOLD))}
        near = {
            (genes[i], genes[j]) for i, j in zip(*np.nonzero(np.abs(upper - THRESHOLD) <= rtol))
        }
        assert not (edge_set(edges) ^ dense_edges) - near
    print(f"  strong edges before and after: the same {len(before)} and {len(after)} pairs")
    return dict(
        n_cells=n,
        n_genes=p,
        a=a,
        a_dense=a_dense,
        kappa=kappa,
        pathway=present,
        n_edges_before=len(before),
        n_edges_after=len(after),
        gained=sorted(gained),
        lost=sorted(lost),
        top_changes=top.names(),
        precision_error=max(errors),
        precision_tolerance=tol_theta,
        rho_error=max(err_rho),
        rho_tolerance=min(tol_rho),
    )


if __name__ == "__main__":
    from _cli import run_example

    run_example(main, __doc__)
