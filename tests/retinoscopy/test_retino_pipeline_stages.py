"""Stages of the retinoscopy video pipeline on synthetic images with known geometry."""

from __future__ import annotations

import numpy as np
import pytest

cv2 = pytest.importorskip("cv2")

from ophthalmo.retinoscopy import optics  # noqa: E402
from ophthalmo.retinoscopy.beam import beam_positions, beam_profiles, beam_strip_rois  # noqa: E402
from ophthalmo.retinoscopy.camera import CameraModel, plane_homography, rotation_matrix  # noqa: E402
from ophthalmo.retinoscopy.edges import band_edges  # noqa: E402
from ophthalmo.retinoscopy.frame import FRAME_V1, rasterize_rects  # noqa: E402
from ophthalmo.retinoscopy.markers import MarkerTracker, detect_markers, identify_eye  # noqa: E402
from ophthalmo.retinoscopy.pupil import detect_pupil, redness  # noqa: E402
from ophthalmo.retinoscopy.rectify import PlaneROI  # noqa: E402
from ophthalmo.retinoscopy.reflex import glint_mask, reflex_edges  # noqa: E402


def _trapezoid(x, lo, hi, ramp):
    """Band [lo, hi] at half maximum with linear ramps of full width ``ramp``."""
    up = np.clip((x - (lo - ramp / 2)) / ramp, 0, 1)
    down = np.clip(((hi + ramp / 2) - x) / ramp, 0, 1)
    return np.minimum(up, down)


# --------------------------------------------------------------------------- edges


def test_band_edges_subpixel_on_trapezoids():
    x = np.arange(80, dtype=float)
    los = np.array([10.3, 20.71, 33.05])
    his = np.array([40.6, 52.2, 61.93])
    prof = np.stack([0.1 + 0.8 * _trapezoid(x, lo, hi, 4.0) for lo, hi in zip(los, his)])
    rise, fall, level = band_edges(prof, min_contrast=0.1)
    np.testing.assert_allclose(rise, los, atol=1e-9)
    np.testing.assert_allclose(fall, his, atol=1e-9)
    np.testing.assert_allclose(level, 0.5, atol=1e-9)


def test_band_edges_missing_when_band_leaves_profile_or_no_contrast():
    x = np.arange(60, dtype=float)
    touching = 0.8 * _trapezoid(x, -10.0, 30.4, 3.0)  # rising edge outside the profile
    flat = np.full(60, 0.5) + 0.001 * np.sin(x)
    with_nan = 0.8 * _trapezoid(x, 20.0, 40.0, 3.0)
    with_nan[19:22] = np.nan  # an ignored sample (glint) on the rising edge
    rise, fall, _ = band_edges(np.stack([touching, flat, with_nan]), min_contrast=0.1)
    assert np.isnan(rise[0]) and fall[0] == pytest.approx(30.4)
    assert np.isnan(rise[1]) and np.isnan(fall[1])
    assert np.isnan(rise[2]) and fall[2] == pytest.approx(40.0)


def test_band_edges_rejects_bad_shape():
    with pytest.raises(ValueError, match="2-D"):
        band_edges(np.zeros(5), min_contrast=0.1)


# --------------------------------------------------------------------------- markers


def _render_panel(eye, camera, rot, center, *, ppm=12.0):
    """Paper panel of ``eye`` seen by a camera: rasterise at ``ppm`` then warp (grey uint8)."""
    px, py = FRAME_V1.panel_half_mm
    m = 6.0
    shape = (int((2 * py + 2 * m) * ppm), int((2 * px + 2 * m) * ppm))
    value, alpha = rasterize_rects(
        FRAME_V1.shapes(eye), shape=shape, origin_mm=(-px - m, -py - m), px_per_mm=ppm
    )
    tex = (40 + 200 * value * alpha).astype(np.uint8)
    # plane mm of texture pixel (j, i) centre → image pixels
    to_mm = np.array(
        [[1 / ppm, 0, -px - m + 0.5 / ppm], [0, 1 / ppm, -py - m + 0.5 / ppm], [0, 0, 1]]
    )
    h = plane_homography(camera, rot, center, z_mm=0.0) @ to_mm
    return cv2.warpPerspective(
        tex, h, (camera.width, camera.height), flags=cv2.INTER_AREA, borderValue=30
    )


@pytest.fixture(scope="module")
def scene():
    cam = CameraModel.from_fov(960, 540)
    rot = rotation_matrix(np.deg2rad(1.5), np.deg2rad(-1.0), np.deg2rad(2.0))
    center = np.array([4.0, -3.0, -330.0])
    return cam, rot, center


