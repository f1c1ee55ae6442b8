"""Heatmaps (26-colour absolute scale, styles, inverse mapping) and case files."""

from __future__ import annotations

import numpy as np
import pytest

from ophthalmo.keratoconus import heatmap
from ophthalmo.keratoconus.io import load_case, load_elevation, save_case, save_elevation
from ophthalmo.keratoconus.topography import Cone, CorneaModel, curvature_maps, grid_xy


def _ramp(n=65):
    x, y = grid_xy(n, 0.16)
    m = (28.0 + (x + 5.12) / 10.24 * 37.5).astype(np.float32)
    m[np.hypot(x, y) > 4.8] = np.nan
    return m


def test_palette_layout():
    assert heatmap.PALETTE_RGB.shape == (26, 3) and heatmap.PALETTE_RGB.dtype == np.uint8
    assert len({tuple(c) for c in heatmap.PALETTE_RGB}) == 26
    assert tuple(heatmap.BACKGROUND_RGB) not in {tuple(c) for c in heatmap.PALETTE_RGB}
    np.testing.assert_allclose(heatmap.PALETTE_CENTERS_D[[0, -1]], [28.0, 65.5])
    np.testing.assert_allclose(np.diff(heatmap.PALETTE_EDGES_D), 1.5)
    assert heatmap.PALETTE_EDGES_D.size == 27
    d = np.linalg.norm(
        heatmap.PALETTE_RGB[:, None].astype(float) - heatmap.PALETTE_RGB[None].astype(float), axis=2
    )
    assert d[~np.eye(26, dtype=bool)].min() > 2 * 10  # robust to small compression errors
    # Absolute scale: the colour depends on the dioptres only; ends saturate.
    idx = heatmap.colour_index(np.array([20.0, 28.0, 28.74, 28.76, 43.0, 65.5, 80.0, np.nan]))
    assert idx.tolist() == [0, 0, 0, 1, 10, 25, 25, -1]


@pytest.mark.parametrize("style", heatmap.STYLES)
def test_render_roundtrip_within_half_a_step(style):
    m = _ramp()
    img = heatmap.render_map(m, style=style, size=96)
    assert img.shape == (96, 96, 3) and img.dtype == np.uint8
    back = heatmap.map_from_rgb(img)
    assert np.isnan(back).any() and np.isfinite(back).any()
    # Every rendered pixel is a palette colour or the background.
    colours = {tuple(c) for c in img.reshape(-1, 3)}
    allowed = {tuple(c) for c in heatmap.PALETTE_RGB} | {tuple(heatmap.BACKGROUND_RGB)}
    assert colours <= allowed
    if style == "canonical":
        exact = heatmap.render_map(m)  # native size: pixel for pixel
        assert exact.shape == (65, 65, 3)
        back = heatmap.map_from_rgb(exact)
        ok = np.isfinite(m)
        np.testing.assert_array_equal(np.isfinite(back), ok)
        assert np.abs(back[ok] - m[ok]).max() <= 0.75 + 1e-4
        assert (exact[~ok] == heatmap.BACKGROUND_RGB).all()


def test_style_geometry_and_bad_input():
    m = _ramp()
    topo = heatmap.render_map(m, style="topographer", size=80)
    skc = heatmap.render_map(m, style="smartkc", size=80)
    # The smartphone crop is tighter: less background around the valid zone.
    assert (skc == 0).all(axis=2).mean() < (topo == 0).all(axis=2).mean()
    assert heatmap.render_map(m, style="topographer").shape == (512, 512, 3)
    with pytest.raises(ValueError, match="style"):
        heatmap.render_map(m, style="fancy")
    with pytest.raises(ValueError, match="all NaN"):
        heatmap.render_map(np.full((8, 8), np.nan))
    with pytest.raises(ValueError, match="2-D"):
        heatmap.render_map(np.ones(5))
    with pytest.raises(ValueError, match="RGB"):
        heatmap.map_from_rgb(np.zeros((4, 4)))


