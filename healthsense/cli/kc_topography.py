"""Corneal topography sub-commands of ``healthsense kc``.

import-cso, maps, indices, synth, render and check-dataset; registered into the ``kc`` group
by :mod:`healthsense.cli.kc`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from healthsense.cli._common import EXIT_FAILURE, EXIT_OK, CommandError, add_subcommand, print_json

#: The cone indices that ``import-cso --json`` prints beside INDEX_KEYS.
CONE_KEYS = (
    "clmi_axial_d",
    "clmi_tangential_d",
    "cone_x_mm",
    "cone_y_mm",
    "cone_dist_mm",
    "cone_tangential_x_mm",
    "cone_tangential_y_mm",
    "cone_tangential_dist_mm",
    "rule_class_clmi",
)


def _config_beside(out: Path, config: dict, command: str) -> None:
    from healthsense.config import write_config

    write_config(config, out.parent, name=f"{out.name}.config.json", command=command)


def _print_indices(ind: dict) -> None:
    from ophthalmo.keratoconus.indices import CLMI_AXIAL_KC_D

    print(
        f"Sim-K  K1 {ind['simk_k1_d']:.2f} D @ {ind['simk_axis_deg']:.0f}°, "
        f"K2 {ind['simk_k2_d']:.2f} D @ {ind['simk_k2_axis_deg']:.0f}°, AST {ind['ast_d']:.2f} D"
    )
    print(
        f"central K {ind['central_k_d']:.2f} D   I-S {ind['i_s_d']:.2f} D   "
        f"SRAX {ind['srax_deg']:.0f}° ({ind['srax_variant']})   KISA {ind['kisa_pct']:.0f} %"
    )
    print(
        f"CLMI axial {ind['clmi_axial_d']:.2f} D, tangential {ind['clmi_tangential_d']:.2f} D; "
        f"cone (axial) at x {ind['cone_x_mm']:+.1f} mm, y {ind['cone_y_mm']:+.1f} mm "
        f"({ind['cone_dist_mm']:.1f} mm from the vertex)"
    )
    print(
        f"rule-based class: {ind['rule_class']} "
        f"(with the CLMI > {CLMI_AXIAL_KC_D} D criterion: {ind['rule_class_clmi']})"
    )


def _run_import_cso(args: argparse.Namespace) -> int:
    """Convert a CSO Placido text export into a raw-map case (.npz) via a Zernike fit.

    Prints our map-based Sim-K and the device-style (keratometric, from the ring data) Sim-K
    beside the device's header Sim-K (the device's K1 is its flat meridian; ours is the steep
    one, so they are compared meridian by meridian), and the cone indices (CLMI, location).
    """
    from ophthalmo.keratoconus.indices import INDEX_KEYS, compute_indices
    from ophthalmo.keratoconus.io import cso_simk, cso_to_case, read_cso, save_case

    exam = read_cso(args.file)
    case = cso_to_case(exam, degree=args.degree)
    out = Path(args.out)
    save_case(out, case.axial_d, case.tangential_d, mm_per_px=case.mm_per_px, eye=case.eye)
    _config_beside(out, {"file": str(args.file), "degree": args.degree}, "kc import-cso")
    ind = compute_indices(
        case.axial_d, mm_per_px=case.mm_per_px, eye=case.eye, tangential_d=case.tangential_d
    )
    dev = cso_simk(exam)
    result = {
        "file": str(args.file),
        "out": str(out),
        "eye": case.eye,
        "occhio": exam.eye_flag,
        "header_k_steep_d": exam.header_k_steep_d,
        "header_k_steep_axis_deg": exam.header_k_steep_axis_deg,
        "header_k_flat_d": exam.header_k_flat_d,
        "header_k_flat_axis_deg": exam.header_k_flat_axis_deg,
        "diff_k_steep_d": ind["simk_k1_d"] - exam.header_k_steep_d,
        "diff_k_flat_d": ind["simk_k2_d"] - exam.header_k_flat_d,
        **{k: ind[k] for k in INDEX_KEYS},
        **{k: ind[k] for k in CONE_KEYS},
        "device_simk_steep_d": dev.k_steep_d,
        "device_simk_steep_axis_deg": dev.k_steep_axis_deg,
        "device_simk_flat_d": dev.k_flat_d,
        "device_simk_ring": dev.ring,
        "diff_device_k_steep_d": dev.k_steep_d - exam.header_k_steep_d,
        "diff_device_k_flat_d": dev.k_flat_d - exam.header_k_flat_d,
    }
    if args.json:
        print_json(result)
    else:
        print(f"wrote {out} ({case.eye}, Occhio {exam.eye_flag})")
        print(
            f"device Sim-K  steep {exam.header_k_steep_d:.2f} D @ "
            f"{exam.header_k_steep_axis_deg:.0f}°, flat {exam.header_k_flat_d:.2f} D @ "
            f"{exam.header_k_flat_axis_deg:.0f}°"
        )
        print(
            f"ours          steep {ind['simk_k1_d']:.2f} D @ {ind['simk_axis_deg']:.0f}°, "
            f"flat {ind['simk_k2_d']:.2f} D  (differences {result['diff_k_steep_d']:+.2f} / "
            f"{result['diff_k_flat_d']:+.2f} D)"
        )
        print(
            f"device-style  steep {dev.k_steep_d:.2f} D @ {dev.k_steep_axis_deg:.0f}°, "
            f"flat {dev.k_flat_d:.2f} D  (differences {result['diff_device_k_steep_d']:+.2f} / "
            f"{result['diff_device_k_flat_d']:+.2f} D; keratometric, ring {dev.ring:.2f})"
        )
        _print_indices(ind)
    return EXIT_OK


def _run_maps(args: argparse.Namespace) -> int:
    """Elevation grid (.npz with z_mm, mm_per_px, eye) → axial and tangential maps (.npz).

    ``--method fd`` takes finite differences of the grid (exact data); ``--method zernike``
    first fits a Zernike surface of ``--degree`` (noisy device data).
    """
    import numpy as np

    from ophthalmo.keratoconus.io import load_elevation, save_case
    from ophthalmo.keratoconus.topography import curvature_maps, grid_xy, maps_from_zernike
    from ophthalmo.keratoconus.zernike import fit_zernike

    elev = load_elevation(args.elevation)
    valid = np.isfinite(elev.z_mm)
    if args.method == "zernike":
        x, y = grid_xy(elev.z_mm.shape[0], elev.mm_per_px)
        fit = fit_zernike(x[valid], y[valid], elev.z_mm[valid], degree=args.degree)
        axial, tangential = maps_from_zernike(
            fit, size=elev.z_mm.shape[0], mm_per_px=elev.mm_per_px, valid_mask=valid
        )
    else:
        axial, tangential = curvature_maps(elev.z_mm, mm_per_px=elev.mm_per_px)
    if args.valid_radius is not None:
        x, y = grid_xy(elev.z_mm.shape[0], elev.mm_per_px)
        outside = np.hypot(x, y) > args.valid_radius
        axial[outside] = np.nan
        tangential[outside] = np.nan
    if not np.isfinite(axial).any():
        raise CommandError(f"{args.elevation}: no valid curvature could be computed")
    out = Path(args.out)
    save_case(out, axial, tangential, mm_per_px=elev.mm_per_px, eye=elev.eye)
    _config_beside(
        out,
        {
            "elevation": str(args.elevation),
            "method": args.method,
            "degree": args.degree,
            "valid_radius": args.valid_radius,
        },
        "kc maps",
    )
    print(f"wrote {out} ({elev.eye}, {axial.shape[0]}×{axial.shape[1]}, {elev.mm_per_px} mm/px)")
    return EXIT_OK


def _run_indices(args: argparse.Namespace) -> int:
    """Clinical indices of a raw-map case: Sim-K, AST, central K, I-S, SRAX, KISA, CLMI, class."""
    from ophthalmo.keratoconus.indices import compute_indices
    from ophthalmo.keratoconus.io import load_case

    case = load_case(args.case)
    ind = compute_indices(
        case.axial_d,
        mm_per_px=case.mm_per_px,
        eye=case.eye,
        srax_variant=args.srax_variant,
        tangential_d=case.tangential_d,
    )
    if args.json:
        print_json({"case": str(args.case), **ind})
    else:
        print(f"{args.case} ({case.eye})")
        _print_indices(ind)
    return EXIT_OK


def _run_synth(args: argparse.Namespace) -> int:
    """Generate a synthetic labelled cohort (labels.csv + raw maps + heatmaps) for one domain.

    Prints the label counts and the rule-based classifier's sensitivity and specificity on the
    generated cases (keratoconus vs the rest, and keratoconus + suspect vs normal).
    """
    import pandas as pd

    from ophthalmo.keratoconus.synthetic import generate_cohort

    proportions = None
    if args.proportions:
        try:
            proportions = tuple(float(v) for v in args.proportions.split(","))
        except ValueError:
            raise CommandError(
                f"--proportions must be three numbers like 0.55,0.15,0.30, got {args.proportions!r}",
                exit_code=2,
            ) from None
        if len(proportions) != 3:
            raise CommandError(
                "--proportions needs three numbers: normal,suspect,keratoconus", exit_code=2
            )
    seed = 0 if args.seed is None else args.seed
    labels = generate_cohort(
        args.out,
        domain=args.domain,
        n_eyes=args.n,
        random_state=seed,
        image_size=args.image_size,
        label_proportions=proportions,
        n_jobs=args.jobs,
    )
    gen = pd.read_csv(labels.parent / "generation.csv")
    summary = {"labels_csv": str(labels), "domain": args.domain, "n_eyes": len(gen), "seed": seed}
    summary["label_counts"] = gen["label"].value_counts().to_dict()
    summary["rule"] = _rule_performance(gen)
    if args.json:
        print_json(summary)
    else:
        print(f"wrote {len(gen)} {args.domain} cases to {labels}")
        print("labels: " + ", ".join(f"{k} {v}" for k, v in summary["label_counts"].items()))
        for name, res in summary["rule"].items():
            print(
                f"rule-based classifier, {name}: sensitivity {res['sensitivity']:.3f}, "
                f"specificity {res['specificity']:.3f} (n = {res['n']})"
            )
    return EXIT_OK


def _rule_performance(gen) -> dict:
    import numpy as np

    out = {}
    ok = gen["rule_class"].isin(["normal", "suspect", "keratoconus"])
    g = gen[ok]
    for name, pos_true, pos_pred in (
        ("keratoconus vs rest", {"keratoconus"}, {"keratoconus"}),
        ("abnormal vs normal", {"keratoconus", "suspect"}, {"keratoconus", "suspect"}),
    ):
        y = g["label"].isin(pos_true).to_numpy()
        p = g["rule_class"].isin(pos_pred).to_numpy()
        tp, tn = int((y & p).sum()), int((~y & ~p).sum())
        out[name] = {
            "sensitivity": tp / y.sum() if y.sum() else float("nan"),
            "specificity": tn / (~y).sum() if (~y).sum() else float("nan"),
            "n": int(y.size),
            "n_ungradable": int((~ok).sum()),
        }
        out[name] = {
            k: (float(v) if isinstance(v, float | np.floating) else v) for k, v in out[name].items()
        }
    return out


def _run_render(args: argparse.Namespace) -> int:
    """Render a raw-map case as a PNG heatmap on the absolute 26-colour scale."""
    from ophthalmo.keratoconus.heatmap import legend_image, render_map, save_png
    from ophthalmo.keratoconus.io import load_case

    case = load_case(args.case)
    power = case.axial_d if args.map == "axial" else case.tangential_d
    img = render_map(power, style=args.style, size=args.size)
    if args.legend:
        import numpy as np

        leg = legend_image(height=img.shape[0], width=max(64, img.shape[0] // 5))
        img = np.concatenate([img, leg], axis=1)
    out = Path(args.out)
    save_png(out, img)
    _config_beside(
        out,
        {
            "case": str(args.case),
            "map": args.map,
            "style": args.style,
            "size": args.size,
            "legend": args.legend,
        },
        "kc render",
    )
    print(f"wrote {out} ({img.shape[1]}×{img.shape[0]}, {args.map}, {args.style})")
    return EXIT_OK


def _run_check_dataset(args: argparse.Namespace) -> int:
    """Validate a dataset folder: files, labels, duplicates, patients split across folds.

    Exit code 0 when valid, 1 when problems were found (each printed on its own line).
    """
    from ophthalmo.keratoconus.dataset_check import check_dataset

    problems = check_dataset(args.folder, deep=args.deep)
    if args.json:
        print_json({"folder": str(args.folder), "valid": not problems, "problems": problems})
    elif problems:
        for line in problems:
            print(f"problem: {line}")
        print(f"{len(problems)} problem(s) in {args.folder}")
    else:
        print(f"{args.folder}: dataset is valid")
    return EXIT_FAILURE if problems else EXIT_OK


def register(sub) -> None:
    """Add the topography sub-commands to the ``kc`` sub-parsers."""
    p = add_subcommand(sub, "import-cso", doc=_run_import_cso.__doc__)
    p.add_argument("file", help="CSO Placido text export (.txt)")
    p.add_argument("--out", required=True, help="raw-map case to write (.npz)")
    p.add_argument("--degree", type=int, default=8, help="Zernike fit degree (default 8)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(_run=_run_import_cso)

    p = add_subcommand(sub, "maps", doc=_run_maps.__doc__)
    p.add_argument("elevation", help="elevation case (.npz with z_mm, mm_per_px, eye)")
    p.add_argument("--out", required=True, help="raw-map case to write (.npz)")
    p.add_argument("--method", choices=("fd", "zernike"), default="fd")
    p.add_argument("--degree", type=int, default=8, help="Zernike degree for --method zernike")
    p.add_argument(
        "--valid-radius",
        type=float,
        default=None,
        metavar="MM",
        help="also blank the maps beyond this radius (mm)",
    )
    p.set_defaults(_run=_run_maps)

    p = add_subcommand(sub, "indices", doc=_run_indices.__doc__)
    p.add_argument("case", help="raw-map case (.npz)")
    p.add_argument(
        "--srax-variant",
        choices=("perpendicular-to-steep-axis", "horizontal"),
        default="perpendicular-to-steep-axis",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(_run=_run_indices)

    p = add_subcommand(sub, "synth", doc=_run_synth.__doc__)
    p.add_argument("--domain", choices=("topographer", "smartkc"), required=True)
    p.add_argument("--n", type=int, default=400, help="number of eyes (default 400)")
    p.add_argument("--out", required=True, help="output dataset folder")
    p.add_argument("--image-size", type=int, default=256, help="PNG size (default 256)")
    p.add_argument(
        "--proportions",
        default=None,
        metavar="N,S,K",
        help="eye-level share of normal,suspect,keratoconus (default 0.55,0.15,0.30)",
    )
    p.add_argument("--jobs", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--json", action="store_true", help="print one JSON summary")
    p.set_defaults(_run=_run_synth)

    p = add_subcommand(sub, "render", doc=_run_render.__doc__)
    p.add_argument("case", help="raw-map case (.npz)")
    p.add_argument("--out", required=True, help="PNG to write")
    p.add_argument("--map", choices=("axial", "tangential"), default="axial")
    p.add_argument("--style", choices=("canonical", "topographer", "smartkc"), default="canonical")
    p.add_argument("--size", type=int, default=None, help="output size in pixels")
    p.add_argument("--legend", action="store_true", help="append the colour-scale legend")
    p.set_defaults(_run=_run_render)

    p = add_subcommand(sub, "check-dataset", doc=_run_check_dataset.__doc__)
    p.add_argument("folder", help="dataset folder with labels.csv")
    p.add_argument("--deep", action="store_true", help="also open every image and raw map")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(_run=_run_check_dataset)
