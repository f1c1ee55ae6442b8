"""Frame renderer: static scene once per clip, moving light per frame, then the camera.

Per clip, :class:`ClipRenderer` precomputes every camera pose, the optics of every frame
(beam on the paper and the pupil plane, reflex band, glint) and the albedo maps of the two
planes. Per frame it

1. relights the paper texture only where the beam band is (a region of interest) and
   relights the small pupil-plane texture (beam, red reflex, corneal glint);
2. warps the paper layer to the image with its plane homography and the pupil layer, seen
   through the eye opening, with its own (parallax is exact, not a scale factor);
3. applies the camera: motion blur along the image motion, optical blur, exposure and
   vignetting, read noise, gamma, shot noise in the gamma domain (gamma ≈ a square root,
   which makes Poisson noise nearly uniform there), quantisation and optional JPEG loss.

Moving light is blurred in the world by its motion relative to the camera-induced image
motion, so the image smear of the beam and the reflex matches their true image motion.
``cache_static=False`` gives the straightforward baseline that rebuilds and relights the
whole scene every frame (used by the benchmark).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ophthalmo.retinoscopy import optics
from ophthalmo.retinoscopy.camera import (
    CameraModel,
    plane_homography,
    project_points,
    rotation_matrix,
)
from ophthalmo.retinoscopy.frame import EYES, FRAME_V1, FrameSpec
from ophthalmo.retinoscopy.motion import HandMotion, sweep_path
from ophthalmo.retinoscopy.scene import EyeModel, PlaneGrid, eye_albedo, paper_albedo

__all__ = ["CameraEffects", "ClipRenderer", "Instrument", "Scenario"]

# Sub-exposure samples (trapezoid rule over the exposure interval).
_SUB = np.array([-0.5, -0.25, 0.0, 0.25, 0.5])
_SUB_W = np.array([0.125, 0.25, 0.25, 0.25, 0.125])
_MID = 2


@dataclass(frozen=True)
class Instrument:
    """The streak retinoscope (lengths mm except ``source_distance_m``).

    ``source_width_mm`` is w (filament image); ``aperture_mm`` the exit aperture whose blur
    widens the beam on the face; ``beam_irradiance`` the beam's peak irradiance relative to
    a white card lit at 1.
    """

    source_distance_m: float = optics.DEFAULT_SOURCE_DISTANCE_M
    source_width_mm: float = 1.0
    aperture_mm: float = 4.0
    streak_half_length_mm: float = 35.0
    beam_irradiance: float = 1.0

    def __post_init__(self) -> None:
        if not 0.05 <= self.source_distance_m <= 5.0:
            raise ValueError(
                f"source distance must be in [0.05, 5] m, got {self.source_distance_m}"
            )
        for name in ("source_width_mm", "aperture_mm", "streak_half_length_mm", "beam_irradiance"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass(frozen=True)
class CameraEffects:
    """What the phone camera does to the light (linear units: white card under the beam ≈ 0.85).

    ``read_noise`` is in linear units, ``shot_noise`` in the gamma-encoded [0, 1] domain.
    ``jpeg_quality`` adds an extra lossy stage (None: only the video codec).
    """

    exposure_s: float = 1.0 / 120.0
    gain: float = 1.0
    ambient: float = 0.1
    read_noise: float = 0.004
    shot_noise: float = 0.012
    optical_blur_px: float = 0.7
    vignetting: float = 0.25
    gamma: float = 2.0
    jpeg_quality: int | None = None
    mount_roll_deg: float = 0.0

    def __post_init__(self) -> None:
        if not 0 < self.exposure_s <= 0.1:
            raise ValueError(f"exposure must be in (0, 0.1] s, got {self.exposure_s}")
        for name in ("gain", "gamma"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive")
        for name in ("ambient", "read_noise", "shot_noise", "optical_blur_px", "vignetting"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.jpeg_quality is not None and not 5 <= self.jpeg_quality <= 100:
            raise ValueError("jpeg_quality must be in [5, 100]")


@dataclass(frozen=True)
class Scenario:
    """Everything that defines one clip's truth.

    ``meridian_deg`` is the swept meridian: 0 (streak vertical, horizontal sweep) or 90
    (streak horizontal, vertical sweep). ``power_d`` is K of that meridian.
    """

    power_d: float
    working_distance_m: float = 0.35
    meridian_deg: int = 0
    eye: EyeModel = field(default_factory=EyeModel)
    camera: CameraModel = field(default_factory=lambda: CameraModel.from_fov(1280, 720))
    fps: float = 30.0
    n_frames: int = 120
    instrument: Instrument = field(default_factory=Instrument)
    effects: CameraEffects = field(default_factory=CameraEffects)
    motion: HandMotion = field(default_factory=HandMotion)
    panel_pitch_mm: float = 66.0

    def __post_init__(self) -> None:
        if not np.isfinite(self.power_d) or abs(self.power_d) > 25:
            raise ValueError(f"power must be a finite value within ±25 D, got {self.power_d}")
        if not np.isfinite(self.working_distance_m) or self.working_distance_m <= 0:
            raise ValueError(f"working distance must be positive, got {self.working_distance_m} m")
        if not 0.15 <= self.working_distance_m <= 1.0:
            raise ValueError(
                f"working distance {self.working_distance_m} m is outside the plausible 0.15-1.0 m"
            )
        if self.meridian_deg not in (0, 90):
            raise ValueError(
                f"meridian must be 0 (horizontal) or 90 (vertical), got {self.meridian_deg}"
            )
        if not 1 <= self.fps <= 240:
            raise ValueError(f"frame rate must be in [1, 240] fps, got {self.fps}")
        if self.n_frames < 1:
            raise ValueError(f"n_frames must be >= 1, got {self.n_frames}")
        if self.effects.exposure_s > 1.0 / self.fps:
            raise ValueError("exposure time is longer than the frame interval")
        if self.panel_pitch_mm < 2 * FRAME_V1.panel_half_mm[0]:
            raise ValueError("panels would overlap: panel_pitch_mm < panel width")

    @property
    def sweep_axis(self) -> int:
        return 0 if self.meridian_deg == 0 else 1


def _trapezoid(x: np.ndarray, plateau: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Unit trapezoid: 1 for |x| ≤ plateau, linear to 0 at |x| = half."""
    ramp = np.maximum(half - plateau, 1e-9)
    return np.clip((half - np.abs(x)) / ramp, 0.0, 1.0)


