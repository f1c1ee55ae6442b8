"""Dataset folder reading, patient splits, augmentation rules (dual-head CNN data side)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ophthalmo.keratoconus import augment as aug_mod
from ophthalmo.keratoconus.data import (
    KCDataset,
    dataset_hash,
    encode_labels,
    patient_kfold,
    patient_split,
    read_labels,
)


def toy_maps(label: str, eye: str, rng: np.random.Generator, n: int = 48):
    """Conicoid axial/tangential power (closed forms of the docs) + an inferior-temporal cone."""
    mm = 10.0 / n
    c = (n - 1) / 2.0
    yy, xx = np.mgrid[0:n, 0:n]
    x, y = (xx - c) * mm, (c - yy) * mm  # row 0 superior
    s2 = x**2 + y**2
    r_apex, q = rng.uniform(7.5, 8.1), -0.2
    axial = 337.5 / np.sqrt(r_apex**2 - q * s2)
    tang = 337.5 * r_apex**2 / (r_apex**2 - q * s2) ** 1.5
    amp = {"normal": 0.0, "suspect": 2.5, "keratoconus": 7.0}[label] * rng.uniform(0.8, 1.2)
    tx = -1.0 if eye == "OD" else 1.0  # temporal side as seen by the instrument
    bump = np.exp(-((x - tx) ** 2 + (y + 1.2) ** 2) / (2 * 1.1**2))
    axial, tang = axial + amp * bump, tang + 1.6 * amp * bump
    axial += rng.normal(0, 0.1, axial.shape)
    out = s2 > 4.5**2
    axial[out] = np.nan
    tang[out] = np.nan
    return axial.astype(np.float32), tang.astype(np.float32), mm


def write_toy_dataset(folder, n_patients=12, *, seed=0, domain="topographer", png=True, raw=True):
    """A tiny dataset in the documented folder format (both eyes share the patient's label)."""
    from healthsense.report import write_csv
    from ophthalmo.keratoconus.heatmap import render_map, save_png
    from ophthalmo.keratoconus.io import save_case

    rng = np.random.default_rng(seed)
    rows = []
    labels = ["normal", "keratoconus", "normal", "suspect"]
    for p in range(n_patients):
        label = labels[p % len(labels)]
        for eye in ("OD", "OS"):
            cid = f"{domain[:3]}{p:03d}{eye}"
            ax, tg, mm = toy_maps(label, eye, rng)
            row = {
                "case_id": cid,
                "patient_id": f"{domain[:3]}p{p:03d}",
                "eye": eye,
                "label": label,
                "domain": domain,
                "axial": "",
                "tangential": "",
                "raw": "",
            }
            if raw:
                save_case(folder / "raw" / f"{cid}.npz", ax, tg, mm_per_px=mm, eye=eye)
                row["raw"] = f"raw/{cid}.npz"
            if png:
                save_png(folder / "png" / f"{cid}_ax.png", render_map(ax))
                save_png(folder / "png" / f"{cid}_tg.png", render_map(tg))
                row["axial"], row["tangential"] = f"png/{cid}_ax.png", f"png/{cid}_tg.png"
            rows.append(row)
    write_csv(folder / "labels.csv", rows)
    return folder


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return write_toy_dataset(tmp_path_factory.mktemp("kc_toy"), 8)


def test_read_labels_resolves_paths_and_validates(toy, tmp_path):
    frame = read_labels(toy)
    assert len(frame) == 16 and set(frame["eye"]) == {"OD", "OS"}
    assert all(p.endswith(".npz") for p in frame["raw"])
    bad = pd.read_csv(toy / "labels.csv").drop(columns=["label"])
    bad.to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(ValueError, match="missing column.*label"):
        read_labels(tmp_path)
    good = pd.read_csv(toy / "labels.csv")
    good.loc[0, "label"] = "cone"
    good.to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(ValueError, match="unknown label"):
        read_labels(tmp_path)
    good = pd.read_csv(toy / "labels.csv")  # relative paths now point nowhere
    good.to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(FileNotFoundError, match="referenced file not found"):
        read_labels(tmp_path)
    with pytest.raises(FileNotFoundError):
        read_labels(tmp_path / "nothing")


def test_encode_labels_suspect_policies():
    labels = ["normal", "suspect", "keratoconus"]
    assert encode_labels(labels).tolist() == [0, 1, 1]
    assert encode_labels(labels, suspect="negative").tolist() == [0, 0, 1]
    assert encode_labels(labels, suspect="drop").tolist() == [0, -1, 1]
    assert encode_labels(labels, task="3class").tolist() == [0, 1, 2]
    with pytest.raises(ValueError):
        encode_labels(["cone"])


def test_patient_splits_keep_both_eyes_together(toy):
    frame = read_labels(toy)
    folds = patient_kfold(frame, 4, random_state=1)
    seen = np.concatenate([te for _, te in folds])
    assert sorted(seen.tolist()) == list(range(len(frame)))
    for tr, te in folds:
        assert not set(frame["patient_id"].iloc[tr]) & set(frame["patient_id"].iloc[te])
    tr, va = patient_split(frame, val_fraction=0.25, random_state=0)
    assert not set(frame["patient_id"].iloc[tr]) & set(frame["patient_id"].iloc[va])
    with pytest.raises(ValueError):
        patient_kfold(frame, 99)


def test_dataset_items_shapes_and_raw_png_agree(toy):
    frame = read_labels(toy)
    raw_only = frame.assign(axial="", tangential="")
    png_only = frame.assign(raw="")
    ds_raw = KCDataset(raw_only, image_size=32)
    ds_png = KCDataset(png_only, image_size=32)
    ax, tg, meta, y = ds_raw[0]
    assert ax.shape == (3, 32, 32) and tg.shape == (3, 32, 32) and meta.shape == (1,)
    assert meta.item() == (1.0 if frame["eye"][0] == "OD" else -1.0)
    assert y == encode_labels([frame["label"][0]])[0]
    # Nearest resizing makes "render then resize" equal "resize then render".
    a2, t2, _, _ = ds_png[0]
    assert np.array_equal(ax.numpy(), a2.numpy()) and np.array_equal(tg.numpy(), t2.numpy())
    ds3 = KCDataset(frame, image_size=32, use_indices=True, task="3class")
    assert ds3[1][2].shape == (8,) and ds3.n_meta == 8


def test_corrupt_files_give_clear_errors(toy, tmp_path):
    frame = read_labels(toy).iloc[:2].copy()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    frame.loc[:, "raw"] = str(bad)
    with pytest.raises(ValueError, match="bad.npz"):
        KCDataset(frame, image_size=32)[0]
    png = tmp_path / "bad.png"
    png.write_bytes(b"")
    frame = frame.assign(raw="", axial=str(png), tangential=str(png))
    with pytest.raises(ValueError, match="bad.png"):
        KCDataset(frame, image_size=32)[0]


def test_flip_swaps_laterality_and_mirrors_both_maps():
    rng = np.random.default_rng(0)
    ax = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    tg = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    fa, ft, eye = aug_mod.flip_pair(ax, tg, "OD")
    assert eye == "OS" and np.array_equal(fa, ax[:, ::-1]) and np.array_equal(ft, tg[:, ::-1])
    back = aug_mod.flip_pair(fa, ft, eye)
    assert back[2] == "OD" and np.array_equal(back[0], ax)
    # A right eye's temporal cone, mirrored, sits where a left eye's cone sits.
    a_od, _, _ = toy_maps("keratoconus", "OD", np.random.default_rng(1))
    a_os, _, _ = toy_maps("keratoconus", "OS", np.random.default_rng(1))
    peak_od = np.unravel_index(np.argmax(np.nan_to_num(a_od[:, ::-1])), a_od.shape)
    peak_os = np.unravel_index(np.argmax(np.nan_to_num(a_os)), a_os.shape)
    assert np.abs(np.subtract(peak_od, peak_os)).max() <= 2
    assert peak_os[1] > a_os.shape[1] // 2  # OS temporal = examiner's right
    with pytest.raises(ValueError):
        aug_mod.flip_pair(ax, tg, "OU")


def test_augment_is_dioptre_level_and_keeps_palette_colours(toy):
    from ophthalmo.keratoconus.heatmap import BACKGROUND_RGB, PALETTE_RGB

    cfg = aug_mod.AugmentConfig(p_shrink=1.0, p_eyelid=1.0, p_rings=1.0, p_affine=1.0, p_flip=1.0)
    augm = aug_mod.KCAugment(cfg, background_rgb=tuple(BACKGROUND_RGB))
    ax, tg, _ = toy_maps("normal", "OD", np.random.default_rng(3))
    rng = np.random.default_rng(0)
    a2, t2 = augm.maps(ax, tg, rng)
    # valid zone shrinks and the superior rows are occluded first
    assert np.isfinite(a2).sum() < np.isfinite(ax).sum()
    assert np.isnan(a2[:12]).mean() > np.isnan(a2[-12:]).mean()
    ds = KCDataset(read_labels(toy), image_size=32, augment=augm)
    img_a, img_t, eye = ds.rgb_pair(0, np.random.default_rng(5))
    allowed = {tuple(c) for c in PALETTE_RGB} | {tuple(BACKGROUND_RGB)}
    assert {tuple(c) for c in img_a.reshape(-1, 3)} <= allowed
    assert eye != read_labels(toy)["eye"][0]  # p_flip=1 swaps laterality
    with pytest.raises(ValueError):
        aug_mod.AugmentConfig(p_flip=1.5)


def test_augment_disabled_is_identity():
    augm = aug_mod.KCAugment(aug_mod.AugmentConfig(enabled=False))
    ax, tg, _ = toy_maps("suspect", "OS", np.random.default_rng(2))
    a2, t2 = augm.maps(ax, tg, np.random.default_rng(0))
    assert np.array_equal(a2, ax, equal_nan=True) and np.array_equal(t2, tg, equal_nan=True)


def test_dataset_hash_changes_with_content(toy, tmp_path):
    frame = read_labels(toy)
    h = dataset_hash(frame)
    assert h == dataset_hash(frame.iloc[::-1])
    assert h != dataset_hash(frame.assign(label="normal"))