def test_markers_detected_with_subpixel_pose(scene):
    cam, rot, center = scene
    img = _render_panel("OD", cam, rot, center)
    found = detect_markers(img)
    assert set(found) == {0, 1, 2, 3}
    assert identify_eye(found, (cam.width, cam.height)) == "OD"
    poses = MarkerTracker(cam).update(img)
    assert set(poses) == {"OD"}
    pose = poses["OD"]
    h_true = plane_homography(cam, rot, center, z_mm=0.0)
    pts = np.array([[-16.0, -10.0, 1], [16.0, 10.0, 1], [0.0, 0.0, 1], [-19.0, 18.0, 1]])
    est = pts @ pose.homography(cam).T
    tru = pts @ h_true.T
    err = np.abs(est[:, :2] / est[:, 2:] - tru[:, :2] / tru[:, 2:])
    assert err.max() < 0.3  # pixels, on the paper plane
    assert pose.distance_mm(0.0) == pytest.approx(330.0, abs=3.0)


def test_markers_other_eye_and_tracking_when_markers_drop(scene):
    cam, rot, center = scene
    img = _render_panel("OS", cam, rot, center)
    tracker = MarkerTracker(cam, redetect_every=1)
    first = tracker.update(img)
    assert set(first) == {"OS"}
    # Wash out one marker (the beam crossing it): tracking keeps the pose.
    x0, y0 = detect_markers(img)[4].min(axis=0).astype(int) - 3
    x1, y1 = detect_markers(img)[4].max(axis=0).astype(int) + 3
    washed = img.copy()
    washed[y0:y1, x0:x1] = 250
    second = tracker.update(washed)
    assert "OS" in second and second["OS"].n_markers >= 3


def test_no_markers_gives_no_pose():
    cam = CameraModel.from_fov(320, 240)
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (240, 320), dtype=np.uint8)
    assert MarkerTracker(cam).update(noise) == {}
    with pytest.raises(ValueError, match="grey"):
        MarkerTracker(cam).update(np.zeros((240, 320, 3), np.uint8))


# --------------------------------------------------------------------------- rectify + beam


class _FlatPose:
    """A pose stub: a fronto-parallel camera with a known homography."""

    def __init__(self, cam, rot, center):
        self.cam, self.rot, self.center = cam, rot, center

    def homography(self, camera, *, z_mm=0.0):
        return plane_homography(camera, self.rot, self.center, z_mm=z_mm)


def test_beam_edges_recovered_in_mm(scene):
    cam, rot, center = scene
    pose = _FlatPose(cam, rot, center)
    rois = beam_strip_rois(axis=0)
    assert len(rois) == len(FRAME_V1.beam_strips_mm)
    truth = [(-3.37, 2.91), (4.12, 9.58)]
    profiles = []
    for lo, hi in truth:
        # Draw the streak on the paper plane at 20 px/mm, then view it through the camera.
        ppm = 20.0
        xs = -30 + (np.arange(60 * int(ppm)) + 0.5) / ppm
        row = 60 + 180 * _trapezoid(xs, lo, hi, 0.6)
        tex = np.tile(row, (int(50 * ppm), 1)).astype(np.float32)
        to_mm = np.array([[1 / ppm, 0, -30 + 0.5 / ppm], [0, 1 / ppm, -25 + 0.5 / ppm], [0, 0, 1]])
        img = cv2.warpPerspective(tex, pose.homography(cam) @ to_mm, (cam.width, cam.height))
        strips = [r.warp(img, pose, cam) for r in rois]
        profiles.append(beam_profiles(strips))
    lower, upper, mid = beam_positions(np.stack(profiles), rois)
    np.testing.assert_allclose(lower, [t[0] for t in truth], atol=0.05)
    np.testing.assert_allclose(upper, [t[1] for t in truth], atol=0.05)
    np.testing.assert_allclose(mid, [0.5 * sum(t) for t in truth], atol=0.05)


def test_vertical_sweep_strips_avoid_markers_and_opening():
    ox, oy = FRAME_V1.opening_half_mm
    for roi in beam_strip_rois(axis=1):
        assert roi.x0 >= ox or roi.x1 <= -ox
        for cx, cy in FRAME_V1.marker_centers_mm:
            half = FRAME_V1.marker_side_mm / 2
            overlap_x = roi.x0 < cx + half and roi.x1 > cx - half
            overlap_y = roi.y0 < cy + half and roi.y1 > cy - half
            assert not (overlap_x and overlap_y)


def test_plane_roi_validates():
    with pytest.raises(ValueError, match="empty region"):
        PlaneROI(1, 0, 1, 2, 0.0, 10, 10)


# --------------------------------------------------------------------------- pupil + reflex