def _box_gauss_kernel(length: float, sigma: float) -> np.ndarray:
    """1D kernel: a box of (fractional) ``length`` px convolved with a Gaussian of ``sigma``,
    integrated over each pixel."""
    from scipy.special import erf

    sigma = max(float(sigma), 0.25)
    half = int(np.ceil(length / 2 + 3.5 * sigma))
    fine = (np.arange(-(half * 8 + 4), half * 8 + 4) + 0.5) / 8.0  # 8 samples per pixel
    if length > 1e-3:
        s2 = sigma * np.sqrt(2.0)
        prof = erf((fine + length / 2) / s2) - erf((fine - length / 2) / s2)
    else:
        prof = np.exp(-0.5 * (fine / sigma) ** 2)
    k = prof.reshape(2 * half + 1, 8).sum(1)
    return (k / k.sum()).astype(np.float32)


class ClipRenderer:
    """Render the frames of one clip and report their truth.

    Parameters
    ----------
    scenario : the clip's truth and rendering parameters.
    spec : frame specification (the printed panels).
    random_state : seed or generator for motion, scene texture and noise.
    cache_static : build the static scene once (True) or every frame (baseline).
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        spec: FrameSpec = FRAME_V1,
        random_state: int | np.random.Generator | None = None,
        cache_static: bool = True,
    ) -> None:
        spec.validate()
        self.sc = scenario
        self.spec = spec
        self.cache_static = cache_static
        self.rng = np.random.default_rng(random_state)
        self._texture_seed = int(self.rng.integers(2**31))
        self.vertex_mm = spec.vertex_distance_mm
        if scenario.working_distance_m * 1000 <= self.vertex_mm + 50:
            raise ValueError("working distance must exceed the vertex distance by at least 5 cm")
        self._poses()
        self._optics()
        self._grids()
        self._build_static()
        self._camera_stage()

    # ------------------------------------------------------------------ geometry per pose
    def _poses(self) -> None:
        sc = self.sc
        n = sc.n_frames
        self.t = np.arange(n) / sc.fps
        times = (self.t[:, None] + _SUB[None, :] * sc.effects.exposure_s).ravel()
        d0 = sc.working_distance_m * 1000.0
        path = sweep_path(
            times,
            axis=sc.sweep_axis,
            paper_distance_mm=d0 - self.vertex_mm,
            motion=sc.motion,
            random_state=self.rng,
        )
        roll = np.deg2rad(sc.effects.mount_roll_deg)
        self.R = np.stack(
            [rotation_matrix(y, p, roll) for y, p in zip(path.yaw, path.pitch, strict=True)]
        )
        self.C = path.position_mm.copy()
        self.C[:, 2] += self.vertex_mm - d0
        self.R = self.R.reshape(n, len(_SUB), 3, 3)
        self.C = self.C.reshape(n, len(_SUB), 3)
        self.pass_index = path.pass_index.reshape(n, len(_SUB))[:, _MID]
        self.direction = path.direction.reshape(n, len(_SUB))[:, _MID]
        self.yaw = path.yaw.reshape(n, len(_SUB))[:, _MID]
        self.pitch = path.pitch.reshape(n, len(_SUB))[:, _MID]

    def _beam_at(self, z_mm: float) -> np.ndarray:
        """Beam centre (x, y) on the plane z for every pose, shape (n, sub, 2)."""
        axis_dir = self.R[..., 2, :]  # the optical axis in world coordinates
        s = (z_mm - self.C[..., 2]) / axis_dir[..., 2]
        return self.C[..., :2] + axis_dir[..., :2] * s[..., None]

    def _optics(self) -> None:
        sc, a = self.sc, self.sc.sweep_axis
        ins, eye = sc.instrument, sc.eye
        off = np.asarray(eye.offset_mm, dtype=float)
        axis_dir = self.R[..., 2, :]
        self.dist_mm = self.vertex_mm - self.C[..., 2]  # peephole → pupil plane
        paper_mm = -self.C[..., 2]
        u_mm = ins.source_distance_m * 1000.0
        x_p = self.C[..., a] - off[a]
        x_s = x_p - u_mm * axis_dir[..., a] / axis_dir[..., 2]
        band = optics.reflex_band(
            sc.power_d,
            working_distance_m=self.dist_mm / 1000.0,
            source_distance_m=ins.source_distance_m,
            x_peephole_m=x_p / 1000.0,
            x_source_m=x_s / 1000.0,
            pupil_radius_m=eye.pupil_radius_mm / 1000.0,
            source_width_m=ins.source_width_mm / 1000.0,
        )
        self.reflex_c = np.asarray(band.center) * 1000.0 + off[a]
        self.reflex_half = np.asarray(band.half_width) * 1000.0
        self.reflex_plateau = np.asarray(band.plateau_half_width) * 1000.0
        self.reflex_edge = np.asarray(band.edge_half_width) * 1000.0
        self.reflex_lum = np.asarray(
            optics.reflex_luminance(
                sc.power_d,
                working_distance_m=self.dist_mm / 1000.0,
                source_distance_m=ins.source_distance_m,
                pupil_radius_m=eye.pupil_radius_mm / 1000.0,
                source_width_m=ins.source_width_mm / 1000.0,
            )
        )
        self.beam_paper = self._beam_at(0.0)
        self.beam_pupil = self._beam_at(self.vertex_mm)

        def widths(dist: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            src = ins.source_width_mm * dist / u_mm
            apt = ins.aperture_mm * (1.0 + dist / u_mm)
            return 0.5 * (src + apt), 0.5 * np.abs(src - apt), 0.5 * np.maximum(src, apt)

        self.beam_paper_w = widths(paper_mm)
        self.beam_pupil_w = widths(self.dist_mm)
        # Share of the pupil chord lit by the beam: the reflex needs light in the pupil.
        s = np.linspace(-1, 1, 41)
        chord = np.sqrt(1 - s**2)
        xs = off[a] + eye.pupil_radius_mm * s
        half, plat, _ = self.beam_pupil_w
        prof = _trapezoid(
            xs[None, None, :] - self.beam_pupil[..., a, None], plat[..., None], half[..., None]
        )
        self.illum = (prof * chord).sum(-1) / chord.sum()
        # Corneal glint (Purkinje I): the cornea (R = 7.8 mm) images source and camera.
        r_c = 7.8
        x_cam = self.C[..., :2] - off
        x_src = x_cam - u_mm * axis_dir[..., :2] / axis_dir[..., 2:3]
        self.glint = off + 0.25 * r_c * (
            x_cam / self.dist_mm[..., None] + x_src / (self.dist_mm + u_mm)[..., None]
        )
        g_half, g_plat, _ = self.beam_pupil_w
        self.glint_lit = _trapezoid(self.glint[..., a] - self.beam_pupil[..., a], g_plat, g_half)

    # ------------------------------------------------------------------ static scene
    def _grids(self) -> None:
        cam = self.sc.camera
        corners = np.array(
            [[0, 0], [cam.width - 1, 0], [cam.width - 1, cam.height - 1], [0, cam.height - 1]],
            float,
        )
        pts = []
        scale = 0.0
        for i in range(self.sc.n_frames):
            for k in (0, len(_SUB) - 1):
                h = plane_homography(cam, self.R[i, k], self.C[i, k], z_mm=0.0)
                inv = np.linalg.inv(h)
                q = np.c_[corners, np.ones(4)] @ inv.T
                pts.append(q[:, :2] / q[:, 2:3])
                scale = max(scale, cam.fx / (-self.C[i, k, 2]))
        pts = np.concatenate(pts)
        lo, hi = pts.min(0) - 3.0, pts.max(0) + 3.0
        # ~1.25 texture pixels per image pixel, capped to keep 4K clips in memory.
        ppm = 1.25 * scale
        area = float(np.prod(hi - lo))
        ppm = min(ppm, np.sqrt(16e6 / area))
        self._oversample = ppm / scale
        shape = (int(np.ceil((hi[1] - lo[1]) * ppm)), int(np.ceil((hi[0] - lo[0]) * ppm)))
        self.paper_grid = PlaneGrid((float(lo[0]), float(lo[1])), float(ppm), shape)
        ox, oy = self.spec.opening_half_mm
        ex, ey = ox * 1.15 + 6.0, oy * 1.15 + 6.0
        self.eye_grid = PlaneGrid(
            (-ex, -ey), float(ppm), (int(np.ceil(2 * ey * ppm)), int(np.ceil(2 * ex * ppm)))
        )

    def _build_static(self) -> None:
        rng = np.random.default_rng(self._texture_seed)
        eye = self.sc.eye
        fellow = EyeModel(
            eye=EYES[1 - EYES.index(eye.eye)],
            pupil_radius_mm=eye.pupil_radius_mm,
            iris_radius_mm=eye.iris_radius_mm,
            iris_bgr=eye.iris_bgr,
        )
        albedo, alpha = paper_albedo(
            self.paper_grid,
            self.spec,
            eye.eye,
            fellow_model=fellow,
            panel_pitch_mm=self.sc.panel_pitch_mm,
            rng=rng,
        )
        self.paper_albedo = albedo
        amb = self.sc.effects.ambient
        if self.sc.effects.optical_blur_px > 0:
            # The lens blur of the static scene is baked into its texture (texture pixels are
            # smaller than image pixels by the oversampling factor).
            import cv2

            sigma = self.sc.effects.optical_blur_px * self._oversample
            albedo = cv2.GaussianBlur(albedo, (0, 0), sigma)
            alpha = cv2.GaussianBlur(alpha, (0, 0), sigma)
            self.paper_albedo = albedo
        self.paper_tex = np.ascontiguousarray(albedo * amb, dtype=np.float32)
        self.paper_alpha = alpha.astype(np.float32)
        self._dirty: tuple[slice, slice] | None = None
        x, y = self.eye_grid.centers()
        off = np.asarray(eye.offset_mm)
        self.eye_albedo, self.pupil_cov = eye_albedo(x - off[0], y - off[1], eye, rng=rng)
        if self.sc.effects.optical_blur_px > 0:
            import cv2

            sigma = self.sc.effects.optical_blur_px * self._oversample
            self.eye_albedo = cv2.GaussianBlur(self.eye_albedo, (0, 0), sigma)
            self.pupil_cov = cv2.GaussianBlur(self.pupil_cov, (0, 0), sigma)

    def _camera_stage(self) -> None:
        cam, fx = self.sc.camera, self.sc.effects
        h, w = cam.height, cam.width
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        rr = ((xx - cam.cx) ** 2 + (yy - cam.cy) ** 2) / (cam.cx**2 + cam.cy**2)
        gain = fx.gain * (1.0 - fx.vignetting * rr)
        self.gain_map = np.repeat(gain[..., None], 3, axis=2).astype(np.float32)
        self.pad = 32
        nrng = np.random.default_rng(self._texture_seed + 1)
        self.noise_bank = [
            nrng.standard_normal((h + self.pad, w + self.pad, 3), dtype=np.float32)
            for _ in range(2)
        ]
        self.noise_rng = np.random.default_rng(self._texture_seed + 2)
        self.inv_gamma = 1.0 / fx.gamma

    # ------------------------------------------------------------------ per-frame light
    def _relative_positions(self, i: int, points: np.ndarray, z_mm: float) -> np.ndarray:
        """World positions along the sweep axis that reproduce each sub-exposure point's image
        motion *relative to the static scene* when seen by the mid-exposure camera."""
        cam, a = self.sc.camera, self.sc.sweep_axis
        mid_h = plane_homography(cam, self.R[i, _MID], self.C[i, _MID], z_mm=z_mm)
        inv = np.linalg.inv(mid_h)
        out = np.empty(len(_SUB))
        anchor = np.array([points[_MID, 0], points[_MID, 1], z_mm])
        for k in range(len(_SUB)):
            p = np.array([points[k, 0], points[k, 1], z_mm])
            pix = project_points(p, cam, self.R[i, k], self.C[i, k])
            pix_static = project_points(anchor, cam, self.R[i, k], self.C[i, k])
            pix_mid = project_points(anchor, cam, self.R[i, _MID], self.C[i, _MID])
            q = inv @ np.array([*(pix - pix_static + pix_mid), 1.0])
            out[k] = q[a] / q[2]
        return out

    def _beam_profile(
        self, coords: np.ndarray, i: int, positions: np.ndarray, widths
    ) -> np.ndarray:
        half, plat, _ = (w_[i] for w_ in widths)
        prof = np.zeros(coords.size)
        for k in range(len(_SUB)):
            prof += _SUB_W[k] * _trapezoid(coords - positions[k], plat[k], half[k])
        return prof

    def _streak_profile(self, coords: np.ndarray, center: float) -> np.ndarray:
        length = self.sc.instrument.streak_half_length_mm
        return np.clip((length - np.abs(coords - center)) / 8.0, 0.0, 1.0)

    def _light_paper(self, i: int) -> np.ndarray:
        sc, a = self.sc, self.sc.sweep_axis
        b = 1 - a
        grid = self.paper_grid
        if not self.cache_static:
            self._build_static()
        tex = self.paper_tex
        if self._dirty is not None:  # undo the previous frame's beam
            rs, cs = self._dirty
            tex[rs, cs] = self.paper_albedo[rs, cs] * sc.effects.ambient
        pos = self._relative_positions(i, self.beam_paper[i], 0.0)
        half = self.beam_paper_w[0][i].max()
        lo, hi = pos.min() - half - 0.5, pos.max() + half + 0.5
        center_b = self.beam_paper[i, _MID, b]
        length = sc.instrument.streak_half_length_mm
        if self.cache_static:
            a0, a1 = grid.index_range(lo, hi, axis=a)
            b0, b1 = grid.index_range(center_b - length, center_b + length, axis=b)
        else:  # the baseline relights the whole texture
            a0, a1 = 0, grid.shape[1 - a]
            b0, b1 = 0, grid.shape[a]
        if a1 <= a0 or b1 <= b0:
            self._dirty = None
            return tex
        xs, ys = grid.centers()
        along = (xs if a == 0 else ys)[a0:a1]
        across = (ys if a == 0 else xs)[b0:b1]
        p_a = self._beam_profile(along, i, pos, self.beam_paper_w)
        p_b = self._streak_profile(across, center_b)
        light = sc.instrument.beam_irradiance * np.outer(p_b, p_a).astype(np.float32)
        if a == 1:
            light = light.T
        rs = slice(b0, b1) if a == 0 else slice(a0, a1)
        cs = slice(a0, a1) if a == 0 else slice(b0, b1)
        tex[rs, cs] = self.paper_albedo[rs, cs] * (sc.effects.ambient + light)[..., None]
        self._dirty = (rs, cs)
        return tex

    def _light_eye(self, i: int) -> np.ndarray:
        sc, a = self.sc, self.sc.sweep_axis
        b = 1 - a
        grid = self.eye_grid
        xs, ys = grid.centers()
        along, across = (xs, ys) if a == 0 else (ys, xs)
        pos = self._relative_positions(i, self.beam_pupil[i], self.vertex_mm)
        p_a = self._beam_profile(along, i, pos, self.beam_pupil_w)
        p_b = self._streak_profile(across, self.beam_pupil[i, _MID, b])
        light = sc.instrument.beam_irradiance * np.outer(p_b, p_a).astype(np.float32)
        if a == 1:
            light = light.T
        img = self.eye_albedo * (sc.effects.ambient + light)[..., None]
        # Red reflex: the band moves with the beam (relative motion as for the beam).
        eye = sc.eye
        lum = self.reflex_lum[i, _MID] * self.illum[i, _MID]
        if lum > 1e-4:
            off = np.asarray(eye.offset_mm)
            rho = eye.pupil_radius_mm
            lo, hi = off[a] - rho - 0.5, off[a] + rho + 0.5
            a0, a1 = grid.index_range(lo, hi, axis=a)
            b0, b1 = grid.index_range(off[b] - rho - 0.5, off[b] + rho + 0.5, axis=b)
            # Near neutrality the band centre runs off to infinity (c ∝ 1/(K + W)) together
            # with its half-width; only the edge near the pupil is seen. Move the centre to
            # just outside the pupil and shorten both half-widths by the same amount: the
            # in-pupil edge stays exactly where it was, and the projection stays finite.
            centre = self.reflex_c[i].copy()
            half = self.reflex_half[i].copy()
            plateau = self.reflex_plateau[i].copy()
            reach = 4.0 * rho
            shift = np.abs(centre - np.clip(centre, off[a] - reach, off[a] + reach))
            finite = np.isfinite(half)
            centre = np.clip(centre, off[a] - reach, off[a] + reach)
            half[finite] -= shift[finite]
            plateau[finite] -= shift[finite]
            cpts = np.zeros((len(_SUB), 2))
            cpts[:, a] = centre
            cpts[:, b] = off[b]
            cpos = self._relative_positions(i, cpts, self.vertex_mm)
            prof = np.zeros(a1 - a0)
            coords = along[a0:a1]
            for k in range(len(_SUB)):
                if np.isinf(half[k]):
                    prof += _SUB_W[k]
                elif half[k] > 0:  # else the shifted band no longer reaches the pupil
                    prof += _SUB_W[k] * _trapezoid(coords - cpos[k], plateau[k], half[k])
            band = np.broadcast_to(prof[None, :], (b1 - b0, a1 - a0))
            if a == 1:
                band = band.T
            rs = slice(b0, b1) if a == 0 else slice(a0, a1)
            cs = slice(a0, a1) if a == 0 else slice(b0, b1)
            fundus = np.asarray(eye.fundus_bgr, dtype=np.float32) * _REFLEX_GAIN * lum
            img[rs, cs] += (band * self.pupil_cov[rs, cs])[..., None] * fundus
        # Corneal glint: a short bright streak image, lit when the beam is on the cornea.
        g_lit = self.glint_lit[i, _MID]
        if g_lit > 1e-3:
            gx, gy = self.glint[i, _MID]
            sig = 0.12
            ext = (0.12, 0.5) if a == 0 else (0.5, 0.12)  # elongated along the streak
            c0, c1 = grid.index_range(gx - 4 * ext[0] - sig, gx + 4 * ext[0] + sig, axis=0)
            r0, r1 = grid.index_range(gy - 4 * ext[1] - sig, gy + 4 * ext[1] + sig, axis=1)
            if c1 > c0 and r1 > r0:
                gxs = np.exp(-0.5 * ((xs[c0:c1] - gx) / ext[0]) ** 2)
                gys = np.exp(-0.5 * ((ys[r0:r1] - gy) / ext[1]) ** 2)
                spot = (3.0 * g_lit * np.outer(gys, gxs)).astype(np.float32)
                img[r0:r1, c0:c1] += spot[..., None]
        return img

    # ------------------------------------------------------------------ the frame
    def render_linear(self, i: int) -> np.ndarray:
        """Frame ``i`` as linear BGR float32 before the camera's noise and tone curve."""
        import cv2

        cam = self.sc.camera
        tex = self._light_paper(i)
        h_paper = plane_homography(cam, self.R[i, _MID], self.C[i, _MID], z_mm=0.0)
        h_paper = h_paper @ self.paper_grid.to_mm()
        out = cv2.warpPerspective(
            tex, h_paper, (cam.width, cam.height), flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REPLICATE,
        )  # fmt: skip
        # The eye behind the opening, warped only where the opening can appear.
        ox, oy = self.spec.opening_half_mm
        corners = np.array([[-ox, -oy, 0], [ox, -oy, 0], [ox, oy, 0], [-ox, oy, 0]], float)
        pix = project_points(corners, cam, self.R[i, _MID], self.C[i, _MID])
        x0 = int(max(np.floor(pix[:, 0].min()) - 2, 0))
        y0 = int(max(np.floor(pix[:, 1].min()) - 2, 0))
        x1 = int(min(np.ceil(pix[:, 0].max()) + 3, cam.width))
        y1 = int(min(np.ceil(pix[:, 1].max()) + 3, cam.height))
        if x1 > x0 and y1 > y0:
            eye_img = self._light_eye(i)
            h_eye = plane_homography(cam, self.R[i, _MID], self.C[i, _MID], z_mm=self.vertex_mm)
            shift = np.array([[1.0, 0, -x0], [0, 1.0, -y0], [0, 0, 1.0]])
            h_eye = shift @ h_eye @ self.eye_grid.to_mm()
            size = (x1 - x0, y1 - y0)
            roi = cv2.warpPerspective(eye_img, h_eye, size, flags=cv2.INTER_LINEAR)
            h_alpha = shift @ h_paper
            alpha = cv2.warpPerspective(
                self.paper_alpha, h_alpha, size, flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_CONSTANT, borderValue=1.0,
            )  # fmt: skip
            out[y0:y1, x0:x1] += roi * (1.0 - alpha)[..., None]
        return out

    def image_motion(self, i: int) -> np.ndarray:
        """Image displacement (px) of the opening centre over the exposure of frame ``i``."""
        p = np.array([0.0, 0.0, 0.0])
        first = project_points(p, self.sc.camera, self.R[i, 0], self.C[i, 0])
        last = project_points(p, self.sc.camera, self.R[i, -1], self.C[i, -1])
        return last - first

    def render(self, i: int) -> np.ndarray:
        """Frame ``i`` as the camera delivers it: uint8 BGR."""
        import cv2

        fx = self.sc.effects
        lin = self.render_linear(i)
        du, dv = np.abs(self.image_motion(i))
        # Motion blur (the lens blur is already in the textures); one pass when the image
        # moves along one axis only, as it mostly does during a sweep.
        border = cv2.BORDER_REPLICATE
        if du >= 0.5 and dv >= 0.5:
            kx, ky = _box_gauss_kernel(du, 0.0), _box_gauss_kernel(dv, 0.0)
            lin = cv2.sepFilter2D(lin, -1, kx, ky, borderType=border)
        elif du >= 0.5:
            lin = cv2.filter2D(lin, -1, _box_gauss_kernel(du, 0.0)[None, :], borderType=border)
        elif dv >= 0.5:
            lin = cv2.filter2D(lin, -1, _box_gauss_kernel(dv, 0.0)[:, None], borderType=border)
        lin = cv2.multiply(lin, self.gain_map)
        h, w = lin.shape[:2]
        if fx.read_noise > 0:
            oy, ox = self.noise_rng.integers(0, self.pad, 2)
            lin = cv2.scaleAdd(self.noise_bank[0][oy : oy + h, ox : ox + w], fx.read_noise, lin)
        np.clip(lin, 0.0, 1.0, out=lin)  # (cv2.min/max with a float apply to channel 0 only)
        # A power-1/2 tone curve is one SIMD square root; other gammas take the slow pow.
        disp = cv2.sqrt(lin) if self.inv_gamma == 0.5 else cv2.pow(lin, self.inv_gamma)
        if fx.shot_noise > 0:
            oy, ox = self.noise_rng.integers(0, self.pad, 2)
            disp = cv2.scaleAdd(self.noise_bank[1][oy : oy + h, ox : ox + w], fx.shot_noise, disp)
        np.maximum(disp, 0.0, out=disp)
        frame = cv2.convertScaleAbs(disp, alpha=255.0)
        if fx.jpeg_quality is not None:
            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, int(fx.jpeg_quality)])
            frame = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        return frame

    # ------------------------------------------------------------------ truth
    def truth(self) -> dict[str, np.ndarray]:
        """Per-frame ground truth at mid-exposure (see the sidecar format in the README)."""
        sc, a = self.sc, self.sc.sweep_axis
        b = 1 - a
        cam = sc.camera
        m = _MID
        eye = sc.eye
        off = np.asarray(eye.offset_mm, dtype=float)
        rho = eye.pupil_radius_mm
        c = self.reflex_c[:, m]
        e = self.reflex_edge[:, m]
        lo, hi = c - e, c + e
        inside = lambda v: np.where(np.abs(v - off[a]) < rho, v, np.nan)  # noqa: E731
        fills = (lo <= off[a] - rho) & (hi >= off[a] + rho)
        visible = (self.illum[:, m] * self.reflex_lum[:, m] > 0.02) & (
            (hi > off[a] - rho) & (lo < off[a] + rho)
        )
        edges = np.stack([inside(lo), inside(hi)], axis=1)
        edges[~visible] = np.nan
        beam_half = self.beam_paper_w[2][:, m]
        beam_edges = np.stack(
            [self.beam_paper[:, m, a] - beam_half, self.beam_paper[:, m, a] + beam_half], axis=1
        )
        # Probe lines: reflex edges on the pupil diameter along the sweep; beam edges on the
        # centre lines of the beam strips (horizontal sweep) or of the panel sides (vertical).
        probes = (
            [0.5 * (s[1] + s[3]) for s in self.spec.beam_strips_mm]
            if a == 0
            else [-0.5 * (self.spec.opening_half_mm[0] + self.spec.panel_half_mm[0]),
                  0.5 * (self.spec.opening_half_mm[0] + self.spec.panel_half_mm[0])]
        )  # fmt: skip
        n = sc.n_frames
        reflex_px = np.full((n, 2, 2), np.nan)
        beam_px = np.full((n, len(probes), 2, 2), np.nan)
        pupil_px = np.zeros((n, 2))
        pupil_r_px = np.zeros(n)
        ids, corners = self.marker_table()
        corners_px = np.zeros((n, len(ids), 4, 2))
        for i in range(n):
            R, C = self.R[i, m], self.C[i, m]
            for j in range(2):
                if np.isfinite(edges[i, j]):
                    p = np.zeros(3)
                    p[a], p[b], p[2] = edges[i, j], off[b], self.vertex_mm
                    reflex_px[i, j] = project_points(p, cam, R, C)
            for k, line in enumerate(probes):
                for j in range(2):
                    p = np.zeros(3)
                    p[a], p[b] = beam_edges[i, j], line
                    beam_px[i, k, j] = project_points(p, cam, R, C)
            centre = np.array([off[0], off[1], self.vertex_mm])
            pupil_px[i] = project_points(centre, cam, R, C)
            rim = centre + np.array([rho, 0.0, 0.0])
            pupil_r_px[i] = np.linalg.norm(project_points(rim, cam, R, C) - pupil_px[i])
            pts = np.c_[corners.reshape(-1, 2), np.zeros(corners.size // 2)]
            corners_px[i] = project_points(pts, cam, R, C).reshape(len(ids), 4, 2)
        rvecs = np.zeros((n, 3))
        import cv2

        for i in range(n):
            rvecs[i] = cv2.Rodrigues(self.R[i, m])[0].ravel()
        tvecs = -np.einsum("nij,nj->ni", self.R[:, m], self.C[:, m])
        return {
            "t_s": self.t,
            "pass_index": self.pass_index,
            "direction": self.direction,
            "camera_rvec": rvecs,
            "camera_tvec_mm": tvecs,
            "camera_center_mm": self.C[:, m],
            "working_distance_m": self.dist_mm[:, m] / 1000.0,
            "yaw_deg": np.rad2deg(self.yaw),
            "pitch_deg": np.rad2deg(self.pitch),
            "beam_paper_mm": self.beam_paper[:, m, a],
            "beam_pupil_mm": self.beam_pupil[:, m, a],
            "beam_edges_paper_mm": beam_edges,
            "beam_half_width_paper_mm": beam_half,
            "beam_edges_px": beam_px,
            "beam_probe_mm": np.asarray(probes),
            "reflex_center_mm": c,
            "reflex_half_width_mm": self.reflex_half[:, m],
            "reflex_edge_half_width_mm": e,
            "reflex_edges_mm": edges,
            "reflex_edges_px": reflex_px,
            "reflex_visible": visible,
            "reflex_fills_pupil": fills & visible,
            "reflex_luminance": self.reflex_lum[:, m] * self.illum[:, m],
            "pupil_illumination": self.illum[:, m],
            "pupil_center_px": pupil_px,
            "pupil_radius_px": pupil_r_px,
            "image_motion_px": np.stack([self.image_motion(i) for i in range(n)]),
            "marker_ids": np.asarray(ids),
            "marker_corners_px": corners_px,
        }

    def marker_table(self) -> tuple[list[int], np.ndarray]:
        """All marker IDs in the scene and their world corners (mm, z = 0), shape (n, 4, 2)."""
        eye = self.sc.eye.eye
        fellow = EYES[1 - EYES.index(eye)]
        side = 1.0 if eye == "OD" else -1.0
        ids, corners = [], []
        for e, dx in ((eye, 0.0), (fellow, side * self.sc.panel_pitch_mm)):
            for mid, pts in self.spec.marker_corners_mm(e).items():
                ids.append(mid)
                corners.append(pts + np.array([dx, 0.0]))
        return ids, np.asarray(corners)


#: Fundus radiance of an emmetrope's reflex relative to the beam on white card.
_REFLEX_GAIN = 0.35
