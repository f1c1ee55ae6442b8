"""The printed frame: the spec is consistent, and a rendered sheet is found by cv2.aruco in mm."""

from __future__ import annotations

import re
import struct

import cv2
import numpy as np
import pytest

from ophthalmo.retinoscopy.frame import FRAME_V1, FrameSpec, Rect, check_eye, rasterize_rects
from ophthalmo.retinoscopy.sheet import render_sheet_png, sheet_layout, write_sheet


def _detector():
    params = cv2.aruco.DetectorParameters()
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    return cv2.aruco.ArucoDetector(FRAME_V1.aruco_dictionary(), params)


def test_retino_spec_matches_docs():
    spec = FRAME_V1
    spec.validate()
    assert spec.dictionary == "DICT_4X4_50" and spec.version == "1"
    assert spec.marker_ids["OD"] == (0, 1, 2, 3) and spec.marker_ids["OS"] == (4, 5, 6, 7)
    corners = spec.marker_corners_mm("OS")
    np.testing.assert_allclose(corners[4].mean(0), [-24, -16])  # TL
    np.testing.assert_allclose(corners[6].mean(0), [24, 16])  # BR
    np.testing.assert_allclose(corners[5][1] - corners[5][0], [8, 0])  # side 8 mm, TL→TR
    assert spec.eye_of_marker(2) == "OD" and spec.eye_of_marker(7) == "OS"
    with pytest.raises(ValueError, match="not part"):
        spec.eye_of_marker(9)
    with pytest.raises(ValueError, match="unknown eye"):
        check_eye("OU")
    with pytest.raises(ValueError, match="overlaps the eye opening"):
        FrameSpec(marker_centers_mm=((-12, -6), (24, -16), (24, 16), (-24, 16))).validate()


def test_retino_rasterizer_exact_area_coverage():
    # a 1.25 × 0.5 mm rect at 4 px/mm starting mid-pixel: total coverage = area in px²
    value, alpha = rasterize_rects(
        [Rect(0.1, 0.3, 1.35, 0.8, 1.0)], shape=(8, 8), origin_mm=(0, 0), px_per_mm=4.0
    )
    assert value.sum() == pytest.approx(1.25 * 0.5 * 16, rel=1e-6)
    assert alpha.sum() == pytest.approx(1.25 * 0.5 * 16, rel=1e-6)
    assert value[2, 0] == pytest.approx(0.6)  # pixel x∈[0, 0.25] mm holds [0.1, 0.25]
    assert value[1, 0] == pytest.approx(0.6 * 0.8)  # and y∈[0.25, 0.5] holds [0.3, 0.5]


def test_retino_sheet_png_markers_at_their_mm_positions():
    dpi = 200.0
    gray = render_sheet_png(dpi=dpi)
    ppm = dpi / 25.4
    assert gray.shape == (round(210 * ppm), round(297 * ppm))
    corners, ids, _ = _detector().detectMarkers(gray)
    assert ids is not None and sorted(ids.ravel().tolist()) == list(range(8))
    layout = sheet_layout()
    for quad, mid in zip(corners, ids.ravel(), strict=True):
        eye = FRAME_V1.eye_of_marker(int(mid))
        truth = FRAME_V1.marker_corners_mm(eye)[int(mid)] + np.asarray(layout.panel_origin_mm[eye])
        # OpenCV pixel (0, 0) is the centre of the first pixel, i.e. 0.5 px into the page
        found = (quad[0] + 0.5) / ppm
        assert np.abs(found - truth).max() < 0.05  # mm
    # the 50 mm ruler: its end ticks are 50 mm apart
    rx, ry = layout.ruler_start_mm
    row = gray[int(round((ry - 4.0) * ppm))].astype(float)
    ticks = np.flatnonzero(row < 128) / ppm
    long_ticks = ticks[(ticks > rx - 1) & (ticks < rx + 51)]
    assert long_ticks.max() - long_ticks.min() == pytest.approx(50.0, abs=0.2)


def test_retino_frame_command_writes_scaled_files(tmp_path, run_cli):
    code, out, _ = run_cli("retino", "frame", "--out", str(tmp_path / "f.png"), "--dpi", "150")
    assert code == 0 and "f.png" in out
    data = (tmp_path / "f.png").read_bytes()
    i = data.index(b"pHYs")
    ppm_x, ppm_y, unit = struct.unpack(">IIB", data[i + 4 : i + 13])
    assert unit == 1 and ppm_x == ppm_y == round(150 / 0.0254)
    assert (tmp_path / "f.config.json").is_file()
    code, _, _ = run_cli("retino", "frame", "--out", str(tmp_path / "f.pdf"))
    assert code == 0
    media = re.search(rb"/MediaBox \[\s*0 0 ([\d.]+) ([\d.]+)", (tmp_path / "f.pdf").read_bytes())
    assert float(media.group(1)) == pytest.approx(297 / 25.4 * 72, abs=0.05)
    assert float(media.group(2)) == pytest.approx(210 / 25.4 * 72, abs=0.05)
    svg = write_sheet(tmp_path / "f.svg").read_text()
    assert 'width="841.889764pt"' in svg or 'width="841.89pt"' in svg
    assert FRAME_V1.version_string in svg or "frame v1" in svg
    code, _, err = run_cli("retino", "frame", "--out", str(tmp_path / "f.jpg"))
    assert code == 2 and ".pdf, .png or .svg" in err