def _eye_stack(n=24, *, center=(1.2, -0.7), radius=2.6, ppm=10.0, band=None, glint=None):
    """Rectified eye-opening BGR frames: dark pupil, red band (lo, hi per frame) inside it."""
    roi = PlaneROI(-16, -10, 16, 10, 12.0, ppm, ppm)
    rows, cols = roi.shape
    xs = roi.x_mm(np.arange(cols))
    ys = roi.y_mm(np.arange(rows))
    xx, yy = np.meshgrid(xs, ys)
    r = np.hypot(xx - center[0], yy - center[1])
    pupil = np.clip((radius - r) * ppm + 0.5, 0, 1)
    frames = np.empty((n, rows, cols, 3), np.uint8)
    for k in range(n):
        lin = np.zeros((rows, cols, 3))
        lin[..., :] = 0.04 * (1 - pupil)[..., None] + 0.002  # iris/skin grey
        lo, hi = band[k] if band is not None else (-99, 99)
        prof = _trapezoid(xs, lo, hi, 0.3)[None, :] * pupil
        lin += prof[..., None] * np.array([0.03, 0.08, 0.30])  # BGR fundus colour
        if glint is not None:
            gx, gy = glint
            lin += (np.hypot(xx - gx, yy - gy) < 0.25)[..., None] * 0.9
        frames[k] = np.clip(255 * np.sqrt(np.clip(lin, 0, 1)), 0, 255).astype(np.uint8)
    return roi, frames


def test_pupil_found_from_union_of_lit_frames():
    n = 20
    centers = np.linspace(-3.0, 4.0, n)
    band = [(c - 0.6, c + 0.6) for c in centers]  # a narrow band sweeping across
    roi, frames = _eye_stack(n, band=band)
    track = detect_pupil(redness(frames), roi, chunk=10)
    assert track is not None
    assert track.center_median_mm == pytest.approx((1.2, -0.7), abs=0.15)
    assert track.radius_median_mm == pytest.approx(2.6, abs=0.2)
    assert track.center_mm.shape == (n, 2)


def test_pupil_absent_in_dark_video():
    roi = PlaneROI(-16, -10, 16, 10, 12.0, 10, 10)
    assert detect_pupil(np.zeros((5, *roi.shape), np.uint8), roi) is None
    with pytest.raises(ValueError, match="frames, rows, cols"):
        detect_pupil(np.zeros((3, 4)), roi)


def _track_for(roi, frames, center=(1.2, -0.7), radius=2.6):
    from ophthalmo.retinoscopy.pupil import PupilTrack

    n = frames.shape[0]
    return PupilTrack(np.tile(center, (n, 1)), np.full(n, radius), center, radius, 1, 0)


def test_reflex_edges_match_truth_and_reject_glint():
    band = [(-0.5, 1.4), (0.1, 2.2), (0.8, 3.8), (-0.7, 0.9)]
    roi, frames = _eye_stack(4, band=band, glint=(0.1, -0.7))
    track = _track_for(roi, frames)
    res = reflex_edges(
        frames[..., 2], frames[..., 1], np.stack([glint_mask(f) for f in frames]), roi, track
    )
    lo = np.array([b[0] for b in band])
    hi = np.array([b[1] for b in band])
    # Frame 1's rising edge sits on the glint: the rows it touches are dropped, so the edge
    # is either found undisplaced in the others or not reported, never moved by the glint.
    ok = [0, 2, 3]
    np.testing.assert_allclose(res.rising_mm[ok], lo[ok], atol=0.08)
    assert np.isnan(res.rising_mm[1]) or abs(res.rising_mm[1] - lo[1]) < 0.08
    # The glint itself is in the mask, the pupil around it is not.
    mask = glint_mask(frames[1])
    row, col = int(roi.row_of(-0.7)), int(roi.col_of(0.1))
    assert mask[row, col] and not mask[row, int(roi.col_of(1.5))]
    # Frame 2's falling edge (3.8) is outside the usable chord (centre 1.2 + 0.88·2.6).
    assert np.isnan(res.falling_mm[2])
    np.testing.assert_allclose(res.falling_mm[[0, 1, 3]], hi[[0, 1, 3]], atol=0.08)
    assert not res.filled.any()


def test_reflex_filled_pupil_is_neutral_appearance():
    band = [(-9.0, 9.0)] * 3 + [(20.0, 21.0)] * 3  # filled, then dark
    roi, frames = _eye_stack(6, band=band)
    res = reflex_edges(
        frames[..., 2],
        frames[..., 1],
        np.zeros(frames.shape[:3], bool),
        roi,
        _track_for(roi, frames),
    )
    assert res.filled[:3].all() and not res.filled[3:].any()
    assert np.isnan(res.rising_mm).all() and np.isnan(res.falling_mm).all()


# --------------------------------------------------------------------------- optics sanity


def test_inverse_optics_roundtrip_used_by_estimator():
    for k in (-5.0, -1.0, 0.0, 2.5):
        r = optics.sweep_ratio(k, working_distance_m=0.35)
        assert optics.power_from_ratio(r, working_distance_m=0.35) == pytest.approx(k)
