"""Simulator: truth consistent with the pixels (oracle edges, ArUco), the optics and the CLI."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from ophthalmo.retinoscopy import optics
from ophthalmo.retinoscopy.camera import CameraModel
from ophthalmo.retinoscopy.frame import FRAME_V1
from ophthalmo.retinoscopy.motion import HandMotion
from ophthalmo.retinoscopy.render import ClipRenderer, Scenario
from ophthalmo.retinoscopy.scene import EyeModel
from ophthalmo.retinoscopy.simulate import draw_cohort, make_scenario, render_frames, simulate_clip


def _read_video(path):
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    return frames


def _half_max_crossing(profile, xs, near):
    level = 0.5 * (profile.min() + profile.max())
    s = profile - level
    idx = np.flatnonzero(np.sign(s[:-1]) != np.sign(s[1:]))
    cross = xs[idx] + s[idx] / (s[idx] - s[idx + 1])
    return cross[np.argmin(np.abs(cross - near))]


@pytest.fixture(scope="module")
def easy_clip(tmp_path_factory):
    out = tmp_path_factory.mktemp("clip")
    sc = make_scenario(1.0, eye="OS", working_distance_m=0.35, pupil_radius_mm=3.5, width=640,
                       height=360, hfov_deg=20, duration_s=1.0, difficulty="easy",
                       random_state=3)  # fmt: skip
    paths = simulate_clip(sc, out / "clip.mp4", random_state=4)
    _, rendered = render_frames(sc, random_state=4)  # the same frames, before the codec
    side = json.loads(paths["sidecar"].read_text())
    return side, list(rendered), _read_video(paths["video"])


def _oracle_errors(frames, f):
    """Half-maximum reflex edges measured on a pupil row band minus the sidecar edges (px)."""
    errors = []
    for i, frame in enumerate(frames):
        # measurable: lit enough that 8-bit quantisation does not dominate the edge
        if f["reflex_fills_pupil"][i] or f["reflex_luminance"][i] < 0.15:
            continue
        cx, cy = f["pupil_center_px"][i]
        r = f["pupil_radius_px"][i]
        lin = (frame[..., 2].astype(float) / 255.0) ** 2  # the camera's tone curve is power 1/2
        # rows below the glint, across the vertical band; chord kept inside the pupil
        rows = np.arange(int(round(cy + 0.45 * r)), int(round(cy + 0.65 * r)) + 1)
        x0, x1 = int(np.ceil(cx - 0.7 * r)), int(np.floor(cx + 0.7 * r))
        profile = lin[rows, x0 : x1 + 1].mean(0)
        for edge in f["reflex_edges_px"][i]:
            if edge[0] is None or abs(edge[0] - cx) > 0.55 * r:
                continue
            found = _half_max_crossing(profile, np.arange(x0, x1 + 1), edge[0])
            errors.append(found - edge[0])
    return np.asarray(errors)


def test_retino_oracle_reflex_edges_match_sidecar(easy_clip):
    """Half-maximum edges measured in the rendered frames agree with the sidecar within 1 px;
    after mp4v compression (4:2:0 chroma, the reflex is red) most still do."""
    side, rendered, decoded = easy_clip
    f = side["frames"]
    assert len(decoded) == len(rendered) == side["render"]["n_frames"] == 30
    errors = _oracle_errors(rendered, f)
    assert errors.size >= 4
    assert np.max(np.abs(errors)) < 1.0
    coded = _oracle_errors(decoded, f)
    assert coded.size == errors.size
    assert np.median(np.abs(coded)) < 0.5 and np.mean(np.abs(coded) < 1.0) >= 0.75


def test_retino_markers_detected_where_the_sidecar_says(tmp_path):
    """A realistic 720p clip: >= 3 of the filmed eye's markers (enough for the homography) in
    >= 95 % of frames, all 4 in most, detected corners within 1 px of the sidecar."""
    sc = make_scenario(-2.0, eye="OD", width=1280, height=720, duration_s=0.67, random_state=11)
    paths = simulate_clip(sc, tmp_path / "r.mp4", random_state=12)
    side = json.loads(paths["sidecar"].read_text())
    frames = _read_video(paths["video"])
    ids_truth = side["frames"]["marker_ids"]
    params = cv2.aruco.DetectorParameters()
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_SUBPIX
    detector = cv2.aruco.ArucoDetector(FRAME_V1.aruco_dictionary(), params)
    usable, complete, errs = 0, 0, []
    for i, frame in enumerate(frames):
        corners, ids, _ = detector.detectMarkers(frame)
        found = {} if ids is None else dict(zip(ids.ravel().tolist(), corners, strict=True))
        seen = len(set(FRAME_V1.marker_ids["OD"]) & set(found))
        usable += seen >= 3
        complete += seen == 4
        for mid, quad in found.items():
            truth = np.asarray(side["frames"]["marker_corners_px"][i][ids_truth.index(mid)])
            errs.append(np.abs(quad[0] - truth).max())
    assert usable >= 0.95 * len(frames)
    assert complete >= 0.8 * len(frames)
    assert np.median(errs) < 1.0


def test_retino_truth_follows_the_optics():
    """Reflex centre vs beam at the pupil: slope r = u/((u+d)(1+Kd)); edges = c ± half-max width."""
    sc = Scenario(power_d=-1.0, working_distance_m=0.33, n_frames=25,
                  camera=CameraModel.from_fov(320, 180))  # fmt: skip
    ren = ClipRenderer(sc, random_state=5)
    t = ren.truth()
    slope = np.polyfit(t["beam_pupil_mm"], t["reflex_center_mm"], 1)[0]
    r = optics.sweep_ratio(-1.0, working_distance_m=0.33)
    assert slope == pytest.approx(r, rel=0.03)  # the hand changes d by a few mm
    ok = np.isfinite(t["reflex_edges_mm"]).all(1)
    np.testing.assert_allclose(
        np.diff(t["reflex_edges_mm"][ok], axis=1).ravel(), 2 * t["reflex_edge_half_width_mm"][ok]
    )
    # the beam on the paper and at the pupil obey the parallax relation about the aperture
    xa = t["camera_center_mm"][:, 0]
    d = t["working_distance_m"] * 1000
    pupil = optics.beam_to_pupil_plane(t["beam_paper_mm"], xa, working_distance_m=d,
                                       vertex_distance_m=12.0)  # fmt: skip
    np.testing.assert_allclose(pupil, t["beam_pupil_mm"], atol=1e-6)
    # the pose is OpenCV's: projecting the markers with rvec/tvec gives the stored corners
    ids, corners = ren.marker_table()
    pts = np.c_[corners.reshape(-1, 2), np.zeros(corners.size // 2)]
    proj, _ = cv2.projectPoints(pts, t["camera_rvec"][3], t["camera_tvec_mm"][3],
                                sc.camera.matrix, None)  # fmt: skip
    np.testing.assert_allclose(proj.reshape(-1, 4, 2), t["marker_corners_px"][3], atol=1e-6)


def test_retino_neutral_eye_fills_the_pupil():
    k = optics.neutral_power(0.35)
    steady = HandMotion(tremor_mm=0.0, distance_drift_mm=0.0)  # d stays exactly 0.35 m
    ren = ClipRenderer(Scenario(power_d=k, n_frames=20, camera=CameraModel.from_fov(320, 180),
                                motion=steady), random_state=1)  # fmt: skip
    t = ren.truth()
    lit = t["reflex_visible"]
    assert lit.any() and t["reflex_fills_pupil"][lit].all()
    assert np.isnan(t["reflex_edges_mm"][lit]).all()


def test_retino_vertical_meridian_moves_along_y():
    sc = Scenario(power_d=2.0, meridian_deg=90, n_frames=15, camera=CameraModel.from_fov(320, 180))
    ren = ClipRenderer(sc, random_state=2)
    frame = ren.render(7)
    assert frame.shape == (180, 320, 3) and frame.dtype == np.uint8
    t = ren.truth()
    assert np.ptp(t["beam_paper_mm"]) > 5  # the beam sweeps in y
    assert np.ptp(np.rad2deg(np.deg2rad(t["pitch_deg"]))) > np.ptp(t["yaw_deg"])


def test_retino_cohort_is_clinically_spread():
    rows = draw_cohort(40, random_state=1)
    power = np.array([r["power_d"] for r in rows])
    d = np.array([r["working_distance_m"] for r in rows])
    assert power.min() >= -6 and power.max() <= 5 and np.ptp(power) > 7
    assert np.sum(np.abs(power + 1 / d) <= 0.6) >= 4  # near neutrality
    assert np.sum(np.abs(power) <= 0.75) >= 4  # near emmetropia
    assert {r["eye"] for r in rows} == {"OD", "OS"}
    assert d.min() >= 0.30 and d.max() <= 0.40
    assert all(2.0 <= r["pupil_radius_mm"] <= 3.5 for r in rows)
    for r in rows:
        expected = optics.meridional_power(r["sphere_d"], r["cylinder_d"], r["axis_deg"], 0)
        assert r["power_d"] == pytest.approx(np.clip(expected, -6, 5))
    both = draw_cohort(3, meridians="both", random_state=1)
    assert [r["meridian_deg"] for r in both] == [0, 90, 0, 90, 0, 90]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"working_distance_m": -0.35}, "working distance"),
        ({"eye": "left"}, "unknown eye"),
        ({"pupil_radius_mm": 0.1}, "pupil radius"),
        ({"meridian_deg": 45}, "meridian"),
        ({"source_distance_m": -1}, "source distance"),
        ({"difficulty": "insane"}, "difficulty"),
        ({"duration_s": 0}, "duration"),
    ],
)
def test_retino_impossible_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_scenario(1.0, **kwargs)


def test_retino_pupil_larger_than_iris():
    with pytest.raises(ValueError, match="smaller than the iris"):
        EyeModel(pupil_radius_mm=4.5, iris_radius_mm=4.0)


def test_retino_simulate_command(tmp_path, run_cli):
    out = tmp_path / "cohort"
    code, stdout, _ = run_cli("retino", "simulate", "--n", "2", "--seed", "1", "--out", str(out),
                              "--resolution", "320x180", "--duration", "0.3", "--json", "--quiet")  # fmt: skip
    assert code == 0
    lines = [json.loads(line) for line in stdout.splitlines()]
    assert len(lines) == 2 and all(isinstance(x["power_d"], float) for x in lines)
    with open(out / "manifest.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    for col in ("video", "eye", "power_d", "working_distance_m", "source_distance_m",
                "camera_profile", "meridian_deg", "sphere_d", "cylinder_d", "axis_deg"):  # fmt: skip
        assert col in rows[0]
    profile = json.loads((out / rows[0]["camera_profile"]).read_text())
    assert set(profile) == {"fx", "fy", "cx", "cy", "width", "height"}
    assert (profile["width"], profile["height"]) == (320, 180)
    side = json.loads((out / rows[0]["video"]).with_suffix(".json").read_text())
    for key in ("power_d", "working_distance_m", "source_distance_m", "eye", "pupil_radius_mm"):
        assert key in side["truth"]
    assert side["truth"]["power_d"] == pytest.approx(float(rows[0]["power_d"]))
    assert len(_read_video(out / rows[0]["video"])) == 9
    assert (out / "config.json").is_file()
    code, _, err = run_cli("retino", "simulate", "--power", "1", "--eye", "OX", "--out",
                           str(tmp_path / "x"), "--resolution", "320x180")  # fmt: skip
    assert code == 2 and "unknown eye" in err
    code, _, err = run_cli("retino", "simulate", "--out", str(tmp_path / "y"), "--fps", "-5")
    assert code == 2 and "--fps" in err


@pytest.mark.parametrize("offset_d", [0.0, 0.003, -0.003, 0.03])
def test_retino_renders_near_neutrality(offset_d):
    """K + 1/d → 0 sends the band centre to infinity; the clip must still render.

    Regression: the renderer projected that centre and stopped with 'a point lies behind
    the camera' (found on eye085 of draw_cohort(100, random_state=2022)).
    """
    d = 0.307
    sc = make_scenario(
        -1.0 / d + offset_d,
        working_distance_m=d,
        width=320,
        height=180,
        fps=15.0,
        duration_s=1.0,
        random_state=563360477,
    )
    _, frames = render_frames(sc, random_state=563360477)
    for frame in frames:
        assert frame.shape == (180, 320, 3) and frame.dtype == np.uint8


@pytest.mark.parametrize(
    ("offset_d", "motion"), [(0.1, "neutral"), (1.0, "with"), (-1.0, "against")]
)
def test_retino_sidecar_motion_label(tmp_path, offset_d, motion):
    d = 0.33
    sc = make_scenario(
        -1.0 / d + offset_d, working_distance_m=d, width=320, height=180, fps=10.0, duration_s=0.5
    )
    simulate_clip(sc, tmp_path / "c.mp4", random_state=0)
    truth = json.loads((tmp_path / "c.json").read_text())["truth"]
    assert truth["motion"] == motion and truth["neutral_band_d"] == 0.25
