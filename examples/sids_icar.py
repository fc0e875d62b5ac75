"""Real areal data: an intrinsic CAR smoothing of SIDS rates in North Carolina's 100 counties.

Sudden infant death syndrome in North Carolina, 1974–78 (Cressie 1993, pp. 386–389): for each
of the 100 counties the number of deaths ``S_i`` and of live births ``n_i``, the county
polygons and their adjacency — the ``sids2`` data set that libpysal ships inside its wheel
(``sids2.dbf``, ``sids2.shp``, ``sids2.gal``; nothing is downloaded). As Cressie and Read
(1989), the counts are put on the Freeman–Tukey scale,

    y_i = √1000 (√(S_i / n_i) + √((S_i + 1) / n_i)),   Var(y_i) ≈ 1000 / n_i,

which is about twice the square root of the rate per 1000 births, and modelled as Gaussian:

    y = μ 1 + z + e,   e ~ N(0, A⁻¹),   A = diag(1 / (1000 / n_i + σ_v²)),

with ``z`` an intrinsic CAR (ICAR) spatial effect, density ∝ exp(−τ zᵀ Q z / 2),
``Q = D − Adj`` the graph Laplacian of the county adjacency, and ``1ᵀ z = 0`` per connected
component (the level belongs to ``μ``; North Carolina's map is connected, and on a map with
islands each component gets a level of its own, ``μ 1`` becoming ``F μ`` with ``F`` the
components' indicators, which the code does). The noise is heteroscedastic: the known sampling
variance ``1000 / n_i`` of each county plus an unstructured county effect of variance ``σ_v²``
(the Gaussian form of the BYM model, its iid effect integrated out).

*Hyperparameters* ``(τ, σ_v)`` maximise the restricted (REML) likelihood, the marginal
likelihood with a flat prior on ``μ``. ``Q`` is singular, so ``Q⁻¹`` does not exist, but the
likelihood of the contrasts of ``y`` does not change when one county per component is
pinned (``Q + e_k e_kᵀ``, positive definite): it is evaluated exactly on the proper Woodbury
covariance ``A⁻¹ + (τ (Q + e_k e_kᵀ))⁻¹`` — with ``dwnorm`` and the generalised least squares
``μ̂`` on a grid for the figure, then maximised over ``(τ, σ_v²)`` from the grid's best point
by ``woodbury_sparse.fitting.fit`` with ``fixed=F`` (the levels integrated out: REML), exact
gradients and the average-information method, ``σ_v² ≥ 0`` held at its bound when the
maximum is there.

*Posterior* of ``(μ, z)`` given ``y`` (INLA's formulation): a vague prior ``μ ~ N(0, s²)``
makes the posterior precision ``O = blockdiag(s⁻², τ Q) + Xᵀ A X``, ``X = [1 I]``, positive
definite although the prior of ``z`` is not. ``ws.latent_posterior`` of the Woodbury model
``(A, blockdiag(s⁻², τ Q), X)`` factorises only ``O`` and returns ``N(O⁻¹ Xᵀ A y, O⁻¹)`` as a
``PrecisionNormal``; its ``condition`` imposes ``1ᵀ z = 0`` (kriging correction of means,
variances and draws). Both steps are checked against the dense computation
(``numpy.linalg.pinv(Q)``, ``O`` formed and inverted densely).

Needs libpysal (and the geopandas it depends on; the ``examples`` extra); without them the
example says so and stops. Run with ``python examples/sids_icar.py`` (``--quick``: a coarse
grid and fewer draws). Figures go to ``examples/output/``.
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.collections import PolyCollection
from scipy import sparse, special

import woodbury_sparse as ws
from woodbury_sparse.fitting import fit
from woodbury_sparse.testing import icar_precision

OUTPUT = Path(__file__).resolve().parent / "output"
LOG_2PI = float(np.log(2 * np.pi))
# s, the prior sd of the level μ in Freeman–Tukey units (y ≈ 1–6, μ's posterior sd 0.07): vague,
# within 3e-4 of a flat prior, but no vaguer: κ(O) grows like s² (3e6 here, 3e8 for s = 100,
# where the library warns that O is ill-conditioned).
PRIOR_SD_MU = 10.0


def load_sids():
    """Counties (a GeoDataFrame in the shapefile's order) and their adjacency; None without
    libpysal.

    The files are libpysal's built-in ``sids2`` example, read from the installed wheel: the
    attributes and polygons with geopandas (which libpysal requires), the adjacency from the
    GAL file with libpysal's reader, matched to the polygons by FIPS code.
    """
    try:
        import geopandas
        from libpysal import examples, io
    except ImportError:
        return None
    data = examples.load_example("sids2")  # a LocalExample: files inside the package
    counties = geopandas.read_file(data.get_path("sids2.shp"))
    gal = io.open(data.get_path("sids2.gal"))
    try:
        weights = gal.read()
    finally:
        gal.close()
    position = {fips: i for i, fips in enumerate(counties["FIPS"])}
    rows, cols = [], []
    for county, neighbours in weights.neighbors.items():
        rows += [position[county]] * len(neighbours)
        cols += [position[other] for other in neighbours]
    n = len(counties)
    adjacency = sparse.csr_array((np.ones(len(rows)), (rows, cols)), shape=(n, n))
    return counties, adjacency


def freeman_tukey(deaths: np.ndarray, births: np.ndarray) -> np.ndarray:
    """``√1000 (√(S/n) + √((S+1)/n))``: variance about ``1000 / n`` for Poisson counts."""
    return np.sqrt(1000.0) * (np.sqrt(deaths / births) + np.sqrt((deaths + 1.0) / births))


def noise_precision(births: np.ndarray, sigma_v: float) -> sparse.dia_array:
    """``A = diag(1 / (1000 / n_i + σ_v²))``: sampling variance plus the unstructured effect."""
    return sparse.diags_array(1.0 / (1000.0 / births + sigma_v**2))


def pinned(Q: sparse.csc_array, pins: np.ndarray) -> sparse.csc_array:
    """``Q + Σ_k e_k e_kᵀ``: positive definite, with the ICAR's contrasts."""
    n = Q.shape[0]
    return sparse.csc_array(Q + sparse.csc_array((np.ones(pins.size), (pins, pins)), shape=(n, n)))


def pinned_covariance(
    Q: sparse.csc_array, pins: np.ndarray, births: np.ndarray, tau: float, sigma_v: float
) -> ws.SymmetricWoodburyMatrix:
    """``A⁻¹ + (τ (Q + Σ_k e_k e_kᵀ))⁻¹``: a proper covariance with the ICAR's contrasts."""
    return ws.WoodburyMatrix(noise_precision(births, sigma_v), tau * pinned(Q, pins))


def reml_model(Q: sparse.csc_array, pins: np.ndarray, births: np.ndarray):
    """``θ = (τ, σ_v²) → (A, B, ∂A, ∂B)`` of the pinned covariance, for ``fit``.

    ``A = diag(1 / (1000/n_i + σ_v²))``, ``B = τ (Q + Σ e_k e_kᵀ)``; the variance ``σ_v²``
    (not ``σ_v``, whose derivative vanishes at 0) so that a maximum on the boundary
    ``σ_v² = 0`` shows as a gradient pointing out of the domain.
    """
    prior = pinned(Q, pins)

    def model(theta):
        tau, variance = theta
        total = 1000.0 / births + variance
        return sparse.diags_array(1.0 / total), tau * prior, [None, -1.0 / total**2], [prior, None]

    return model


def restricted_loglik(y: np.ndarray, W: ws.SymmetricWoodburyMatrix, F: np.ndarray) -> float:
    """REML log likelihood of ``y ~ N(F β, W)`` with a flat prior on the levels ``β``.

    ``log N(y − F β̂; 0, W) + (c/2) log 2π − ½ log det(Fᵀ W⁻¹ F)``, ``β̂`` the generalised least
    squares estimate; ``F`` is ``n×c``, one column per level.
    """
    w_levels = W.solve(F)
    gram = F.T @ w_levels
    beta = np.linalg.solve(gram, w_levels.T @ y)
    value = ws.dwnorm(y - F @ beta, 0.0, W, log=True)
    return float(value + 0.5 * F.shape[1] * LOG_2PI - 0.5 * np.linalg.slogdet(gram)[1])


def dense_restricted_loglik(
    y: np.ndarray,
    F: np.ndarray,
    Q: sparse.csc_array,
    births: np.ndarray,
    tau: float,
    sigma_v: float,
) -> float:
    """The same with ``V = A⁻¹ + Q⁺ / τ`` formed densely (the reference)."""
    n, c = F.shape
    V = np.diag(1000.0 / births + sigma_v**2) + np.linalg.pinv(Q.toarray()) / tau
    chol = np.linalg.cholesky(V)
    w_levels = np.linalg.solve(V, F)
    gram = F.T @ w_levels
    r = y - F @ np.linalg.solve(gram, w_levels.T @ y)
    white = np.linalg.solve(chol, r)
    return float(
        -0.5 * ((n - c) * LOG_2PI + 2 * np.sum(np.log(np.diag(chol))) + white @ white)
        - 0.5 * np.linalg.slogdet(gram)[1]
    )


def posterior_model(
    F: np.ndarray, Q: sparse.csc_array, births: np.ndarray, tau: float, sigma_v: float
) -> ws.SymmetricWoodburyMatrix:
    """``y = e + X (μ, z)``, ``X = [F I]``, prior precision ``B = blockdiag(s⁻² I, τ Q)``.

    ``B`` is singular (the ICAR is intrinsic), so this ``W`` is no covariance of ``y``, but the
    posterior needs only ``O = B + Xᵀ A X``, which is positive definite: ``latent_posterior``
    factorises ``O`` and never ``B``.
    """
    n, c = F.shape
    X = sparse.hstack([F, sparse.eye_array(n)], format="csc")
    prior = sparse.block_diag([sparse.eye_array(c) / PRIOR_SD_MU**2, tau * Q], format="csc")
    return ws.WoodburyMatrix(noise_precision(births, sigma_v), prior, X=X, symmetric=True)


def county_outlines(counties) -> tuple[list[np.ndarray], np.ndarray]:
    """The polygons' outer rings as ``(k, 2)`` arrays and, for each ring, its county's row."""
    rings, owner = [], []
    for row, shape in enumerate(counties.geometry):
        for polygon in getattr(shape, "geoms", [shape]):  # a MultiPolygon's parts, or itself
            rings.append(np.asarray(polygon.exterior.coords))
            owner.append(row)
    return rings, np.array(owner)


def draw_map(ax, outlines, values, title, label, cmap, vmin=None, vmax=None):
    """One choropleth of the counties (longitude/latitude drawn with the aspect of 35.5° N)."""
    rings, owner = outlines
    patches = PolyCollection(
        rings, array=np.asarray(values)[owner], cmap=cmap, edgecolor="0.35", linewidth=0.3
    )
    patches.set_clim(vmin, vmax)
    ax.add_collection(patches)
    ax.autoscale_view()
    ax.set_aspect(1.0 / np.cos(np.deg2rad(35.5)))
    ax.set_title(title, fontsize=10)
    ax.set_axis_off()  # longitude and latitude say nothing here; the shapes are the key
    ax.figure.colorbar(patches, ax=ax, orientation="horizontal", shrink=0.7, pad=0.02, label=label)


def main(quick: bool = False, outdir: Path = OUTPUT) -> dict[str, float]:
    outdir = Path(outdir)
    loaded = load_sids()
    if loaded is None:
        print(
            "libpysal is not installed, so the North Carolina SIDS data are not available: "
            "skipping this example (pip install libpysal, or the package's `examples` extra)"
        )
        return {}
    outdir.mkdir(parents=True, exist_ok=True)
    counties, adjacency = loaded
    deaths = counties["SID74"].to_numpy(dtype=float)
    births = counties["BIR74"].to_numpy(dtype=float)
    y = freeman_tukey(deaths, births)
    n = y.size
    Q = icar_precision(adjacency)
    # one level μ_c per connected component of the map (NC's is connected: c = 1); the
    # ICAR's null space is spanned by the same indicators, the columns of F
    sum_zero = ws.sum_to_zero(adjacency)  # c × n: 1ᵀ z = 0 on each component
    F = sum_zero.T.toarray()
    n_components = F.shape[1]
    component = np.argmax(F, axis=1)
    pins = np.argmax(F, axis=0)  # the first county of each component
    print(
        f"North Carolina SIDS 1974–78 (libpysal's sids2): {n} counties, "
        f"{int(deaths.sum())} deaths in {int(births.sum())} births, "
        f"{adjacency.nnz // 2} adjacent pairs, {n_components} connected component(s); "
        f"Freeman–Tukey rates {y.min():.2f}–{y.max():.2f}"
    )

    # -- REML over (τ, σ_v): a grid for the figure, then fit from its best point -------------
    log_tau_grid = np.linspace(-1.0, 3.0, 9 if quick else 41)
    sigma_grid = np.linspace(0.0, 1.0, 6 if quick else 41)
    start = time.perf_counter()
    surface = np.array(
        [
            [
                restricted_loglik(y, pinned_covariance(Q, pins, births, 10**lt, sv), F)
                for sv in sigma_grid
            ]
            for lt in log_tau_grid
        ]
    )
    grid_time = time.perf_counter() - start
    i, j = np.unravel_index(np.argmax(surface), surface.shape)
    result = fit(
        reml_model(Q, pins, births),
        [10 ** log_tau_grid[i], sigma_grid[j] ** 2],
        y,
        fixed=F,  # the levels μ integrated out under a flat prior: the restricted likelihood
        transforms=["positive", None],
        bounds=[(None, None), (0.0, None)],
        names=["τ", "σ_v²"],
        method="average-information",
        standard_errors=False,  # σ_v² may sit on its bound, where they mean little
    )
    tau, sigma_v = float(result.theta[0]), float(np.sqrt(result.theta[1]))
    degree = Q.diagonal()
    reml = result.loglik
    print(
        f"  REML on a {log_tau_grid.size}×{sigma_grid.size} grid in {grid_time:.2f} s "
        f"({grid_time / surface.size * 1e3:.1f} ms per dwnorm), maximised by fit (exact "
        f"gradients, average information: {result.nfev} evaluations, {result.seconds:.2f} s, "
        f"σ_v² {'on its bound 0' if result.theta[1] == 0.0 else 'inside its domain'}): "
        f"τ = {tau:.3f} (conditional sd of z given its neighbours, 1/√(τ d_i): "
        f"{1 / np.sqrt(tau * degree.max()):.3f}–{1 / np.sqrt(tau * degree.min()):.3f}), "
        f"σ_v = {sigma_v:.3f}; restricted log likelihood {reml:.3f}"
    )
    # the pinned county is arbitrary: the likelihood of the contrasts does not see it
    other = n - 1 - np.argmax(F[::-1], axis=0)  # the last county of each component
    reml_other = restricted_loglik(y, pinned_covariance(Q, other, births, tau, sigma_v), F)
    reml_dense = dense_restricted_loglik(y, F, Q, births, tau, sigma_v)
    reml_error = max(abs(reml - reml_dense), abs(reml_other - reml_dense)) / abs(reml_dense)
    print(
        f"    dense check (V = A⁻¹ + Q⁺/τ with numpy.linalg.pinv): {reml_dense:.6f}; "
        f"relative difference {reml_error:.1e} (pinned county {pins[0]} or {other[0]})"
    )

    # -- posterior of (μ, z) with 1ᵀ z = 0 per component ------------------------------------
    start = time.perf_counter()
    joint = ws.latent_posterior(posterior_model(F, Q, births, tau, sigma_v), y).latent
    # 1ᵀ z = 0 on each connected component; the levels μ (the first c variables) are free
    C = sparse.hstack([sparse.csr_array((n_components, n_components)), sum_zero], format="csr")
    constrained = joint.condition(C, np.zeros(n_components))
    post_mean, post_sd = np.asarray(constrained.mean), np.asarray(constrained.std())
    n_draws = 200 if quick else 4000
    draws = constrained.rvs(size=n_draws, random_state=np.random.default_rng(13))
    post_time = time.perf_counter() - start
    c = n_components
    mu_mean, z_mean, z_sd = post_mean[:c], post_mean[c:], post_sd[c:]
    smoothed = mu_mean[component] + z_mean  # μ_c(i) + z_i
    # Var(μ_c + z_i) = Var μ_c + Var z_i + 2 Cov(μ_c, z_i), the last on O's pattern (μ_c
    # meets every county of its component)
    cross = constrained.cov_entries(component, np.arange(c, c + n))
    smoothed_sd = np.sqrt(post_sd[component] ** 2 + z_sd**2 + 2 * cross)
    exceed = special.ndtr(z_mean / z_sd)  # P(z_i > 0 | y): above the state's level
    constraint_residual = float(np.max(np.abs(sum_zero @ draws[:, c:].T)))
    print(
        f"  posterior of (μ, z) | y, 1ᵀ z = 0, in {post_time * 1e3:.0f} ms "
        f"({n_draws} draws): μ = "
        + ", ".join(f"{mu_mean[k]:.3f} ± {post_sd[k]:.3f}" for k in range(c))
        + f" (≈ {mu_mean[0] ** 2 / 4:.2f} deaths per 1000 births); sd of z "
        f"{z_sd.min():.3f}–{z_sd.max():.3f}; |1ᵀ z| of the draws ≤ {constraint_residual:.1e}"
    )
    moment_error = float(np.max(np.abs(draws.mean(axis=0) - post_mean) / post_sd))
    smoothed_draws = draws[:, :c] @ F.T + draws[:, c:]
    draw_sd_ratio = smoothed_draws.std(axis=0) / smoothed_sd
    print(
        f"    draws: largest |sample mean − mean| = {moment_error:.3f} sd "
        f"(expected about {3 / np.sqrt(n_draws):.3f} for {n_draws} draws); sample sd of "
        f"μ + z_i / its sd from cov_entries: {draw_sd_ratio.min():.3f}–{draw_sd_ratio.max():.3f}"
    )
    names = counties["NAME"].to_numpy()
    high, low = np.flatnonzero(exceed > 0.95), np.flatnonzero(exceed < 0.05)
    named = ", ".join(names[high[np.argsort(-exceed[high])]][:6]) + (", …" if high.size > 6 else "")
    print(f"    P(z_i > 0 | y) > 0.95 in {high.size} counties ({named}); < 0.05 in {low.size}")

    # -- dense check: Σ = O⁻¹, then the kriging correction Σ − Σ Cᵀ (C Σ Cᵀ)⁻¹ C Σ ----------
    A = noise_precision(births, sigma_v).toarray()
    Xd = np.hstack([F, np.eye(n)])
    Bd = np.zeros((n + c, n + c))
    Bd[:c, :c], Bd[c:, c:] = np.eye(c) / PRIOR_SD_MU**2, tau * Q.toarray()
    omega = Bd + Xd.T @ A @ Xd  # O, formed densely from the model
    Sigma = np.linalg.inv(omega)
    m = Sigma @ (Xd.T @ (A @ y))
    eigenvalues = np.linalg.eigvalsh(omega)
    condition_number = float(eigenvalues[-1] / eigenvalues[0])
    Cd = C.toarray()
    gain = Sigma @ Cd.T @ np.linalg.inv(Cd @ Sigma @ Cd.T)
    dense_mean = m - gain @ (Cd @ m)
    dense_sd = np.sqrt(np.diag(Sigma - gain @ Cd @ Sigma))
    mean_error = float(np.max(np.abs(post_mean - dense_mean)) / np.max(np.abs(dense_mean)))
    sd_error = float(np.max(np.abs(post_sd - dense_sd) / dense_sd))
    dense_smoothed_sd = np.sqrt(np.diag(Xd @ (Sigma - gain @ Cd @ Sigma) @ Xd.T))  # μ + z
    sd_error = max(
        sd_error, float(np.max(np.abs(smoothed_sd - dense_smoothed_sd) / dense_smoothed_sd))
    )
    # and the limit of a flat prior on μ: x = F μ + z has precision τ Q + A (F spans Q's null
    # space) and z = P x, P = I − F (Fᵀ F)⁻¹ Fᵀ removing each component's mean
    flat_cov = np.linalg.inv(tau * Q.toarray() + A)
    P = np.eye(n) - F @ np.linalg.solve(F.T @ F, F.T)
    flat_z = P @ (flat_cov @ (A @ y))
    flat_sd = np.sqrt(np.diag(P @ flat_cov @ P))
    vague_error = float(max(np.max(np.abs(flat_z - z_mean)), np.max(np.abs(flat_sd - z_sd))))
    print(
        f"    dense check: mean {mean_error:.1e}, sd {sd_error:.1e} (relative; κ(O) = "
        f"{condition_number:.1e}); the vague "
        f"prior s = {PRIOR_SD_MU:g} differs from a flat one by {vague_error:.1e}"
    )

    # -- figures ----------------------------------------------------------------------------
    fig, axes = plt.subplots(2, 2, figsize=(12, 7.4), layout="constrained")
    limits = {"vmin": min(y.min(), smoothed.min()), "vmax": max(y.max(), smoothed.max())}
    outlines = county_outlines(counties)
    draw_map(
        axes[0, 0],
        outlines,
        y,
        "observed: Freeman–Tukey transformed SIDS rate, 1974–78",
        "√1000 (√(S/n) + √((S+1)/n))   (≈ 2 √(deaths per 1000 births))",
        cmap="viridis",
        **limits,
    )
    draw_map(
        axes[0, 1],
        outlines,
        smoothed,
        "posterior mean of the smoothed rate μ + z_i",
        "Freeman–Tukey scale (same colours as the observed map)",
        cmap="viridis",
        **limits,
    )
    draw_map(
        axes[1, 0],
        outlines,
        z_sd,
        "posterior standard deviation of the spatial effect z_i (1ᵀz = 0)",
        "Freeman–Tukey scale",
        cmap="magma_r",
    )
    draw_map(
        axes[1, 1],
        outlines,
        exceed,
        "posterior probability P(z_i > 0 | y): rate above the state's level",
        "probability",
        cmap="RdBu_r",
        vmin=0.0,
        vmax=1.0,
    )
    fig.suptitle(
        f"ICAR smoothing of North Carolina SIDS rates (REML: τ = {tau:.2f}, σ_v = {sigma_v:.2f})",
        fontsize=11,
    )
    fig.savefig(outdir / "sids_icar_maps.png", dpi=110)
    plt.close(fig)

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    relative = np.maximum(surface - surface.max(), -10.0)
    contour = ax1.contourf(sigma_grid, log_tau_grid, relative, levels=np.linspace(-10, 0, 11))
    fig.colorbar(contour, ax=ax1, label="restricted log likelihood − its maximum")
    ax1.plot(
        sigma_v, np.log10(tau), "r*", ms=12, label=f"maximum: τ = {tau:.2f}, σ_v = {sigma_v:.2f}"
    )
    ax1.set(
        xlabel="σ_v, sd of the unstructured county effect (Freeman–Tukey units)",
        ylabel="log₁₀ τ (ICAR precision)",
        title="REML surface (dwnorm on the pinned Woodbury covariance)",
    )
    ax1.legend(fontsize=8, loc="upper right")
    lo, hi = smoothed - 1.959963984540054 * smoothed_sd, smoothed + 1.959963984540054 * smoothed_sd
    ax2.errorbar(
        y,
        smoothed,
        yerr=np.vstack([smoothed - lo, hi - smoothed]),
        fmt="none",
        ecolor="0.7",
        lw=0.8,
        zorder=1,
        label="95 % credible interval",
    )
    points = ax2.scatter(
        y, smoothed, s=8 + births / 300, c=np.log10(births), cmap="cividis", zorder=2
    )
    fig.colorbar(points, ax=ax2, label="log₁₀ births 1974–78")
    span = [min(y.min(), lo.min()), max(y.max(), hi.max())]
    ax2.plot(span, span, "k:", lw=0.8, label="no smoothing (y = x)")
    ax2.axhline(
        mu_mean[0], color="C3", lw=0.8, ls="--", label=f"posterior mean of μ = {mu_mean[0]:.2f}"
    )
    ax2.set(
        xlabel="observed Freeman–Tukey rate y_i",
        ylabel="posterior mean of the smoothed rate μ + z_i",
        title="shrinkage: small counties move most (marker area ∝ births)",
    )
    ax2.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(outdir / "sids_icar_fit.png", dpi=110)
    plt.close(fig)

    return {
        "n_counties": n,
        "tau": tau,
        "sigma_v": sigma_v,
        "reml": reml,
        "reml_error": float(reml_error),
        "grid_best": float(surface.max()),
        "fit_evaluations": result.nfev,
        "fit_success": result.success,
        "reml_gradient": [float(g) for g in result.gradient],
        "sigma_v2": float(result.theta[1]),
        "mean_error": mean_error,
        "sd_error": sd_error,
        "vague_error": vague_error,
        "constraint_residual": constraint_residual,
        "unconstrained_sd": float(np.max(joint.std())),  # the scale of the draws corrected
        "condition_number": condition_number,
        "moment_error": moment_error,
        "draw_sd_ratio": (float(draw_sd_ratio.min()), float(draw_sd_ratio.max())),
        "n_draws": n_draws,
    }


if __name__ == "__main__":
    from _cli import run_example

    run_example(main, __doc__)
