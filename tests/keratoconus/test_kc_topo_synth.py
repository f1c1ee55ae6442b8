"""Synthetic two-domain cohorts, the dataset validator and the topography commands."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ophthalmo.keratoconus.dataset_check import check_dataset
from ophthalmo.keratoconus.heatmap import map_from_rgb, read_png
from ophthalmo.keratoconus.indices import compute_indices
from ophthalmo.keratoconus.io import load_case, save_elevation
from ophthalmo.keratoconus.synthetic import (
    LABELS_COLUMNS,
    CohortSpec,
    _patient_type_probabilities,
    draw_patient,
    generate_cohort,
    simulate_device,
)
from ophthalmo.keratoconus.topography import Cone, CorneaModel


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory):
    out = {}
    for domain in ("topographer", "smartkc"):
        folder = tmp_path_factory.mktemp(domain)
        out[domain] = generate_cohort(
            folder,
            domain=domain,
            n_eyes=8,
            random_state=3,
            image_size=64,
            label_proportions=(0.25, 0.25, 0.5),
        )
    return out


@pytest.mark.parametrize("domain", ["topographer", "smartkc"])
def test_cohort_folder_format(cohorts, domain):
    labels = cohorts[domain]
    df = pd.read_csv(labels)
    assert tuple(df.columns) == LABELS_COLUMNS
    assert len(df) == 8 and df["case_id"].is_unique
    assert set(df["domain"]) == {domain}
    assert all(sorted(g) == ["OD", "OS"] for _, g in df.groupby("patient_id")["eye"])
    assert check_dataset(labels.parent, deep=True) == []
    row = df.iloc[0]
    case = load_case(labels.parent / row["raw"])
    assert case.eye == row["eye"] and case.axial_d.dtype == np.float32
    img = read_png(labels.parent / row["axial"])
    assert img.shape == (64, 64, 3)
    back = map_from_rgb(img)
    assert np.isfinite(back).any() and np.isnan(back).any()
    assert (labels.parent / "config.json").is_file() and (
        labels.parent / "generation.csv"
    ).is_file()


def test_same_seed_same_cohort(cohorts, tmp_path):
    again = generate_cohort(
        tmp_path,
        domain="smartkc",
        n_eyes=8,
        random_state=3,
        image_size=64,
        label_proportions=(0.25, 0.25, 0.5),
    )
    a = pd.read_csv(cohorts["smartkc"])
    b = pd.read_csv(again)
    pd.testing.assert_frame_equal(a, b)
    ca = load_case(cohorts["smartkc"].parent / a["raw"][3])
    cb = load_case(again.parent / b["raw"][3])
    np.testing.assert_array_equal(ca.axial_d, cb.axial_d)


def test_label_mix_matches_the_requested_proportions():
    for p in [(0.55, 0.15, 0.30), (0.5, 0.0, 0.5), (0.3, 0.4, 0.3)]:
        types = _patient_type_probabilities(p)
        eye_share = {
            lab: sum(v * pair.count(lab) / 2 for pair, v in types.items())
            for lab in ("normal", "suspect", "keratoconus")
        }
        assert eye_share["keratoconus"] == pytest.approx(p[2], abs=1e-9)
        assert eye_share["suspect"] == pytest.approx(p[1], abs=1e-9)


def test_patients_are_mirror_images_and_cones_grade_with_label():
    rng = np.random.default_rng(5)
    (od, lab_od), (os_, lab_os) = draw_patient(("keratoconus", "normal"), rng)
    assert (od.eye, os_.eye, lab_od, lab_os) == ("OD", "OS", "keratoconus", "normal")
    assert od.cone is not None and os_.cone is None
    # Mirror symmetry of the astigmatic axis (within the small inter-eye variation).
    assert abs(((od.steep_axis_deg + os_.steep_axis_deg) % 180.0 + 90) % 180 - 90) < 25


@pytest.mark.parametrize("domain", ["topographer", "smartkc"])
def test_device_maps_recover_a_known_cornea(domain):
    model = CorneaModel(r_flat_mm=7.9, r_steep_mm=7.6, steep_axis_deg=90.0, asphericity=-0.2)
    axial, tangential = simulate_device(model, domain, random_state=0)
    ind = compute_indices(axial, mm_per_px=0.08, eye="OD")
    assert ind["simk_k1_d"] == pytest.approx(337.5 / 7.6, abs=0.4)
    assert ind["simk_k2_d"] == pytest.approx(337.5 / 7.9, abs=0.4)
    coverage = np.isfinite(axial).mean()
    assert (coverage > 0.45) if domain == "topographer" else (0.15 < coverage < 0.5)
    cone = CorneaModel(cone=Cone(0.04, 1.2, 1.0, 0.5))
    kc_axial, _ = simulate_device(cone, domain, random_state=0)
    kc = compute_indices(kc_axial, mm_per_px=0.08, eye="OD")
    assert kc["i_s_d"] > 2.0 and kc["rule_class"] == "keratoconus"


def test_cohort_bad_options(tmp_path):
    with pytest.raises(ValueError, match="domain"):
        generate_cohort(tmp_path, domain="phone", n_eyes=4)
    with pytest.raises(ValueError, match="n_eyes"):
        generate_cohort(tmp_path, domain="smartkc", n_eyes=0)
    with pytest.raises(ValueError, match="unknown label"):
        generate_cohort(tmp_path, domain="smartkc", n_eyes=4, label_proportions={"ill": 1.0})
    with pytest.raises(ValueError, match="label_proportions"):
        CohortSpec(label_proportions=(1.0, -1.0, 1.0))


def _copy_dataset(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_check_dataset_finds_problems(cohorts, tmp_path):
    root = _copy_dataset(cohorts["topographer"].parent, tmp_path / "ds")
    df = pd.read_csv(root / "labels.csv", dtype=str)
    df.loc[0, "label"] = "kc"
    df.loc[1, "eye"] = "left"
    df.loc[2, "case_id"] = df.loc[3, "case_id"]
    (root / df.loc[4, "axial"]).unlink()
    df["fold"] = [0, 0, 1, 1, 0, 1, 0, 0]
    df.to_csv(root / "labels.csv", index=False)
    (root / df.loc[5, "raw"]).write_bytes(b"broken")
    problems = check_dataset(root, deep=True)
    text = "\n".join(problems)
    assert "unknown label value(s) 'kc'" in text
    assert "unknown eye value(s) 'left'" in text
    assert "duplicate case_id" in text
    assert "missing axial file" in text
    assert "split across folds" in text
    assert "not a readable .npz" in text
    assert check_dataset(tmp_path / "ds" / "axial") == [
        f"{tmp_path / 'ds' / 'axial' / 'labels.csv'}: labels.csv is missing"
    ]
    with pytest.raises(FileNotFoundError):
        check_dataset(tmp_path / "absent")
    (root / "labels.csv").write_text("case_id,eye\nx,OD\n")
    assert "missing column(s)" in check_dataset(root)[0]


def test_commands_end_to_end(run_cli, tmp_path, cohorts):
    model = CorneaModel(r_flat_mm=7.9, r_steep_mm=7.6, steep_axis_deg=80.0, asphericity=0.0)
    save_elevation(tmp_path / "elev.npz", model.elevation_grid(101, 0.1), mm_per_px=0.1, eye="OD")
    code, out, err = run_cli(
        "kc", "maps", str(tmp_path / "elev.npz"), "--out", str(tmp_path / "case.npz")
    )
    assert code == 0, err
    assert (tmp_path / "case.npz.config.json").is_file()
    code, out, err = run_cli("kc", "indices", str(tmp_path / "case.npz"), "--json")
    assert code == 0, err
    ind = json.loads(out)
    for key in (
        "simk_k1_d",
        "simk_k2_d",
        "simk_axis_deg",
        "ast_d",
        "central_k_d",
        "i_s_d",
        "srax_deg",
        "kisa_pct",
        "rule_class",
    ):
        assert key in ind
    assert ind["simk_k1_d"] == pytest.approx(337.5 / 7.6, abs=0.05)
    assert abs(ind["simk_axis_deg"] - 80.0) < 1.0
    # Regular astigmatism has no cone: C1 and the opposite C2 both lie on the steep meridian.
    assert abs(ind["clmi_axial_d"]) < 0.5 and abs(ind["clmi_tangential_d"]) < 0.5
    code, out, err = run_cli(
        "kc",
        "maps",
        str(tmp_path / "elev.npz"),
        "--out",
        str(tmp_path / "case_z.npz"),
        "--method",
        "zernike",
    )
    assert code == 0, err
    code, out, err = run_cli(
        "kc",
        "render",
        str(tmp_path / "case.npz"),
        "--out",
        str(tmp_path / "m.png"),
        "--size",
        "80",
        "--legend",
    )
    assert code == 0, err
    assert read_png(tmp_path / "m.png").shape[0] == 80
    code, out, err = run_cli(
        "kc",
        "synth",
        "--domain",
        "smartkc",
        "--n",
        "4",
        "--out",
        str(tmp_path / "syn"),
        "--image-size",
        "48",
        "--seed",
        "2",
        "--json",
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["n_eyes"] == 4 and "keratoconus vs rest" in summary["rule"]
    code, out, err = run_cli("kc", "check-dataset", str(tmp_path / "syn"))
    assert code == 0 and "valid" in out
    (tmp_path / "syn" / "labels.csv").write_text("case_id\n")
    code, out, err = run_cli("kc", "check-dataset", str(tmp_path / "syn"), "--json")
    assert code == 1 and json.loads(out)["valid"] is False


def test_commands_bad_input(run_cli, tmp_path, shared_data):
    (tmp_path / "bad.npz").write_bytes(b"not an npz")
    code, out, err = run_cli("kc", "indices", str(tmp_path / "bad.npz"))
    assert code == 1 and "bad.npz" in err and "not a readable .npz" in err
    code, out, err = run_cli(
        "kc", "render", str(tmp_path / "none.npz"), "--out", str(tmp_path / "x.png")
    )
    assert code == 1 and "not found" in err
    code, out, err = run_cli(
        "kc", "synth", "--domain", "smartkc", "--out", str(tmp_path / "s"), "--proportions", "a,b"
    )
    assert code == 2
    cso = shared_data / "rpaci-cso" / "N02.txt"
    if cso.is_file():
        code, out, err = run_cli(
            "kc", "import-cso", str(cso), "--out", str(tmp_path / "n02.npz"), "--json"
        )
        assert code == 0, err
        res = json.loads(out)
        assert abs(res["diff_k_steep_d"]) < 0.5 and abs(res["diff_k_flat_d"]) < 0.5
        assert load_case(tmp_path / "n02.npz").eye in ("OD", "OS")