def test_legend_and_png_roundtrip(tmp_path):
    leg = heatmap.legend_image(height=260, width=80)
    assert leg.shape == (260, 80, 3)
    assert tuple(leg[-1, 0]) == tuple(heatmap.PALETTE_RGB[0])  # flat at the bottom
    assert tuple(leg[0, 0]) == tuple(heatmap.PALETTE_RGB[25])
    img = heatmap.render_map(_ramp(), size=64)
    path = tmp_path / "m.png"
    heatmap.save_png(path, img)
    np.testing.assert_array_equal(heatmap.read_png(path), img)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="bad.png"):
        heatmap.read_png(tmp_path / "bad.png")
    with pytest.raises(FileNotFoundError):
        heatmap.read_png(tmp_path / "none.png")


def _case():
    model = CorneaModel(cone=Cone(0.02, 1.3, 1.0, 0.5))
    z = model.elevation_grid(65, 0.16)
    return z, *curvature_maps(z, mm_per_px=0.16, valid_radius_mm=4.5)


def test_case_roundtrip(tmp_path):
    z, axial, tangential = _case()
    path = save_case(tmp_path / "c.npz", axial, tangential, mm_per_px=0.16, eye="os")
    case = load_case(path)
    assert case.eye == "OS" and case.mm_per_px == pytest.approx(0.16)
    np.testing.assert_array_equal(case.axial_d, axial)
    a, t, mm, eye = case  # tuple unpacking works as documented
    assert a.dtype == np.float32 and np.isnan(t).any()
    save_elevation(tmp_path / "e.npz", z, mm_per_px=0.16, eye="OD")
    e = load_elevation(tmp_path / "e.npz")
    np.testing.assert_array_equal(e.z_mm, z)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_case_bad_inputs(tmp_path):
    _, axial, tangential = _case()
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load_case(tmp_path / "nope.npz")
    (tmp_path / "empty.npz").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_case(tmp_path / "empty.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(ValueError, match="junk.npz"):
        load_case(tmp_path / "junk.npz")
    np.savez(tmp_path / "nokey.npz", axial_d=axial, mm_per_px=0.16, eye="OD")
    with pytest.raises(ValueError, match="missing key.*tangential_d"):
        load_case(tmp_path / "nokey.npz")
    np.savez(
        tmp_path / "shape.npz",
        axial_d=axial,
        tangential_d=tangential[:-1, :-1],
        mm_per_px=0.16,
        eye="OD",
    )
    with pytest.raises(ValueError, match="differ in shape"):
        load_case(tmp_path / "shape.npz")
    np.save(tmp_path / "bare.npy", axial)
    with pytest.raises(ValueError, match="not an .npz archive"):
        load_case(tmp_path / "bare.npy")
    np.savez(tmp_path / "obj.npz", axial_d=np.array([{"a": 1}], dtype=object), tangential_d=axial,
             mm_per_px=0.16, eye="OD")  # fmt: skip
    with pytest.raises(ValueError, match="obj.npz"):
        load_case(tmp_path / "obj.npz")
    nan = np.full_like(axial, np.nan)
    np.savez(tmp_path / "nan.npz", axial_d=nan, tangential_d=nan, mm_per_px=0.16, eye="OD")
    with pytest.raises(ValueError, match="all NaN"):
        load_case(tmp_path / "nan.npz")
    np.savez(tmp_path / "eye.npz", axial_d=axial, tangential_d=tangential, mm_per_px=0.16, eye="R")
    with pytest.raises(ValueError, match="eye"):
        load_case(tmp_path / "eye.npz")
    np.savez(
        tmp_path / "mm.npz", axial_d=axial, tangential_d=tangential, mm_per_px=[0.1, 0.2], eye="OD"
    )
    with pytest.raises(ValueError, match="mm_per_px"):
        load_case(tmp_path / "mm.npz")
    with pytest.raises(ValueError, match="not corneal power"):
        save_case(tmp_path / "radii.npz", axial * 0 + 7.8, tangential, mm_per_px=0.16, eye="OD")
    assert not (tmp_path / "radii.npz").exists()
