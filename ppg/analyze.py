"""The ``analyze`` pipeline: dataset → windows → MVM, information fraction, leakage → report.

One call runs the three tools of Mehta et al. on a dataset and writes ``report.html`` (tables,
overlays of look-alike windows with different labels, MI with its subject-bootstrap CI, the
leakage table), ``results.json`` and ``config.json`` into ``out``. Every number is reported
with the window settings (anchor, amplitude scale), the thresholds and the feature set it was
computed with, because each of them moves it (docs §1, §3).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from healthsense.runtime import get_logger

__all__ = ["AnalyzeConfig", "analyze", "information_sources", "mvm_for_windows"]

_log = get_logger("ppg.analyze")
_UNITS = {"sbp": "mmHg", "dbp": "mmHg", "hr": "bpm"}


@dataclass(frozen=True)
class AnalyzeConfig:
    """Settings of :func:`analyze` (defaults: docs §1–§4)."""

    dataset: str = "mw-ppg-bp"
    target: str = "sbp"
    channel: str = ""  # the dataset's default PPG channel when empty
    anchor: str = "grid"
    scale: str = "record"
    scope: str = "auto"  # inter when the label is one value per record, else all
    corr_threshold: float = 0.9
    dist_threshold: float = 1.0
    label_threshold: float = 8.0
    k: int = 3
    n_bootstrap: int = 100
    embedding_dim: int = 20
    embedding_epochs: int = 30
    n_folds: int = 5
    cnn_epochs: int = 10
    max_windows: int = 0  # 0: all; else a seeded subsample (for quick looks)
    seed: int = 0


def mvm_for_windows(ws, label: str, **kwargs):
    """:func:`ppg.mvm.multivalued_mapping` on a :class:`~ppg.windows.WindowSet` label.

    Scope groups are the record ids; the window settings in the file's ``meta`` travel
    with the result. ``z`` is recomputed from ``raw`` in float64 (files store it as float32).
    """
    from ppg.mvm import multivalued_mapping

    if label not in ws.labels:
        raise ValueError(f"window set has no label {label!r}; labels: {sorted(ws.labels)}")
    y = ws.labels[label]
    keep = np.isfinite(y)
    if not keep.all():
        _log.warning("%d window(s) without a %s label dropped", int((~keep).sum()), label)
        ws = ws.subset(keep)
        y = y[keep]
    cfg = ws.meta.get("config", {}) if isinstance(ws.meta, dict) else {}
    info = {
        "anchor": cfg.get("anchor", "unknown"),
        "amplitude_scale": cfg.get("scale", "unknown"),
        "fs": ws.fs,
        "n_samples": ws.n_samples,
        "dataset": ws.meta.get("dataset", "") if isinstance(ws.meta, dict) else "",
    }
    return multivalued_mapping(
        ws.raw.astype(np.float64), y, groups=ws.record_ids, windows_info=info, **kwargs
    )


def information_sources(
    ws, target: str, *, dim: int = 20, epochs: int = 30, seed: int = 0, show_progress: bool = True
) -> dict[str, tuple[np.ndarray, str]]:
    """Feature sources for the information fraction: name → (X, description).

    ``features``: the hand-crafted per-window table (rows with NaN are dropped by the caller;
    ``target`` is accepted for symmetry and not used: no feature is a label);
    ``hr_feature``: the PPG-derived rate alone;
    ``embedding``: the autoencoder bottleneck; ``downsampled``: 25-point shape code.
    """
    from ppg.embedding import autoencoder_embedding, downsample_windows
    from ppg.features import window_features

    feats, names = window_features(ws.raw, ws.fs)
    out = {
        "features": (feats, f"{len(names)} hand-crafted window features"),
        "hr_feature": (feats[:, [names.index("hr_bpm")]], "PPG-derived heart rate only (1-D)"),
        "embedding": (
            autoencoder_embedding(
                ws.raw, dim=dim, epochs=epochs, random_state=seed, show_progress=show_progress
            ),
            f"{dim}-D autoencoder bottleneck",
        ),
        "downsampled": (downsample_windows(ws.raw, n_points=25), "window z-scored, 25 bin means"),
    }
    return out


def _overlay_figure(ws, y, pairs, label: str, n_show: int = 4):
    from healthsense.report import new_figure

    m = min(n_show, pairs["i"].size)
    fig, axes = new_figure(figsize=(9.0, 2.2 * m), nrows=m, ncols=1)
    axes = np.atleast_1d(axes)
    t = np.arange(ws.n_samples) / ws.fs
    order = np.argsort(-np.abs(y[pairs["i"]] - y[pairs["j"]]))[:m]
    for ax, p in zip(axes, order):
        i, j = int(pairs["i"][p]), int(pairs["j"][p])
        ax.plot(t, ws.raw[i], label=f"{ws.record_ids[i]}: {label} {y[i]:.0f}")
        ax.plot(t, ws.raw[j], label=f"{ws.record_ids[j]}: {label} {y[j]:.0f}", alpha=0.8)
        ax.set_title(f"corr {pairs['corr'][p]:.3f}, dist {pairs['dist'][p]:.2f}", fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
    axes[-1].set_xlabel("time (s)")
    return fig


def analyze(
    data_dir: str | Path,
    out: str | Path,
    cfg: AnalyzeConfig | None = None,
    *,
    show_progress: bool = True,
) -> dict[str, Any]:
    """Run windows → MVM → information fraction → leakage audit and write the report.

    Returns the ``results.json`` content.
    """
    from healthsense.config import write_config
    from healthsense.report import Report, write_json
    from ppg.datasets import count_records, dataset_info, iter_dataset
    from ppg.information import information_fraction
    from ppg.leakage import leakage_audit
    from ppg.windows import WindowConfig, make_windows

    cfg = cfg or AnalyzeConfig()
    if cfg.target not in _UNITS:
        raise ValueError(f"target must be one of {sorted(_UNITS)}, got {cfg.target!r}")
    info = dataset_info(cfg.dataset)
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"{data_dir}: dataset folder not found")
    out = Path(out)
    wcfg = WindowConfig(
        channel=cfg.channel or info.default_ppg,
        anchor=cfg.anchor,
        scale=cfg.scale,
        labels=(cfg.target,),
    )
    ws = make_windows(
        iter_dataset(cfg.dataset, data_dir),
        wcfg,
        total=count_records(cfg.dataset, data_dir),
        dataset=cfg.dataset,
    )
    y_all = ws.labels[cfg.target]
    keep = np.isfinite(y_all) & (ws.raw.std(axis=1) > 0)
    ws = ws.subset(keep)
    if cfg.max_windows and len(ws) > cfg.max_windows:
        idx = np.sort(
            np.random.default_rng(cfg.seed).choice(len(ws), cfg.max_windows, replace=False)
        )
        ws = ws.subset(idx)
    if len(ws) < 10:
        raise ValueError(f"only {len(ws)} usable window(s) with a {cfg.target} label")
    y = ws.labels[cfg.target]
    per_record_constant = all(np.ptp(y[ws.record_ids == r]) == 0 for r in np.unique(ws.record_ids))
    scope = cfg.scope if cfg.scope != "auto" else ("inter" if per_record_constant else "all")
    mvm = mvm_for_windows(
        ws,
        cfg.target,
        scope=scope,
        corr_threshold=cfg.corr_threshold,
        dist_threshold=cfg.dist_threshold,
        label_threshold=cfg.label_threshold,
        show_progress=show_progress,
    )

    unit = _UNITS[cfg.target]
    info_rows = []
    sources = information_sources(
        ws,
        cfg.target,
        dim=cfg.embedding_dim,
        epochs=cfg.embedding_epochs,
        seed=cfg.seed,
        show_progress=show_progress,
    )
    for name, (X, desc) in sources.items():
        ok = np.all(np.isfinite(X), axis=1)
        if ok.sum() < cfg.k + 2:
            info_rows.append(
                {"source": name, "description": desc, "n": int(ok.sum()), "error": "too few rows"}
            )
            continue
        try:
            res = information_fraction(
                X[ok],
                y[ok],
                k=cfg.k,
                groups=ws.groups[ok],
                n_bootstrap=cfg.n_bootstrap,
                label_unit=unit,
                random_state=cfg.seed,
                show_progress=show_progress,
            )
        except ValueError as exc:
            info_rows.append(
                {"source": name, "description": desc, "n": int(ok.sum()), "error": str(exc)}
            )
            continue
        s = res.summary()
        info_rows.append(
            {
                "source": name,
                "description": desc,
                "d": s["d"],
                "n": s["n"],
                "n_dropped": int((~ok).sum()),
                "mi_bits": s["mi_bits"],
                "mi_bits_ci": s["mi_bits_ci"],
                "entropy_bits": s["entropy_bits"],
                "information_fraction": s["information_fraction"],
                "information_fraction_ci": s["information_fraction_ci"],
                "label_resolution": s["label_resolution"],
            }
        )

    feats = sources["features"][0]
    audit = leakage_audit(
        y,
        subjects=ws.groups,
        records=ws.record_ids,
        features=feats,
        windows=ws.raw,
        n_folds=min(cfg.n_folds, int(np.unique(ws.groups).size)),
        cnn_epochs=cfg.cnn_epochs,
        is_bp=cfg.target in ("sbp", "dbp"),
        random_state=cfg.seed,
        show_progress=show_progress,
    )

    results = {
        "dataset": cfg.dataset,
        "target": cfg.target,
        "label_unit": unit,
        "n_windows": len(ws),
        "n_subjects": int(np.unique(ws.groups).size),
        "n_records": int(np.unique(ws.record_ids).size),
        "windows": {
            "anchor": cfg.anchor,
            "amplitude_scale": cfg.scale,
            "fs": ws.fs,
            "n": ws.n_samples,
        },
        "mvm": {**mvm.summary(), "per_group": mvm.per_group},
        "information": info_rows,
        "leakage": audit.rows,
        "leakage_notes": audit.notes,
    }

    rep = Report(f"PPG informativeness: {cfg.target.upper()} on {cfg.dataset}")
    rep.add_text(
        f"{len(ws)} windows of {results['n_subjects']} subjects ({results['n_records']} records); "
        f"{ws.n_samples} samples at {ws.fs:g} Hz, anchor {cfg.anchor}, amplitude scale "
        f"{cfg.scale}. Label unit: {unit} (the entropy, and hence the information fraction, "
        "depends on it)."
    )
    rep.add_heading("Multi-valued mapping")
    rep.add_table(
        [mvm.summary() | {"windows": ""}],
        columns=[
            "scope",
            "n_windows",
            "n_multivalued",
            "fraction",
            "n_pairs",
            "corr_threshold",
            "dist_threshold",
            "label_threshold",
        ],
    )
    if mvm.pairs["i"].size:
        rep.add_figure(
            _overlay_figure(ws, y, mvm.pairs, cfg.target),
            caption="Look-alike windows with labels that differ by more than the label threshold",
        )
    else:
        rep.add_text("No colliding pair at these thresholds.")
    rep.add_heading("Information fraction (KSG MI / KL entropy, subject bootstrap CI)")
    rep.add_table(info_rows)
    rep.add_heading("Leakage audit (out-of-fold predictions)")
    rep.add_table(audit.rows)
    for note in audit.notes:
        rep.add_text(note)
    out.mkdir(parents=True, exist_ok=True)
    rep.save(out / "report.html")
    write_json(out / "results.json", results)
    write_config(asdict(cfg) | {"data_dir": str(data_dir)}, out, command="ppg analyze")
    return results
