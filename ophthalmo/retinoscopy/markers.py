"""ArUco markers of the paper frame → which eye, camera pose, homographies, working distance.

Detection runs on a grey frame downscaled to a fixed width (fast and resolution-independent),
then the corners are refined to sub-pixel accuracy on the full-resolution frame. The pose
(``cv2.solvePnP`` with the planar IPPE solver) gives the homography of any plane parallel to
the frame (the paper at z = 0, the pupil δ behind it) and the distance from the camera to
each plane. When markers drop out (motion blur, the beam washing out a marker) the corners
of the previous frame are tracked with pyramidal Lucas–Kanade optical flow.

World coordinates are the filmed eye's panel coordinates (mm), see
:mod:`ophthalmo.retinoscopy.camera` and :mod:`ophthalmo.retinoscopy.frame`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ophthalmo.retinoscopy.camera import CameraModel, plane_homography
from ophthalmo.retinoscopy.frame import EYES, FRAME_V1, FrameSpec

__all__ = ["MarkerTracker", "Pose", "detect_markers", "estimate_pose", "identify_eye"]


@dataclass(frozen=True)
class Pose:
    """Camera pose for one frame: ``X_cam = R (X_world − C)`` (world = panel mm).

    ``source`` is ``"detected"`` (markers found by detection in this frame) or ``"tracked"``
    (corners carried over from the previous frame by optical flow).

    The frame's own pose (``rotation``, ``pose_center_mm``) fits the markers exactly and gives
    the paper-plane homography. Its lateral centre is poorly determined on its own (with a
    narrow field of view, turning and shifting the camera look alike), so ``center_mm`` is
    a running median over recent frames; planes behind the paper are reached from the paper
    plane through the central projection from that centre, and the working distance and
    the aperture position ``x_A`` are read from it.
    """

    eye: str
    rotation: np.ndarray
    center_mm: np.ndarray
    n_markers: int
    reprojection_px: float
    source: str = "detected"
    pose_center_mm: np.ndarray | None = None

    def homography(self, camera: CameraModel, *, z_mm: float = 0.0) -> np.ndarray:
        """Homography from plane mm ``(x, y)`` on ``z = z_mm`` to image pixels."""
        own = self.center_mm if self.pose_center_mm is None else self.pose_center_mm
        h0 = plane_homography(camera, self.rotation, own, z_mm=0.0)
        if z_mm == 0.0:
            return h0
        c = np.asarray(self.center_mm, dtype=float)
        # The ray from C through (x, y, z) meets the paper at C + (X − C)·(−C_z)/(z − C_z).
        k = -c[2] / (z_mm - c[2])
        s = np.array([[k, 0.0, (1 - k) * c[0]], [0.0, k, (1 - k) * c[1]], [0.0, 0.0, 1.0]])
        return h0 @ s

    def distance_mm(self, z_mm: float = 0.0) -> float:
        """Distance from the camera centre to the plane ``z = z_mm`` along the face normal."""
        return float(z_mm - self.center_mm[2])


def _detector(spec: FrameSpec):
    import cv2

    params = cv2.aruco.DetectorParameters()
    # Markers are small in the frame; keep the default thresholds but allow small perimeters.
    params.minMarkerPerimeterRate = 0.02
    params.cornerRefinementMethod = cv2.aruco.CORNER_REFINE_NONE
    return cv2.aruco.ArucoDetector(spec.aruco_dictionary(), params)


def detect_markers(
    grey: np.ndarray, *, spec: FrameSpec = FRAME_V1, detect_width: int = 640, detector=None
) -> dict[int, np.ndarray]:
    """Find the frame's markers: ``{id: (4, 2) corners in full-resolution pixels}``.

    The search runs on a copy downscaled to ``detect_width`` (dim frames are stretched first,
    the room is dark); IDs that are not part of the frame are ignored.
    """
    if grey.ndim != 2:
        raise ValueError(f"detect_markers needs a grey image, got shape {grey.shape}")
    det = detector if detector is not None else _detector(spec)
    small, scale = _downscale(grey, detect_width)
    corners, ids, _ = det.detectMarkers(small)
    out: dict[int, np.ndarray] = {}
    if ids is None:
        return out
    valid = set(spec.all_marker_ids)
    for c, i in zip(corners, ids.ravel(), strict=True):
        if int(i) in valid and int(i) not in out:
            out[int(i)] = c.reshape(4, 2).astype(np.float64) * scale + 0.5 * (scale - 1.0)
    return out


def _downscale(grey: np.ndarray, width: int) -> tuple[np.ndarray, float]:
    import cv2

    h, w = grey.shape
    if w > width:
        scale = w / width
        small = cv2.resize(grey, (width, round(h / scale)), interpolation=cv2.INTER_AREA)
        scale = w / small.shape[1]
    else:
        small, scale = grey, 1.0
    top = float(np.percentile(small[::4, ::4], 99.5))
    if 8.0 < top < 120.0:  # a dim frame: stretch so the adaptive threshold sees contrast
        small = cv2.convertScaleAbs(small, alpha=200.0 / top)
    return small, scale


def identify_eye(
    markers: dict[int, np.ndarray], image_size: tuple[int, int], *, spec: FrameSpec = FRAME_V1
) -> str | None:
    """The filmed eye: the panel with most markers, ties broken by nearness to the centre.

    The fellow eye's panel is often partly in view; the examiner aims at the filmed one.
    """
    w, h = image_size
    best, best_key = None, None
    for eye in EYES:
        found = [markers[i] for i in spec.marker_ids[eye] if i in markers]
        if not found:
            continue
        centre = np.mean([c.mean(axis=0) for c in found], axis=0)
        off = float(np.hypot(centre[0] - w / 2.0, centre[1] - h / 2.0)) / max(w, h)
        key = (min(len(found), 3), -off)
        if best_key is None or key > best_key:
            best, best_key = eye, key
    return best


def _object_image_points(markers, spec, eye):
    model = spec.marker_corners_mm(eye)
    ids = [i for i in spec.marker_ids[eye] if i in markers]
    obj = np.concatenate([np.column_stack([model[i], np.zeros(4)]) for i in ids]) if ids else None
    img = np.concatenate([markers[i] for i in ids]).astype(np.float64) if ids else None
    return ids, obj, img


def _reprojection(obj, img, rot, center, camera) -> float:
    cam = (obj - center) @ rot.T
    proj = cam[:, :2] / cam[:, 2:3] * np.array([camera.fx, camera.fy]) + [camera.cx, camera.cy]
    return float(np.sqrt(np.mean(np.sum((proj - img) ** 2, axis=1))))


def rotation_given_center(
    obj: np.ndarray, img: np.ndarray, center: np.ndarray, camera: CameraModel
) -> np.ndarray:
    """World→camera rotation that best aligns the rays to known points from a known centre.

    Wahba's problem (Kabsch/SVD) on unit bearing vectors: well conditioned even when the
    full pose is not (a small planar target seen with a narrow field of view).
    """
    rays = np.column_stack(
        [
            (img[:, 0] - camera.cx) / camera.fx,
            (img[:, 1] - camera.cy) / camera.fy,
            np.ones(len(img)),
        ]
    )
    rays /= np.linalg.norm(rays, axis=1, keepdims=True)
    dirs = obj - center
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    u, _, vt = np.linalg.svd(dirs.T @ rays)
    fix = np.diag([1.0, 1.0, np.sign(np.linalg.det(vt.T @ u.T))])
    return vt.T @ fix @ u.T


def estimate_pose(
    markers: dict[int, np.ndarray],
    camera: CameraModel,
    eye: str,
    *,
    spec: FrameSpec = FRAME_V1,
    min_markers: int = 3,
    source: str = "detected",
    prior_center: np.ndarray | None = None,
) -> Pose | None:
    """Pose from the markers of ``eye`` (``None`` with fewer than ``min_markers``).

    A small planar target filmed with a narrow field of view has two nearly equally good
    poses (mirror tilts); the one nearer ``prior_center`` (else the less tilted) is taken.
    """
    import cv2

    ids, obj, img = _object_image_points(markers, spec, eye)
    if len(ids) < min_markers:
        return None
    n, rvecs, tvecs, errs = cv2.solvePnPGeneric(
        obj, img, camera.matrix, None, flags=cv2.SOLVEPNP_IPPE
    )
    best, best_key = None, None
    for k in range(n):
        rot, _ = cv2.Rodrigues(rvecs[k])
        center = (-rot.T @ tvecs[k]).ravel()
        if center[2] >= 0:  # camera behind the paper
            continue
        err = float(np.ravel(errs)[k]) if errs is not None else 0.0
        if prior_center is not None:
            key = (round(err, 1), float(np.linalg.norm(center - prior_center)))
            key = (0.0, key[1]) if err < 2.0 else key
        else:
            key = (0.0, float(np.linalg.norm(rvecs[k])))
        if best_key is None or key < best_key:
            best, best_key = (rot, center), key
    if best is None:
        return None
    rot, center = best
    return Pose(eye, rot, center, len(ids), _reprojection(obj, img, rot, center, camera), source)


class MarkerTracker:
    """Per-frame poses of both panels over a video: detect, refine, track between frames.

    Full detection runs on the first frame, every ``redetect_every`` frames and whenever
    tracking loses a panel; in between, the corners of the previous frame are carried by
    pyramidal Lucas–Kanade flow (forward–backward checked) and snapped back onto the marker
    corners with ``cv2.cornerSubPix``, so errors do not accumulate.

    Parameters
    ----------
    camera : intrinsics of the video.
    spec : the printed frame.
    detect_width : width of the downscaled copy searched for markers.
    redetect_every : frames between full detections while tracking succeeds.
    max_reprojection : poses whose RMS reprojection error exceeds this share of the marker
        side in pixels are rejected.
    """

    def __init__(
        self,
        camera: CameraModel,
        *,
        spec: FrameSpec = FRAME_V1,
        detect_width: int = 640,
        redetect_every: int = 10,
        max_reprojection: float = 0.08,
    ) -> None:
        self.camera = camera
        self.spec = spec
        self.detect_width = int(detect_width)
        self.redetect_every = max(1, int(redetect_every))
        self.max_reprojection = float(max_reprojection)
        self._detector = _detector(spec)
        self._prev_small: np.ndarray | None = None
        self._prev: dict[int, np.ndarray] = {}
        self._since_detect = 0
        self.n_detections = 0
        self.center_window = 15
        self._centers: dict[str, list[np.ndarray]] = {e: [] for e in EYES}
        #: Set to one eye once the caller knows which panel is filmed: the other is dropped.
        self.only_eye: str | None = None

    def _refine(self, grey: np.ndarray, markers: dict[int, np.ndarray]) -> dict[int, np.ndarray]:
        import cv2

        if not markers:
            return markers
        pts = np.concatenate(list(markers.values())).astype(np.float32)
        side = np.median([np.linalg.norm(c[1] - c[0]) for c in markers.values()])
        # About half a marker cell: the window sees the outer black corner and paper only.
        half = int(np.clip(round(0.09 * side), 2, 12))
        h, w = grey.shape
        inside = np.all((pts >= half + 1) & (pts < np.array([w, h]) - half - 1), axis=1)
        if inside.any():
            crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_COUNT, 20, 0.01)
            sub = pts[inside].reshape(-1, 1, 2).copy()
            cv2.cornerSubPix(grey, sub, (half, half), (-1, -1), crit)
            moved = np.linalg.norm(sub.reshape(-1, 2) - pts[inside], axis=1)
            good = moved < 0.5 * half + 1.0  # a window that slid to another corner is rejected
            pts[np.flatnonzero(inside)[good]] = sub.reshape(-1, 2)[good]
        return {mid: pts[4 * k : 4 * k + 4].astype(np.float64) for k, mid in enumerate(markers)}

    def _track(self, small: np.ndarray, scale: float) -> dict[int, np.ndarray]:
        """Carry the previous frame's corners into this frame (LK flow, forward–backward).

        Runs on the downscaled frames (cost independent of the resolution); the corners are
        snapped back to full-resolution accuracy by :meth:`_refine` afterwards.
        """
        import cv2

        if not self._prev or self._prev_small is None or self._prev_small.shape != small.shape:
            return {}
        ids = list(self._prev)
        full = np.concatenate([self._prev[i] for i in ids])
        pts = ((full + 0.5) / scale - 0.5).astype(np.float32).reshape(-1, 1, 2)
        # Flow only in the box around the corners (plus the largest expected motion): the
        # pyramids are then built for a fraction of the frame.
        h, w = small.shape
        margin = 48
        x0, y0 = np.maximum(np.floor(pts.reshape(-1, 2).min(axis=0)) - margin, 0).astype(int)
        x1 = int(min(np.ceil(pts[..., 0].max()) + margin, w))
        y1 = int(min(np.ceil(pts[..., 1].max()) + margin, h))
        a = self._prev_small[y0:y1, x0:x1]
        b = small[y0:y1, x0:x1]
        off = np.array([x0, y0], np.float32)
        lk = {"winSize": (15, 15), "maxLevel": 2}
        nxt, st, _ = cv2.calcOpticalFlowPyrLK(a, b, pts - off, None, **lk)
        back, st_b, _ = cv2.calcOpticalFlowPyrLK(b, a, nxt, None, **lk)
        back = back + off
        nxt = nxt + off
        fb = np.linalg.norm((back - pts).reshape(-1, 2), axis=1)
        ok = (st.ravel() == 1) & (st_b.ravel() == 1) & (fb < 1.0)
        moved = (nxt.reshape(-1, 2).astype(np.float64) + 0.5) * scale - 0.5
        return {
            mid: moved[4 * k : 4 * k + 4]
            for k, mid in enumerate(ids)
            if ok[4 * k : 4 * k + 4].all()
        }

    def _poses(
        self, markers: dict[int, np.ndarray], source: str, tracked_eyes: set[str]
    ) -> dict[str, Pose]:
        out = {}
        for eye in EYES if self.only_eye is None else (self.only_eye,):
            mine = {i: markers[i] for i in self.spec.marker_ids[eye] if i in markers}
            hist = self._centers[eye]
            prior = np.median(hist, axis=0) if hist else None
            # A panel is acquired with 3 markers; once tracked, 2 (8 corners) keep it.
            pose = estimate_pose(
                mine,
                self.camera,
                eye,
                spec=self.spec,
                source=source,
                prior_center=prior,
                min_markers=2 if eye in tracked_eyes else 3,
            )
            if pose is None:
                continue
            # The camera centre is poorly determined frame by frame (rotation and lateral
            # translation trade off); the instrument turns about the peephole and barely
            # translates, so use the running median centre and solve the rotation for it.
            side_px = np.median([np.linalg.norm(c[1] - c[0]) for c in mine.values()])
            if pose.reprojection_px > self.max_reprojection * side_px:
                continue
            hist.append(pose.center_mm)
            del hist[: -self.center_window]
            center = np.median(hist, axis=0)
            out[eye] = Pose(
                eye,
                pose.rotation,
                center,
                pose.n_markers,
                pose.reprojection_px,
                source,
                pose_center_mm=pose.center_mm,
            )
        return out

    def _predicted_corners(self, poses: dict[str, Pose]) -> dict[int, np.ndarray]:
        """All marker corners of each posed panel, projected (markers hidden now included)."""
        out = {}
        for eye, pose in poses.items():
            h = pose.homography(self.camera)
            for mid, corners in self.spec.marker_corners_mm(eye).items():
                p = np.column_stack([corners, np.ones(4)]) @ h.T
                out[mid] = p[:, :2] / p[:, 2:3]
        return out

    def update(self, grey: np.ndarray) -> dict[str, Pose]:
        """Poses for the next frame of the video: ``{eye: Pose}`` for each panel found."""
        if grey.ndim != 2:
            raise ValueError(f"MarkerTracker.update needs a grey frame, got shape {grey.shape}")
        poses: dict[str, Pose] = {}
        markers: dict[int, np.ndarray] = {}
        had = {e for e in EYES if sum(i in self._prev for i in self.spec.marker_ids[e]) >= 3}
        small, scale = _downscale(grey, self.detect_width)
        if self._prev and self._since_detect < self.redetect_every:
            markers = self._refine(grey, self._track(small, scale))
            poses = self._poses(markers, "tracked", had)
            self._since_detect += 1
        if not poses or not had <= set(poses):
            found = detect_markers(
                grey, spec=self.spec, detect_width=self.detect_width, detector=self._detector
            )
            self.n_detections += 1
            self._since_detect = 0
            tracked = markers if markers else self._refine(grey, self._track(small, scale))
            merged = {**tracked, **found}
            markers = self._refine(grey, merged)
            poses = self._poses(markers, "detected", had)
        # Track every marker of the posed panels into the next frame, including the ones
        # hidden now (washed out by the beam): they are predicted from the pose, then snapped
        # onto the image corners by cornerSubPix when they reappear.
        predicted = self._predicted_corners(poses)
        h, w = grey.shape
        self._prev = {
            i: (markers[i] if i in markers else c)
            for i, c in predicted.items()
            if np.all((c > 2) & (c < np.array([w, h]) - 3))
        }
        self._prev_small = small
        return poses
