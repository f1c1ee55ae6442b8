"""Synthetic two-domain keratoconus cohorts: patients, corneas, device simulation, dataset folder.

Each patient has two eyes that are mirror images (enantiomorphism) with small differences.
Labels are drawn per eye in a referral-clinic mix (default 55 % normal, 15 % suspect, 30 %
keratoconus; population prevalence is far lower) through patient types that keep the
disease bilateral and asymmetric: keratoconus in both eyes, keratoconus with a suspect
fellow eye, suspect + suspect, suspect + normal, normal + normal.

Corneas (:class:`~ophthalmo.keratoconus.topography.CorneaModel`): mean K ~ N(43.5, 1.4) D,
Q ~ N(−0.25, 0.12), regular astigmatism mostly with-the-rule, small Zernike irregularity
(trefoil, coma — vertical coma gives normal eyes a small natural I-S), plus for diseased eyes
a Gaussian protrusion decentred inferior-temporally whose peak steepening
``ΔK = 337.5 · A / σ²`` is drawn in 1–3 D (suspect, forme fruste) or log-uniformly in
2.5–20 D (keratoconus, mild to advanced).

Device domains (docs/keratoconus.md §3):

- ``topographer``: dense sampling (maps by finite differences of the elevation grid), valid
  zone of 8.6–10 mm diameter, an occasional upper-lid cut at the rim, 0.1 D correlated map
  noise; rendered in the ``topographer`` heatmap style.
- ``smartkc``: 18–22 Placido rings (outermost 3.3–4.2 mm) sampled every 2° on a mis-centred
  (≈ 0.12 mm) device axis, 0.5 µm elevation noise, a degree-8 Zernike fit as SmartKC does,
  an irregular valid zone with an upper eyelid (and sometimes lower), lash shadows, radial
  streak artefacts from ring mis-localisation, ring (annulus) artefacts and 0.2 D correlated
  map noise; rendered in the ``smartkc`` heatmap style.

Output folder (docs/keratoconus.md §3): ``labels.csv`` (``case_id, patient_id, eye, label,
domain, axial, tangential, raw``), ``axial/*.png``, ``tangential/*.png``, ``raw/*.npz``, plus
``generation.csv`` (the ground-truth parameters and the rule-based indices of each case) and
``config.json``.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter
from threadpoolctl import threadpool_limits

from ophthalmo.keratoconus.topography import (
    Cone,
    CorneaModel,
    curvature_maps,
    grid_xy,
    maps_from_zernike,
)
from ophthalmo.keratoconus.zernike import fit_zernike

__all__ = [
    "DOMAINS",
    "LABELS",
    "LABELS_COLUMNS",
    "CohortSpec",
    "draw_patient",
    "generate_cohort",
    "simulate_device",
]

DOMAINS = ("topographer", "smartkc")
LABELS = ("normal", "suspect", "keratoconus")
LABELS_COLUMNS = ("case_id", "patient_id", "eye", "label", "domain", "axial", "tangential", "raw")
_DOMAIN_PREFIX = {"topographer": "topo", "smartkc": "skc"}


@dataclass(frozen=True)
class CohortSpec:
    """Options of :func:`generate_cohort` (written to ``config.json``).

    Parameters
    ----------
    domain : {"topographer", "smartkc"}
    n_eyes : int
        Number of cases; patients have two eyes (an odd count leaves the last patient with
        one).
    image_size : int
        PNG heatmap size (pixels).
    grid_size, mm_per_px : int, float
        Raw-map grid (odd, vertex on the centre pixel); default 129 px × 0.08 mm = 10.3 mm.
    label_proportions : tuple of 3 floats
        Target eye-level share of normal, suspect, keratoconus.
    """

    domain: str = "topographer"
    n_eyes: int = 400
    image_size: int = 256
    grid_size: int = 129
    mm_per_px: float = 0.08
    label_proportions: tuple[float, float, float] = (0.55, 0.15, 0.30)

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"domain must be one of {', '.join(DOMAINS)}, got {self.domain!r}")
        if not isinstance(self.n_eyes, int | np.integer) or self.n_eyes < 1:
            raise ValueError(f"n_eyes must be a positive integer, got {self.n_eyes!r}")
        if not isinstance(self.image_size, int | np.integer) or not 32 <= self.image_size <= 2048:
            raise ValueError(f"image_size must be an integer in 32..2048, got {self.image_size!r}")
        if not isinstance(self.grid_size, int | np.integer) or self.grid_size < 65:
            raise ValueError(f"grid_size must be an integer >= 65, got {self.grid_size!r}")
        if self.grid_size * self.mm_per_px < 9.0:
            raise ValueError(
                f"the grid spans {self.grid_size * self.mm_per_px:.1f} mm; at least 9 mm needed"
            )
        p = np.asarray(self.label_proportions, dtype=float)
        if p.shape != (3,) or not np.all(np.isfinite(p)) or (p < 0).any() or p.sum() <= 0:
            raise ValueError(
                "label_proportions must be 3 non-negative numbers (normal, suspect, "
                f"keratoconus), got {self.label_proportions!r}"
            )
        object.__setattr__(self, "label_proportions", tuple(float(v) for v in p / p.sum()))


# ----------------------------------------------------------------------------- patients


def _patient_type_probabilities(p: tuple[float, float, float]) -> dict[tuple[str, str], float]:
    """Patient types whose eye-level label mix matches ``p`` (normal, suspect, keratoconus)."""
    pn, ps, pk = p
    # Patient shares: kk, ks, ss, sn, nn. 60 % of keratoconic eyes belong to bilateral cases,
    # 40 % have a suspect fellow eye; the other suspect eyes are half bilateral.
    kk, ks = 0.6 * pk, 0.8 * pk
    if ks / 2 > ps:  # not enough suspect eyes requested: make those patients bilateral
        kk, ks = pk - ps, 2 * ps
    rest = ps - ks / 2
    ss, sn = rest / 2, rest
    nn = max(pn - sn / 2, 0.0)
    types = {
        ("keratoconus", "keratoconus"): kk,
        ("keratoconus", "suspect"): ks,
        ("suspect", "suspect"): ss,
        ("suspect", "normal"): sn,
        ("normal", "normal"): nn,
    }
    total = sum(types.values())
    return {k: v / total for k, v in types.items() if v > 0}


def _cone(label: str, rng: np.random.Generator) -> Cone | None:
    if label == "normal":
        return None
    if label == "suspect":
        delta_k = rng.uniform(1.0, 3.0)
        sigma = rng.uniform(1.2, 1.8)
        inferior, temporal = rng.uniform(0.8, 1.8), rng.uniform(0.0, 1.0)
    else:
        delta_k = float(np.exp(rng.uniform(np.log(2.5), np.log(20.0))))
        sigma = rng.uniform(0.9, 1.6)
        inferior, temporal = rng.uniform(0.3, 1.8), rng.uniform(0.0, 1.2)
    return Cone(
        amplitude_mm=delta_k * sigma**2 / 337.5,
        sigma_mm=sigma,
        inferior_mm=inferior,
        temporal_mm=temporal,
    )


def _irregularity(rng: np.random.Generator) -> np.ndarray:
    """Small Zernike irregularity (mm) on a 5 mm radius: trefoil, coma, 4th order."""
    coefs = np.zeros(15)
    coefs[6:10] = rng.normal(0.0, 0.6e-3, 4)  # trefoil and coma
    coefs[7] = rng.normal(0.0, 1.2e-3)  # vertical coma: natural inferior-superior asymmetry
    coefs[10:15] = rng.normal(0.0, 0.3e-3, 5)
    coefs[12] = 0.0  # spherical aberration is carried by the asphericity Q
    return coefs


def draw_patient(
    labels: tuple[str, str], rng: np.random.Generator
) -> list[tuple[CorneaModel, str]]:
    """Two mirror-symmetric corneas (OD, OS) with the given labels, and their labels."""
    k_mean = rng.normal(43.5, 1.4)
    cyl = abs(rng.normal(0.0, 0.7)) + 0.1
    kind = rng.choice(3, p=[0.6, 0.25, 0.15])
    axis = {0: rng.normal(90, 12), 1: rng.normal(0, 12), 2: rng.uniform(0, 180)}[int(kind)]
    q = rng.normal(-0.25, 0.12)
    irregular = _irregularity(rng)
    out = []
    for eye, label in zip(("OD", "OS"), labels, strict=True):
        k = k_mean + rng.normal(0, 0.25) + (rng.uniform(0.0, 2.0) if label == "keratoconus" else 0)
        c = max(cyl + rng.normal(0, 0.15), 0.0)
        r_flat, r_steep = 337.5 / (k - c / 2), 337.5 / (k + c / 2)
        ax = axis + rng.normal(0, 4)
        coefs = irregular + rng.normal(0.0, 0.15e-3, irregular.size)
        model = CorneaModel(
            eye="OD",
            r_flat_mm=r_flat,
            r_steep_mm=r_steep,
            steep_axis_deg=float(ax % 180.0),
            asphericity=float(q + rng.normal(0, 0.03)),
            zernike_mm=tuple(coefs),
            cone=_cone(label, rng),
        )
        # Built as a right eye, then mirrored for the left: laterality handled in one place.
        out.append((model if eye == "OD" else model.mirrored(), label))
    return out


# ------------------------------------------------------------------------------ devices


def _smooth_noise(shape: tuple[int, int], sd: float, sigma_px: float, rng) -> np.ndarray:
    field = gaussian_filter(rng.standard_normal(shape), sigma_px, mode="wrap")
    field /= max(float(field.std()), 1e-12)
    return (sd * field).astype(np.float32)


def _lid_mask(x, y, rng, *, upper_range, lower_prob, lashes) -> np.ndarray:
    """True where the lids or lashes hide the cornea (superior is +y)."""
    upper = rng.uniform(*upper_range) + rng.uniform(0.03, 0.1) * x**2
    hidden = y > upper
    if rng.random() < lower_prob:
        hidden |= y < -(rng.uniform(3.3, 4.3) + 0.05 * x**2)
    theta = np.degrees(np.arctan2(y, x))
    s = np.hypot(x, y)
    for _ in range(lashes):
        centre, width = rng.uniform(50, 130), rng.uniform(2.0, 7.0)
        start = rng.uniform(1.8, 3.2)
        hidden |= (np.abs(theta - centre) < width / 2) & (s > start)
    return hidden


def simulate_device(
    model: CorneaModel,
    domain: str,
    *,
    grid_size: int = 129,
    mm_per_px: float = 0.08,
    random_state=None,
) -> tuple[np.ndarray, np.ndarray]:
    """Axial and tangential maps (D, float32, NaN outside the valid zone) as a device sees them.

    See the module docstring for what each domain simulates.
    """
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {', '.join(DOMAINS)}, got {domain!r}")
    rng = np.random.default_rng(random_state)
    x, y = grid_xy(grid_size, mm_per_px)
    s = np.hypot(x, y)
    if domain == "topographer":
        z = model.elevation_grid(grid_size, mm_per_px)
        axial, tangential = curvature_maps(z, mm_per_px=mm_per_px)
        radius = rng.uniform(4.3, 5.0)
        hidden = _lid_mask(x, y, rng, upper_range=(3.9, 5.5), lower_prob=0.05, lashes=0)
        valid = (s <= radius) & ~hidden
        noise_sd, white_sd = 0.1, 0.03
    else:
        n_rings = int(rng.integers(18, 23))
        r_max = rng.uniform(3.3, 4.2)
        radii = np.linspace(0.35, r_max, n_rings) + rng.normal(0, 0.01, n_rings)
        # SmartKC localises rings on one ray per degree; every second ray is plenty for 45
        # Zernike terms and halves the fit's cost.
        angles = np.deg2rad(np.arange(0.0, 360.0, 2.0))
        px = radii[:, None] * np.cos(angles)[None, :]
        py = radii[:, None] * np.sin(angles)[None, :]
        hidden_fn_rng = np.random.default_rng(rng.integers(2**63))
        lid_args = {
            "upper_range": (2.3, 3.8),
            "lower_prob": 0.25,
            "lashes": int(rng.integers(0, 5)),
        }
        # The same lids hide the ring points and the grid points (one draw, two evaluations).
        seed = hidden_fn_rng.integers(2**63)
        hidden_pts = _lid_mask(px, py, np.random.default_rng(seed), **lid_args)
        hidden_grid = _lid_mask(x, y, np.random.default_rng(seed), **lid_args)
        # Mis-centred device axis: the instrument measures the cornea about an offset point.
        dx, dy = rng.normal(0, 0.12, 2)
        h = 1e-3
        sx = np.concatenate([(px + dx).ravel(), dx + np.array([0.0, h, -h, 0.0, 0.0])])
        sy = np.concatenate([(py + dy).ravel(), dy + np.array([0.0, 0.0, 0.0, h, -h])])
        both = model.sag(sx, sy)
        z0, stencil = both[-5], both[-5:]
        gx, gy = (stencil[1] - stencil[2]) / (2 * h), (stencil[3] - stencil[4]) / (2 * h)
        z_pts = both[:-5].reshape(px.shape) - z0 - gx * px - gy * py
        z_pts = z_pts + rng.normal(0, 0.5e-3, z_pts.shape)
        z_pts[hidden_pts] = np.nan
        fit = fit_zernike(px, py, z_pts, degree=8, radius=r_max)
        wobble = 1 + 0.04 * np.sin(3 * np.arctan2(y, x) + rng.uniform(0, 2 * np.pi))
        valid = (s <= r_max * wobble) & ~hidden_grid
        axial, tangential = maps_from_zernike(
            fit, size=grid_size, mm_per_px=mm_per_px, valid_mask=valid
        )
        theta = np.degrees(np.arctan2(y, x)) % 360.0
        artefact = np.zeros_like(axial)
        for _ in range(int(rng.integers(0, 4))):  # radial streaks (ring mis-localisation)
            centre, width = rng.uniform(0, 360), rng.uniform(2.0, 6.0)
            d = np.abs((theta - centre + 180.0) % 360.0 - 180.0)
            r0 = rng.uniform(1.0, 2.5)
            gain = rng.choice([-1, 1]) * rng.uniform(0.5, 2.5)
            artefact += gain * np.exp(-0.5 * (d / width) ** 2) * np.clip((s - r0) / 2.0, 0, 1)
        for _ in range(int(rng.integers(0, 3))):  # ring artefacts (an annulus off by a bit)
            rr = rng.choice(radii[2:])
            artefact += (
                rng.choice([-1, 1]) * rng.uniform(0.3, 1.0) * np.exp(-0.5 * ((s - rr) / 0.08) ** 2)
            )
        axial = axial + 0.6 * artefact
        tangential = tangential + artefact
        noise_sd, white_sd = 0.2, 0.1
    shape = axial.shape
    noise = _smooth_noise(shape, noise_sd, 4.0, rng)
    axial = axial + noise + rng.normal(0, white_sd, shape).astype(np.float32)
    tangential = tangential + 1.5 * noise + rng.normal(0, 1.5 * white_sd, shape).astype(np.float32)
    axial = np.where(valid, axial, np.nan).astype(np.float32)
    tangential = np.where(valid, tangential, np.nan).astype(np.float32)
    return axial, tangential


# ------------------------------------------------------------------------------- cohorts


def _make_case(args: tuple) -> dict:
    """Generate, render and write one case; returns its labels + generation rows."""
    from ophthalmo.keratoconus.heatmap import render_map, save_png
    from ophthalmo.keratoconus.indices import INDEX_KEYS, compute_indices
    from ophthalmo.keratoconus.io import save_case

    model, label, case_id, patient_id, spec, out_dir, seed = args
    axial, tangential = simulate_device(
        model, spec.domain, grid_size=spec.grid_size, mm_per_px=spec.mm_per_px, random_state=seed
    )
    rel = {
        "axial": f"axial/{case_id}.png",
        "tangential": f"tangential/{case_id}.png",
        "raw": f"raw/{case_id}.npz",
    }
    save_png(out_dir / rel["axial"], render_map(axial, style=spec.domain, size=spec.image_size))
    save_png(
        out_dir / rel["tangential"],
        render_map(tangential, style=spec.domain, size=spec.image_size),
    )
    save_case(out_dir / rel["raw"], axial, tangential, mm_per_px=spec.mm_per_px, eye=model.eye)
    labels_row = {
        "case_id": case_id,
        "patient_id": patient_id,
        "eye": model.eye,
        "label": label,
        "domain": spec.domain,
        **rel,
    }
    cone = model.cone
    gen = {
        "case_id": case_id,
        "label": label,
        "k_flat_d": 337.5 / model.r_flat_mm,
        "k_steep_d": 337.5 / model.r_steep_mm,
        "steep_axis_deg": model.steep_axis_deg,
        "asphericity": model.asphericity,
        "cone_delta_k_d": 337.5 * cone.amplitude_mm / cone.sigma_mm**2 if cone else 0.0,
        "cone_amplitude_um": 1000 * cone.amplitude_mm if cone else 0.0,
        "cone_sigma_mm": cone.sigma_mm if cone else float("nan"),
        "cone_inferior_mm": cone.inferior_mm if cone else float("nan"),
        "cone_temporal_mm": cone.temporal_mm if cone else float("nan"),
    }
    try:
        idx = compute_indices(axial, mm_per_px=spec.mm_per_px, eye=model.eye)
    except ValueError as exc:  # e.g. a lid over the centre: recorded, not fatal
        idx = {"rule_class": "", "error": str(exc)}
    for key in INDEX_KEYS:
        gen[key] = idx.get(key, float("nan"))
    return {"labels": labels_row, "generation": gen}


def _worker_init() -> None:
    threadpool_limits(1)


def generate_cohort(
    out_dir: str | os.PathLike,
    *,
    domain: str,
    n_eyes: int,
    random_state=None,
    image_size: int = 256,
    label_proportions=None,
    grid_size: int = 129,
    mm_per_px: float = 0.08,
    n_jobs: int = 1,
) -> Path:
    """Generate a labelled synthetic cohort and write its dataset folder.

    Parameters
    ----------
    out_dir : path
        Output folder (created; existing case files of the same names are replaced).
    domain : {"topographer", "smartkc"}
    n_eyes : int
        Number of cases (two per patient).
    random_state : int, Generator or None
        Everything drawn derives from it; the same seed gives the same cohort whatever
        ``n_jobs`` is.
    image_size : int
        PNG heatmap size.
    label_proportions : tuple of 3 floats or dict, optional
        Eye-level share of normal, suspect, keratoconus (default 0.55, 0.15, 0.30); a dict
        keyed by label is accepted.
    grid_size, mm_per_px : int, float
        Raw-map grid.
    n_jobs : int
        Worker processes (1: in-process).

    Returns
    -------
    Path
        The ``labels.csv`` written.
    """
    from healthsense.config import write_config
    from healthsense.report import write_csv
    from healthsense.runtime import get_logger, progress

    if isinstance(label_proportions, dict):
        unknown = set(label_proportions) - set(LABELS)
        if unknown:
            raise ValueError(f"unknown label(s) {sorted(unknown)}; use {', '.join(LABELS)}")
        label_proportions = tuple(float(label_proportions.get(k, 0.0)) for k in LABELS)
    spec = CohortSpec(
        domain=domain,
        n_eyes=n_eyes,
        image_size=image_size,
        grid_size=grid_size,
        mm_per_px=mm_per_px,
        **({"label_proportions": tuple(label_proportions)} if label_proportions else {}),
    )
    if not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer, got {n_jobs!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if isinstance(random_state, np.random.Generator):
        root = np.random.SeedSequence(int(random_state.integers(2**63)))
    else:
        root = np.random.SeedSequence(random_state)
    n_patients = (spec.n_eyes + 1) // 2
    types = _patient_type_probabilities(spec.label_proportions)
    type_keys = list(types)
    prefix = _DOMAIN_PREFIX[spec.domain]
    jobs = []
    for p, seq in enumerate(root.spawn(n_patients)):
        rng = np.random.default_rng(seq)
        pair = type_keys[int(rng.choice(len(type_keys), p=list(types.values())))]
        if rng.random() < 0.5:  # which eye is the worse one
            pair = pair[::-1]
        patient_id = f"{prefix}-p{p + 1:05d}"
        eyes = draw_patient(pair, rng)
        for model, label in eyes[: min(2, spec.n_eyes - 2 * p)]:
            case_id = f"{patient_id}-{model.eye.lower()}"
            jobs.append(
                (model, label, case_id, patient_id, spec, out_dir, int(rng.integers(2**63)))
            )
    log = get_logger("kc.synthetic")
    log.info("generating %d %s cases for %d patients in %s", len(jobs), domain, n_patients, out_dir)
    # Small matrices: BLAS threads only contend (10× slower on a busy 2-core machine).
    with threadpool_limits(1):
        if n_jobs == 1:
            results = [_make_case(job) for job in progress(jobs, total=len(jobs), desc="cases")]
        else:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(max_workers=n_jobs, initializer=_worker_init) as pool:
                results = list(
                    progress(pool.map(_make_case, jobs, chunksize=8), total=len(jobs), desc="cases")
                )
    write_csv(
        out_dir / "generation.csv",
        [r["generation"] for r in results],
        columns=list(results[0]["generation"]) if results else None,
    )
    labels_path = write_csv(
        out_dir / "labels.csv", [r["labels"] for r in results], columns=list(LABELS_COLUMNS)
    )
    write_config(
        {**asdict(spec), "random_state": None if random_state is None else str(random_state)},
        out_dir,
        command="ophthalmo.keratoconus.synthetic.generate_cohort",
    )
    return labels_path
