"""Keratoconus datasets: the ``labels.csv`` folder format, a torch Dataset, patient splits.

Folder format (docs/keratoconus.md, section 3): ``labels.csv`` with the columns
``case_id, patient_id, eye (OD|OS), label (normal|suspect|keratoconus), domain, axial,
tangential, raw``; ``axial``/``tangential`` are PNG heatmaps and ``raw`` a ``.npz`` raw-map
case (``axial_d``, ``tangential_d`` float32 with NaN outside the valid zone, ``mm_per_px``,
``eye``), paths relative to the CSV. Either the PNG pair or ``raw`` may be empty.

A case with a raw map is rendered on the fly (so that dioptre-level augmentations happen
before colouring); a case with PNGs only is used as rendered. Decoded inputs are cached in
memory at the model resolution (nearest-neighbour resizing keeps every pixel a palette colour
and makes "render then resize" and "resize then render" agree).

Splits are by **patient** (both eyes of a person on the same side) and stratified by label.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

__all__ = [
    "CLASSES",
    "INDEX_FEATURES",
    "KCDataset",
    "dataset_hash",
    "encode_labels",
    "load_raw_case",
    "patient_kfold",
    "patient_split",
    "read_labels",
    "read_png",
]

CLASSES = ("normal", "suspect", "keratoconus")
REQUIRED_COLUMNS = ("case_id", "patient_id", "eye", "label", "domain")
#: Flip-invariant clinical indices used by the optional third branch (the Sim-K axis is left
#: out because a mirror flip changes it).
INDEX_FEATURES = ("simk_k1_d", "simk_k2_d", "ast_d", "central_k_d", "i_s_d", "srax_deg", "kisa_pct")
#: Input normalisation of the RGB heatmaps (fixed, recorded in the model card).
PIXEL_MEAN, PIXEL_STD = 0.5, 0.25


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value).strip()


def read_labels(path: str | os.PathLike) -> pd.DataFrame:
    """Read and validate a dataset's ``labels.csv`` (a folder or the CSV itself).

    Returns a frame with the documented columns plus ``root`` (the CSV's folder) and the
    path columns resolved to absolute strings (empty where absent).

    Raises
    ------
    FileNotFoundError
        If the CSV or a file it references is missing.
    ValueError
        On missing columns, unknown labels or eyes, duplicate case ids, or a case with
        neither a PNG pair nor a raw map.
    """
    path = Path(path)
    csv = path / "labels.csv" if path.is_dir() else path
    if not csv.is_file():
        raise FileNotFoundError(f"{csv}: dataset labels file not found")
    try:
        frame = pd.read_csv(csv, dtype=str, keep_default_na=False)
    except (pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ValueError(f"{csv}: not a readable CSV ({exc})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{csv}: missing column(s) {', '.join(missing)}")
    has_png = {"axial", "tangential"} <= set(frame.columns)
    if not has_png and "raw" not in frame.columns:
        raise ValueError(f"{csv}: needs 'axial' and 'tangential' columns, or a 'raw' column")
    if frame.empty:
        raise ValueError(f"{csv}: no cases")
    for col in ("axial", "tangential", "raw"):
        if col not in frame.columns:
            frame[col] = ""
    frame = frame.copy()
    for col in REQUIRED_COLUMNS + ("axial", "tangential", "raw"):
        frame[col] = frame[col].map(_cell)
    bad_label = sorted(set(frame["label"]) - set(CLASSES))
    if bad_label:
        raise ValueError(f"{csv}: unknown label(s) {bad_label}; expected one of {list(CLASSES)}")
    bad_eye = sorted(set(frame["eye"]) - {"OD", "OS"})
    if bad_eye:
        raise ValueError(f"{csv}: unknown eye value(s) {bad_eye}; expected OD or OS")
    if (frame["case_id"] == "").any() or (frame["patient_id"] == "").any():
        raise ValueError(f"{csv}: empty case_id or patient_id")
    dup = frame["case_id"][frame["case_id"].duplicated()].unique()
    if len(dup):
        raise ValueError(f"{csv}: duplicate case_id(s) {list(dup[:5])}")
    root = csv.parent.resolve()
    for col in ("axial", "tangential", "raw"):
        frame[col] = [str(root / v) if v else "" for v in frame[col]]
    pair = (frame["axial"] != "") & (frame["tangential"] != "")
    usable = pair | (frame["raw"] != "")
    if not usable.all():
        bad = frame.loc[~usable, "case_id"].tolist()[:5]
        raise ValueError(
            f"{csv}: case(s) {bad} have neither an axial+tangential PNG pair nor a raw map"
        )
    for col in ("axial", "tangential", "raw"):
        for p in frame[col]:
            if p and not os.path.isfile(p):
                raise FileNotFoundError(f"{csv}: referenced file not found: {p}")
    frame["root"] = str(root)
    return frame.reset_index(drop=True)


def encode_labels(
    labels: Sequence[str], *, task: str = "binary", suspect: str = "positive"
) -> np.ndarray:
    """Class indices for a task; ``-1`` marks a case dropped by the suspect policy.

    Parameters
    ----------
    task : {"binary", "3class"}
        ``binary``: keratoconus (1) vs not (0); ``3class``: normal 0, suspect 1, keratoconus 2.
    suspect : {"positive", "negative", "drop"}
        How the binary task counts suspects (ignored for 3 classes).
    """
    if task not in ("binary", "3class"):
        raise ValueError(f"task must be 'binary' or '3class', got {task!r}")
    if suspect not in ("positive", "negative", "drop"):
        raise ValueError(f"suspect must be 'positive', 'negative' or 'drop', got {suspect!r}")
    labels = list(labels)
    bad = sorted(set(labels) - set(CLASSES))
    if bad:
        raise ValueError(f"unknown label(s) {bad}; expected one of {list(CLASSES)}")
    if task == "3class":
        return np.array([CLASSES.index(v) for v in labels], dtype=np.int64)
    s = {"positive": 1, "negative": 0, "drop": -1}[suspect]
    return np.array([{"normal": 0, "keratoconus": 1}.get(v, s) for v in labels], dtype=np.int64)


def read_png(path: str | os.PathLike) -> np.ndarray:
    """An RGB uint8 heatmap; a clear error when the file is missing or not an image."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: heatmap image not found")
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None or img.ndim != 3 or img.shape[0] < 8 or img.shape[1] < 8:
        raise ValueError(f"{path}: not a readable colour image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def load_raw_case(path: str | os.PathLike) -> dict[str, Any]:
    """Read a raw-map ``.npz`` case: ``axial_d``, ``tangential_d``, ``mm_per_px``, ``eye``.

    Uses the topography package's reader where available; validates shapes and values.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: raw-map case not found")
    try:
        from ophthalmo.keratoconus.io import load_case  # the topography package's reader
    except ImportError:
        load_case = None
    if load_case is not None:
        case = load_case(path)._asdict()
    else:
        try:
            with np.load(path, allow_pickle=False) as z:
                case = {k: z[k] for k in z.files}
        except Exception as exc:
            raise ValueError(f"{path}: not a readable .npz raw-map case ({exc})") from None
    for key in ("axial_d", "tangential_d"):
        if key not in case:
            raise ValueError(f"{path}: missing array {key!r}")
    ax = np.asarray(case["axial_d"], dtype=np.float32)
    tg = np.asarray(case["tangential_d"], dtype=np.float32)
    if ax.ndim != 2 or ax.shape != tg.shape or ax.shape[0] != ax.shape[1] or ax.shape[0] < 8:
        raise ValueError(
            f"{path}: axial_d and tangential_d must be equal square 2-D maps, "
            f"got {ax.shape} and {tg.shape}"
        )
    if not np.isfinite(ax).any() or not np.isfinite(tg).any():
        raise ValueError(f"{path}: the maps have no finite (valid-zone) value")
    mm = float(np.asarray(case.get("mm_per_px", np.nan)))
    if not (np.isfinite(mm) and mm > 0):
        raise ValueError(f"{path}: mm_per_px must be a positive number, got {mm}")
    eye = str(np.asarray(case.get("eye", "")))
    if eye not in ("OD", "OS"):
        raise ValueError(f"{path}: eye must be 'OD' or 'OS', got {eye!r}")
    return {"axial_d": ax, "tangential_d": tg, "mm_per_px": mm, "eye": eye}


def _default_renderer() -> tuple[Callable[[np.ndarray], np.ndarray], tuple[int, int, int]]:
    from ophthalmo.keratoconus import heatmap

    return (lambda p: heatmap.render_map(p, style="canonical")), tuple(heatmap.BACKGROUND_RGB)


def _resize_nearest(a: np.ndarray, size: int) -> np.ndarray:
    if a.shape[0] == size and a.shape[1] == size:
        return a
    return cv2.resize(a, (size, size), interpolation=cv2.INTER_NEAREST)


def index_features(indices: dict[str, Any]) -> np.ndarray:
    """Scale the clinical indices to O(1) features (NaN → 0, the population-typical value)."""
    v = {k: float(indices.get(k, np.nan)) for k in INDEX_FEATURES}
    feats = np.array(
        [
            (v["simk_k1_d"] - 44.0) / 3.0,
            (v["simk_k2_d"] - 43.0) / 3.0,
            v["ast_d"] / 2.0,
            (v["central_k_d"] - 44.0) / 3.0,
            v["i_s_d"] / 2.0,
            v["srax_deg"] / 45.0,
            np.log1p(max(v["kisa_pct"], 0.0)) / 5.0 if np.isfinite(v["kisa_pct"]) else np.nan,
        ],
        dtype=np.float32,
    )
    return np.nan_to_num(feats, nan=0.0, posinf=5.0, neginf=-5.0)


class KCDataset:
    """A torch-style Dataset over a ``labels.csv`` frame (see :func:`read_labels`).

    Items are ``(axial, tangential, meta, target)``: two ``(3, S, S)`` float32 tensors
    (RGB / 255, normalised with fixed mean 0.5 and std 0.25), a ``(n_meta,)`` tensor
    (laterality +1 OD / -1 OS, then the scaled indices when ``use_indices``) and the class
    index. Cases dropped by the suspect policy are removed.

    Parameters
    ----------
    frame : DataFrame
        Rows of :func:`read_labels` (a subset is fine).
    image_size : int
        Side of the square model input.
    augment : KCAugment, optional
        Training-time augmentation; ``None`` for validation, test and prediction.
    use_indices : bool
        Add the clinical indices (from :func:`ophthalmo.keratoconus.indices.compute_indices`
        on the raw axial map) to ``meta``; needs raw maps.
    labelled : bool
        ``False`` for unlabelled cases (prediction): nothing is dropped, targets are -1.
    renderer : callable, optional
        ``power_d -> (H, W, 3) uint8``; default the canonical palette of
        :func:`ophthalmo.keratoconus.heatmap.render_map`.
    """

    def __init__(
        self,
        frame: pd.DataFrame,
        *,
        image_size: int = 64,
        task: str = "binary",
        suspect: str = "positive",
        augment: Any = None,
        use_indices: bool = False,
        cache: bool = True,
        renderer: Callable[[np.ndarray], np.ndarray] | None = None,
        background_rgb: tuple[int, int, int] | None = None,
        labelled: bool = True,
    ) -> None:
        if image_size < 16:
            raise ValueError(f"image_size must be >= 16, got {image_size}")
        if labelled:
            y = encode_labels(frame["label"], task=task, suspect=suspect)
            keep = y >= 0
        else:  # prediction on unlabelled cases: keep every row, target -1
            y = np.full(len(frame), -1, dtype=np.int64)
            keep = np.ones(len(frame), dtype=bool)
        self.frame = frame.loc[keep].reset_index(drop=True)
        self.targets = y[keep]
        self.image_size = int(image_size)
        self.augment = augment
        self.use_indices = bool(use_indices)
        self.cache = bool(cache)
        self._renderer = renderer
        self._background = background_rgb
        self._cache: dict[int, dict[str, Any]] = {}
        if self.use_indices and (self.frame["raw"] == "").any():
            bad = self.frame.loc[self.frame["raw"] == "", "case_id"].tolist()[:5]
            raise ValueError(f"use_indices needs raw maps; case(s) {bad} have none")

    @property
    def n_meta(self) -> int:
        return 1 + (len(INDEX_FEATURES) if self.use_indices else 0)

    def __len__(self) -> int:
        return len(self.frame)

    def renderer(self) -> Callable[[np.ndarray], np.ndarray]:
        if self._renderer is None:
            self._renderer, bg = _default_renderer()
            if self._background is None:
                self._background = bg
        return self._renderer

    def _load(self, i: int) -> dict[str, Any]:
        if i in self._cache:
            return self._cache[i]
        row = self.frame.iloc[i]
        s = self.image_size
        item: dict[str, Any] = {"eye": row["eye"]}
        if row["raw"]:
            case = load_raw_case(row["raw"])
            if row["eye"] and case["eye"] != row["eye"]:
                raise ValueError(
                    f"{row['raw']}: eye {case['eye']} disagrees with labels.csv ({row['eye']})"
                )
            item["eye"] = case["eye"]  # unlabelled .npz cases carry their own laterality
            item["maps"] = (
                _resize_nearest(case["axial_d"], s),
                _resize_nearest(case["tangential_d"], s),
            )
            if self.use_indices:
                from ophthalmo.keratoconus.indices import compute_indices

                try:
                    ind = compute_indices(
                        case["axial_d"], mm_per_px=case["mm_per_px"], eye=case["eye"]
                    )
                except ValueError as exc:
                    raise ValueError(f"{row['raw']}: clinical indices undefined ({exc})") from None
                item["indices"] = index_features(ind)
        else:
            ax, tg = read_png(row["axial"]), read_png(row["tangential"])
            item["rgb"] = (_resize_nearest(ax, s), _resize_nearest(tg, s))
        if self.cache:
            self._cache[i] = item
        return item

    def rgb_pair(
        self, i: int, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray, str]:
        """The (possibly augmented) RGB pair and eye of case ``i``."""
        item = self._load(i)
        eye = item["eye"]
        aug = self.augment if rng is not None else None
        if "maps" in item and aug is None and "plain" in item:
            ax, tg = item["plain"]
        elif "maps" in item:
            ax_d, tg_d = item["maps"]
            if aug is not None:
                ax_d, tg_d = aug.maps(ax_d, tg_d, rng)
            render = self.renderer()
            ax, tg = render(ax_d), render(tg_d)
            ax, tg = _resize_nearest(ax, self.image_size), _resize_nearest(tg, self.image_size)
            if aug is None and self.cache:  # un-augmented renders never change: keep them
                item["plain"] = (ax, tg)
        else:
            ax, tg = item["rgb"]
        if aug is not None:
            ax, tg, eye = aug.images(ax, tg, eye, rng)
        return ax, tg, eye

    def __getitem__(self, i: int):
        import torch

        if not 0 <= i < len(self):
            raise IndexError(i)
        # The torch RNG is seeded per DataLoader worker (and by seed_everything in the main
        # process), so drawing the numpy seed from it keeps augmentation reproducible.
        rng = (
            np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
            if self.augment is not None
            else None
        )
        ax, tg, eye = self.rgb_pair(i, rng)
        meta = [1.0 if eye == "OD" else -1.0]
        if self.use_indices:
            meta.extend(self._load(i)["indices"].tolist())
        return (
            to_tensor(ax),
            to_tensor(tg),
            torch.tensor(meta, dtype=torch.float32),
            int(self.targets[i]),
        )


def to_tensor(rgb: np.ndarray):
    """(H, W, 3) uint8 → normalised (3, H, W) float32 tensor."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float().div_(255.0)
    return x.sub_(PIXEL_MEAN).div_(PIXEL_STD)


def _strata(frame: pd.DataFrame, y: np.ndarray | None) -> np.ndarray:
    return np.asarray(y if y is not None else encode_labels(frame["label"], task="3class"))


def patient_kfold(
    frame: pd.DataFrame,
    n_splits: int = 5,
    *,
    y: np.ndarray | None = None,
    random_state: int | None = 0,
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Patient-grouped, label-stratified k-fold: a list of (train rows, test rows).

    ``y`` are the strata (default: the three labels). Both eyes of a patient always fall
    in the same fold.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    groups = frame["patient_id"].to_numpy()
    n_groups = len(np.unique(groups))
    if not 2 <= n_splits <= n_groups:
        raise ValueError(
            f"n_splits must be in [2, {n_groups}] (number of patients), got {n_splits}"
        )
    cv = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
    strata = _strata(frame, y)
    return [(tr, te) for tr, te in cv.split(np.zeros(len(frame)), strata, groups)]


def patient_split(
    frame: pd.DataFrame,
    *,
    val_fraction: float = 0.2,
    y: np.ndarray | None = None,
    random_state: int | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """One patient-grouped, stratified (train rows, validation rows) split."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n_splits = max(2, round(1.0 / val_fraction))
    return patient_kfold(frame, n_splits, y=y, random_state=random_state)[0]


def dataset_hash(frame: pd.DataFrame) -> str:
    """SHA-256 over the labels and the bytes of every referenced file (order-independent)."""
    digest = hashlib.sha256()
    cols = ["case_id", "patient_id", "eye", "label", "domain"]
    for _, row in frame.sort_values("case_id").iterrows():
        digest.update("|".join(str(row[c]) for c in cols).encode())
        for col in ("axial", "tangential", "raw"):
            if row[col]:
                with open(row[col], "rb") as handle:
                    digest.update(hashlib.sha256(handle.read()).digest())
    return digest.hexdigest()
