"""Reading retinoscopy videos: any container OpenCV can decode, frames with timestamps.

Failures are explicit: a missing file raises :class:`FileNotFoundError`; an empty file, a file
that is not a video, or a clip that stops decoding well before its declared length
(a truncated download or recording) raises :class:`ValueError` naming the file.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["VideoInfo", "iter_frames", "probe_video"]

#: A clip is called truncated when fewer than this share of its declared frames decode.
_MIN_DECODED_SHARE = 0.9
#: Frame rates outside this range are treated as missing metadata.
_FPS_RANGE = (1.0, 1000.0)


@dataclass(frozen=True)
class VideoInfo:
    """What the container declares: frame size, frame rate and frame count (may be 0)."""

    path: str
    width: int
    height: int
    fps: float
    n_frames: int

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.fps if self.fps > 0 else float("nan")


def _open(path: str | Path):
    import cv2

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: video file not found")
    if path.is_dir():
        raise ValueError(f"{path}: is a directory, not a video file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        cap.release()
        raise ValueError(f"{path}: not a readable video (OpenCV could not open it)")
    return cap


def probe_video(path: str | Path) -> VideoInfo:
    """Read the container metadata and check that the first frame decodes.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Empty file, not a video, or no decodable frame.
    """
    import cv2

    cap = _open(path)
    try:
        width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        ok, frame = cap.read()
    finally:
        cap.release()
    if not ok or frame is None:
        raise ValueError(f"{path}: no decodable frame (corrupt or truncated video)")
    height, width = frame.shape[:2]
    if not _FPS_RANGE[0] <= fps <= _FPS_RANGE[1]:
        fps = 30.0  # containers without timing: assume the commonest phone rate
    return VideoInfo(str(path), int(width), int(height), fps, max(n, 0))


def iter_frames(
    path: str | Path, *, max_frames: int | None = None
) -> Iterator[tuple[int, float, np.ndarray]]:
    """Yield ``(index, time_s, frame_bgr)`` for every decodable frame.

    Time stamps are ``index / fps`` (container timestamps of phone videos jitter and some
    containers lack them). After the last frame the decoded count is compared with the
    declared one; a clip that decodes less than 90 % of it raises :class:`ValueError`
    (truncated), so a caller never silently estimates from half a video.
    """
    info = probe_video(path)
    cap = _open(path)
    count = 0
    try:
        while max_frames is None or count < max_frames:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            if frame.ndim == 2:
                frame = np.repeat(frame[..., None], 3, axis=2)
            yield count, count / info.fps, frame
            count += 1
    finally:
        cap.release()
    if count == 0:
        raise ValueError(f"{path}: no decodable frame (corrupt or truncated video)")
    declared = info.n_frames
    if max_frames is None and declared > 0 and count < _MIN_DECODED_SHARE * declared:
        raise ValueError(f"{path}: truncated video: decoded {count} of {declared} declared frames")
