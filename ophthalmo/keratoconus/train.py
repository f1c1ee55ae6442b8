"""Training engine for the dual-head keratoconus CNN (torchvision-references style).

* **Stage 1**: random initialisation (or torchvision backbone weights from a local file),
  trained on plentiful domain-A (topographer) heatmaps.
* **Stage 2**: starts from a stage-1 checkpoint (``init=``), freezes the first
  ``optim.freeze_stages`` stages of each branch and trains the backbone at
  ``lr * optim.lr_mult`` (the head at ``lr``) on a small domain-B (smartphone) set.

Both stages: AdamW, a cosine schedule with linear warm-up, class-balanced cross-entropy,
early stopping on validation ROC AUC (ties broken by validation loss), the decision threshold
chosen on validation data (Youden's J), bf16 autocast and channels-last on CUDA only,
DataLoader workers with pinned memory, a deterministic mode, resume from ``last.pt``.

Multi-GPU: launch with ``torchrun --nproc_per_node N -m healthsense kc train ...``; the
engine reads the ``env://`` variables, wraps the model in DistributedDataParallel, shards the
training data with a DistributedSampler and lets rank 0 alone log and write checkpoints. Every
rank scores the whole (small) validation set, so all ranks take the same early-stopping
decision without extra communication.

Checkpoints (``best.pt``: the model; ``last.pt``: the resumable state) carry a **model card**:
configuration, model spec, task, data hash, validation metrics, threshold, versions.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from healthsense.runtime import get_logger, progress, seed_everything, select_device, sha256_file
from ophthalmo.keratoconus.augment import AugmentConfig, KCAugment
from ophthalmo.keratoconus.data import (
    CLASSES,
    INDEX_FEATURES,
    PIXEL_MEAN,
    PIXEL_STD,
    KCDataset,
    dataset_hash,
    patient_split,
    read_labels,
)
from ophthalmo.keratoconus.model import DualHeadNet, ModelSpec, build_model, freeze_stages

__all__ = [
    "CHECKPOINT_FORMAT",
    "DatasetOptions",
    "FitResult",
    "ModelOptions",
    "OptimOptions",
    "TrainConfig",
    "fit",
    "load_checkpoint",
    "positive_score",
    "predict_proba",
    "train",
    "train_one_epoch",
]

log = get_logger("kc.train")
CHECKPOINT_FORMAT = "healthsense-kc-checkpoint/1"


@dataclass(frozen=True)
class DatasetOptions:
    """Which cases, how they are labelled and fed."""

    image_size: int = 64
    task: str = "binary"  # binary | 3class
    suspect: str = "positive"  # positive | negative | drop (binary task)
    domain: str = ""  # keep only rows of this domain ("" = all)
    use_indices: bool = False
    val_fraction: float = 0.2
    num_workers: int = 0
    cache: bool = True

    def __post_init__(self) -> None:
        if self.task not in ("binary", "3class"):
            raise ValueError(f"task must be 'binary' or '3class', got {self.task!r}")
        if self.suspect not in ("positive", "negative", "drop"):
            raise ValueError(f"suspect must be positive, negative or drop, got {self.suspect!r}")
        if not 16 <= self.image_size <= 1024:
            raise ValueError(f"image_size must be in [16, 1024], got {self.image_size}")
        if self.num_workers < 0:
            raise ValueError(f"num_workers must be >= 0, got {self.num_workers}")


@dataclass(frozen=True)
class ModelOptions:
    """Network architecture (stage 2 takes it from the stage-1 checkpoint instead)."""

    backbone: str = "small"
    shared: bool = False
    dropout: float = 0.2
    width: int = 8
    backbone_weights: str = ""  # a local torchvision state dict; never downloaded


@dataclass(frozen=True)
class OptimOptions:
    """Optimiser, schedule, balancing and stopping."""

    lr: float = 3e-3
    weight_decay: float = 1e-4
    epochs: int = 30
    batch_size: int = 32
    warmup_epochs: int = 1
    patience: int = 8
    class_balance: bool = True
    freeze_stages: int = 0  # stage 2: first k stages of each branch frozen
    lr_mult: float = 0.3  # stage 2: backbone learning rate = lr * lr_mult

    def __post_init__(self) -> None:
        if self.lr <= 0 or self.weight_decay < 0 or self.lr_mult < 0:
            raise ValueError("lr must be > 0, weight_decay and lr_mult >= 0")
        if self.epochs < 1 or self.batch_size < 2 or self.patience < 1:
            raise ValueError("epochs >= 1, batch_size >= 2 and patience >= 1 are required")


@dataclass(frozen=True)
class TrainConfig:
    """``healthsense kc train`` configuration (TOML + ``key=value`` overrides)."""

    stage: int = 1
    data: str = ""
    init: str = ""
    out: str = "kc_run"
    device: str = "auto"
    seed: int = 0
    deterministic: bool = False
    resume: str = ""
    amp: bool = True  # bf16 autocast, CUDA only
    channels_last: bool = True  # CUDA only
    log_every: int = 0  # rank-0 log line every N steps (0: per epoch only)
    threads: int = 0  # torch CPU threads (0: torch's default)
    dataset: DatasetOptions = field(default_factory=DatasetOptions)
    model: ModelOptions = field(default_factory=ModelOptions)
    optim: OptimOptions = field(default_factory=OptimOptions)
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    def __post_init__(self) -> None:
        if self.stage not in (1, 2):
            raise ValueError(f"stage must be 1 or 2, got {self.stage}")
        if self.stage == 2 and not self.init and not self.resume:
            raise ValueError("stage=2 needs init=<stage-1 checkpoint>")


@dataclass
class FitResult:
    """What :func:`fit` returns (on every rank)."""

    model: DualHeadNet
    threshold: float
    card: dict[str, Any]
    history: list[dict[str, float]]
    checkpoint: Path | None = None


# --------------------------------------------------------------------------- distributed


@dataclass(frozen=True)
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: torch.device) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, init_method="env://")
    return _Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


# --------------------------------------------------------------------------- helpers


def positive_score(probs: np.ndarray) -> np.ndarray:
    """Probability of keratoconus: column 1 of a binary model, column 2 of a 3-class one."""
    probs = np.asarray(probs)
    return probs[:, 1] if probs.shape[1] == 2 else probs[:, 2]


def _binary_target(targets: np.ndarray, n_classes: int) -> np.ndarray:
    return (targets == 1) if n_classes == 2 else (targets == 2)


def _to_device(batch, device: torch.device, channels_last: bool):
    ax, tg, meta, y = batch
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    nb = device.type == "cuda"
    return (
        ax.to(device, non_blocking=nb).contiguous(memory_format=fmt),
        tg.to(device, non_blocking=nb).contiguous(memory_format=fmt),
        meta.to(device, non_blocking=nb),
        torch.as_tensor(y).to(device, non_blocking=nb),
    )


def _autocast(device: torch.device, amp: bool):
    return torch.autocast(
        device_type=device.type, dtype=torch.bfloat16, enabled=amp and device.type == "cuda"
    )


def train_one_epoch(
    model: nn.Module,
    loader,
    optimizer: torch.optim.Optimizer,
    scheduler=None,
    *,
    device: torch.device,
    class_weights: torch.Tensor | None = None,
    amp: bool = True,
    channels_last: bool = False,
    log_every: int = 0,
    epoch: int = 0,
    main_rank: bool = True,
) -> dict[str, float]:
    """One pass over ``loader``; returns mean loss, images seen and images per second."""
    model.train()
    loss_fn = nn.CrossEntropyLoss(weight=class_weights)
    total, n, t0 = 0.0, 0, time.perf_counter()
    for step, batch in enumerate(loader):
        ax, tg, meta, y = _to_device(batch, device, channels_last)
        with _autocast(device, amp):
            logits = model(ax, tg, meta)
        loss = loss_fn(logits.float(), y)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"non-finite training loss at epoch {epoch} step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += float(loss.detach()) * len(y)
        n += len(y)
        if log_every and main_rank and (step + 1) % log_every == 0:
            log.info("epoch %d step %d loss %.4f", epoch, step + 1, float(loss))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    dt = time.perf_counter() - t0
    return {"train_loss": total / max(n, 1), "images": n, "images_per_s": n / dt if dt > 0 else 0.0}


@torch.no_grad()
def predict_proba(
    model: nn.Module,
    dataset,
    *,
    device: torch.device | str = "cpu",
    batch_size: int = 64,
    amp: bool = True,
    channels_last: bool = False,
    num_workers: int = 0,
) -> np.ndarray:
    """Class probabilities ``(N, n_classes)`` for every item of ``dataset`` (no augmentation)."""
    from torch.utils.data import DataLoader

    device = torch.device(device)
    was_training = model.training
    model.eval()
    out = []
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    for batch in loader:
        ax, tg, meta, _ = _to_device(batch, device, channels_last)
        with _autocast(device, amp):
            logits = model(ax, tg, meta)
        out.append(torch.softmax(logits.float(), 1).cpu().numpy())
    model.train(was_training)
    n_classes = model.module.spec.n_classes if hasattr(model, "module") else model.spec.n_classes
    return np.concatenate(out) if out else np.zeros((0, n_classes))


def _val_metrics(probs: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    import warnings

    from healthsense.metrics import UndefinedMetricWarning, roc_auc

    n_classes = probs.shape[1]
    yb = _binary_target(targets, n_classes)
    score = positive_score(probs)
    p = np.clip(probs[np.arange(len(targets)), targets], 1e-7, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        auc = roc_auc(yb.astype(int), score)
    return {"val_auc": float(auc), "val_loss": float(-np.log(p).mean())}


def _choose_threshold(targets: np.ndarray, probs: np.ndarray) -> tuple[float, dict[str, Any]]:
    import warnings

    from scipy.special import expit, logit

    from healthsense.metrics import (
        UndefinedMetricWarning,
        binary_diagnostics,
        roc_auc_ci,
        youden_threshold,
    )

    yb = _binary_target(targets, probs.shape[1]).astype(int)
    score = positive_score(probs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        # A small validation set leaves a wide gap of equally good thresholds; the
        # observed score at its top edge is the least sensitive one and misses
        # test positives just below it. The gap's midpoint on the logit scale
        # (where probabilities near 0 and 1 are not crushed together) is the
        # maximum-margin choice.
        logits = logit(np.clip(np.asarray(score, dtype=np.float64), 1e-7, 1.0 - 1e-7))
        thr = float(expit(youden_threshold(yb, logits, placement="midpoint")))
        if not math.isfinite(thr) or thr >= 1.0:  # one class only, or "call nothing"
            thr = 0.5
        auc, lo, hi = roc_auc_ci(yb, score)
        diag = binary_diagnostics(yb, (score >= thr).astype(int))
    return float(thr), {
        "auc": auc,
        "auc_ci": [lo, hi],
        "sensitivity": diag.sensitivity,
        "sensitivity_ci": list(diag.sensitivity_ci),
        "specificity": diag.specificity,
        "specificity_ci": list(diag.specificity_ci),
        "n": int(len(yb)),
        "n_positive": int(yb.sum()),
    }


def _save(obj: dict[str, Any], path: Path) -> Path:
    from healthsense.report import atomic_path

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return path


def load_checkpoint(
    path: str | os.PathLike, *, map_location: str = "cpu"
) -> tuple[DualHeadNet, dict[str, Any]]:
    """Rebuild the model of a checkpoint and return it (eval mode) with its model card.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it is not a healthsense keratoconus checkpoint or its weights do not fit.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable checkpoint ({exc})") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{path}: not a healthsense keratoconus checkpoint (format {CHECKPOINT_FORMAT})"
        )
    if "threshold" not in ckpt.get("card", {}):
        raise ValueError(f"{path}: a resumable training state (last.pt), not a model; use best.pt")
    try:
        spec = ModelSpec(**ckpt["card"]["model"])
        model = build_model(spec)
        model.load_state_dict(ckpt["model"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise ValueError(f"{path}: checkpoint does not describe a loadable model ({exc})") from None
    model.eval()
    return model, ckpt["card"]


def _class_weights(targets: np.ndarray, n_classes: int) -> torch.Tensor:
    counts = np.bincount(targets, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, len(targets) / (n_classes * np.maximum(counts, 1)), 0.0)
    return torch.tensor(w, dtype=torch.float32)


def _param_groups(model: DualHeadNet, lr: float, lr_mult: float, wd: float) -> list[dict[str, Any]]:
    backbone_ids = {id(p) for b in model.branches() for p in b.parameters()}
    back = [p for p in model.parameters() if id(p) in backbone_ids and p.requires_grad]
    rest = [p for p in model.parameters() if id(p) not in backbone_ids and p.requires_grad]
    groups = [{"params": rest, "lr": lr, "weight_decay": wd}]
    if back:
        groups.append({"params": back, "lr": lr * lr_mult, "weight_decay": wd})
    return groups


def _cosine_with_warmup(optimizer, total_steps: int, warmup_steps: int):
    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        t = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(t, 1.0)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


# --------------------------------------------------------------------------- the engine


def fit(
    cfg: TrainConfig,
    train_frame: pd.DataFrame,
    val_frame: pd.DataFrame,
    *,
    out_dir: str | os.PathLike | None = None,
    renderer=None,
    data_info: dict[str, Any] | None = None,
) -> FitResult:
    """Train one model on ``train_frame``, stop early and pick the threshold on ``val_frame``.

    ``out_dir`` (rank 0 only) receives ``best.pt`` and ``last.pt``; ``None`` keeps everything
    in memory (cross-validation). ``cfg.init`` (stage 2) and ``cfg.resume`` are honoured.
    """
    device = select_device(cfg.device)
    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    dist_info = _init_distributed(device)
    if device.type == "cuda" and dist_info.world > 1:
        device = torch.device("cuda", dist_info.local_rank)
        torch.cuda.set_device(device)
    seed_everything(cfg.seed + dist_info.rank, deterministic_torch=cfg.deterministic)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not cfg.deterministic
    on_cuda = device.type == "cuda"
    channels_last = cfg.channels_last and on_cuda
    amp = cfg.amp and on_cuda

    # Model: stage 2 (or resume of a stage-2 run) rebuilds the stage-1 architecture.
    parent: dict[str, Any] | None = None
    if cfg.stage == 2 and cfg.init:
        model, parent_card = load_checkpoint(cfg.init)
        parent = {
            "path": str(cfg.init),
            "sha256": sha256_file(cfg.init),
            "stage": parent_card.get("stage"),
        }
        for key in ("task", "image_size", "use_indices"):
            mine = {
                "task": cfg.dataset.task,
                "image_size": cfg.dataset.image_size,
                "use_indices": cfg.dataset.use_indices,
            }[key]
            if parent_card.get(key) != mine:
                raise ValueError(
                    f"{cfg.init}: stage-1 {key}={parent_card.get(key)!r} but this run has {mine!r}"
                )
        spec = model.spec
    else:
        n_classes = 2 if cfg.dataset.task == "binary" else 3
        spec = ModelSpec(
            backbone=cfg.model.backbone,
            shared=cfg.model.shared,
            n_classes=n_classes,
            n_meta=1 + (len(INDEX_FEATURES) if cfg.dataset.use_indices else 0),
            dropout=cfg.model.dropout,
            width=cfg.model.width,
        )
        model = build_model(spec, backbone_weights=cfg.model.backbone_weights or None)
    if cfg.stage == 2:
        freeze_stages(model, cfg.optim.freeze_stages)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)

    ds_opts = cfg.dataset
    aug = KCAugment(cfg.augment) if cfg.augment.enabled else None
    common = dict(
        image_size=ds_opts.image_size,
        task=ds_opts.task,
        suspect=ds_opts.suspect,
        use_indices=ds_opts.use_indices,
        cache=ds_opts.cache,
        renderer=renderer,
    )
    train_ds = KCDataset(train_frame, augment=aug, **common)
    val_ds = KCDataset(val_frame, augment=None, **common)
    if len(train_ds) < 2 or len(val_ds) < 1:
        raise ValueError(
            f"too few cases after the suspect policy: {len(train_ds)} train, {len(val_ds)} val"
        )
    if aug is not None and train_ds._background is None and renderer is None:
        train_ds.renderer()  # resolve the renderer's background before building the augmenter
    if aug is not None and train_ds._background is not None:
        aug = KCAugment(cfg.augment, background_rgb=train_ds._background)
        train_ds.augment = aug
    for ds, what in ((train_ds, "train"), (val_ds, "val")):
        if ds.cache:  # decode once, before any worker forks, so that workers share it
            for i in progress(range(len(ds)), total=len(ds), desc=f"cache {what}"):
                ds._load(i)

    from torch.utils.data import DataLoader, DistributedSampler

    bs = cfg.optim.batch_size
    sampler = (
        DistributedSampler(
            train_ds,
            num_replicas=dist_info.world,
            rank=dist_info.rank,
            shuffle=True,
            seed=cfg.seed,
            drop_last=False,
        )
        if dist_info.world > 1
        else None
    )
    gen = torch.Generator().manual_seed(cfg.seed + 7919 * dist_info.rank)
    per_rank = math.ceil(len(train_ds) / dist_info.world)
    loader = DataLoader(
        train_ds,
        batch_size=bs,
        shuffle=sampler is None,
        sampler=sampler,
        num_workers=ds_opts.num_workers,
        pin_memory=on_cuda,
        generator=gen,
        drop_last=per_rank > bs and per_rank % bs == 1,  # a batch of 1 breaks BatchNorm
        persistent_workers=ds_opts.num_workers > 0,
    )
    train_model: nn.Module = model
    if dist_info.world > 1:
        from torch.nn.parallel import DistributedDataParallel as DDP

        train_model = DDP(model, device_ids=[device.index] if on_cuda else None)

    weights = (
        _class_weights(train_ds.targets, spec.n_classes).to(device)
        if cfg.optim.class_balance
        else None
    )
    optimizer = torch.optim.AdamW(
        _param_groups(
            model,
            cfg.optim.lr,
            cfg.optim.lr_mult if cfg.stage == 2 else 1.0,
            cfg.optim.weight_decay,
        )
    )
    steps = len(loader)
    scheduler = _cosine_with_warmup(
        optimizer, steps * cfg.optim.epochs, steps * cfg.optim.warmup_epochs
    )

    out = Path(out_dir) if out_dir is not None else None
    start_epoch, best, best_state, bad, history = 0, (-math.inf, math.inf), None, 0, []
    if cfg.resume:
        if not Path(cfg.resume).is_file():
            raise FileNotFoundError(f"{cfg.resume}: checkpoint to resume from not found")
        state = torch.load(cfg.resume, map_location="cpu", weights_only=True)
        if (
            not isinstance(state, dict)
            or state.get("format") != CHECKPOINT_FORMAT
            or "optimizer" not in state
        ):
            raise ValueError(f"{cfg.resume}: not a resumable checkpoint (use last.pt)")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start_epoch, best, bad, history = (
            state["epoch"] + 1,
            tuple(state["best"]),
            state["bad"],
            state["history"],
        )
        best_state = state["best_model"]
        torch.set_rng_state(state["rng"])
        gen.set_state(state["loader_rng"])
        log.info("resumed from %s at epoch %d", cfg.resume, start_epoch)

    for epoch in range(start_epoch, cfg.optim.epochs):
        if bad >= cfg.optim.patience:
            break
        if sampler is not None:
            sampler.set_epoch(epoch)
        t0 = time.perf_counter()
        stats = train_one_epoch(
            train_model,
            loader,
            optimizer,
            scheduler,
            device=device,
            class_weights=weights,
            amp=amp,
            channels_last=channels_last,
            log_every=cfg.log_every,
            epoch=epoch,
            main_rank=dist_info.main,
        )
        probs = predict_proba(
            model,
            val_ds,
            device=device,
            batch_size=max(bs, 64),
            amp=amp,
            channels_last=channels_last,
        )
        stats.update(_val_metrics(probs, val_ds.targets))
        stats.update(
            epoch=epoch, lr=optimizer.param_groups[0]["lr"], seconds=time.perf_counter() - t0
        )
        history.append(stats)
        auc = stats["val_auc"] if math.isfinite(stats["val_auc"]) else -1.0
        improved = auc > best[0] + 1e-6 or (
            abs(auc - best[0]) <= 1e-6 and stats["val_loss"] < best[1]
        )
        if improved:
            best, bad = (auc, stats["val_loss"]), 0
            best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
        else:
            bad += 1
        if dist_info.main:
            log.info(
                "epoch %d: train loss %.4f, val loss %.4f, val AUC %.3f, %.0f img/s%s",
                epoch,
                stats["train_loss"],
                stats["val_loss"],
                stats["val_auc"],
                stats["images_per_s"] * dist_info.world,
                " *" if improved else "",
            )
            if out is not None:
                _save(
                    {
                        "format": CHECKPOINT_FORMAT,
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(),
                        "epoch": epoch,
                        "best": list(best),
                        "bad": bad,
                        "history": history,
                        "best_model": best_state,
                        "rng": torch.get_rng_state(),
                        "loader_rng": gen.get_state(),
                        "card": {"model": dataclasses.asdict(spec)},
                    },
                    out / "last.pt",
                )

    if best_state is not None:
        model.load_state_dict(best_state)
    probs = predict_proba(
        model, val_ds, device=device, batch_size=max(bs, 64), amp=amp, channels_last=channels_last
    )
    threshold, val_summary = _choose_threshold(val_ds.targets, probs)
    card = _model_card(
        cfg,
        spec,
        threshold,
        val_summary,
        history,
        parent,
        data_info,
        n_train=len(train_ds),
        n_val=len(val_ds),
        world=dist_info.world,
        device=device,
    )
    ckpt_path = None
    if out is not None and dist_info.main:
        state = {k: v.detach().to("cpu") for k, v in model.state_dict().items()}
        ckpt_path = _save(
            {"format": CHECKPOINT_FORMAT, "model": state, "card": card}, out / "best.pt"
        )
    model.eval()
    return FitResult(
        model=model, threshold=threshold, card=card, history=history, checkpoint=ckpt_path
    )


def _model_card(
    cfg, spec, threshold, val_summary, history, parent, data_info, *, n_train, n_val, world, device
):
    from healthsense import DISCLAIMER
    from healthsense.config import config_to_dict
    from healthsense.runtime import versions

    return {
        "name": "healthsense dual-head keratoconus CNN",
        "intended_use": "research on keratoconus screening from corneal curvature heatmaps; "
        "not for diagnosis",
        "disclaimer": DISCLAIMER,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "stage": cfg.stage,
        "model": dataclasses.asdict(spec),
        "task": cfg.dataset.task,
        "classes": list(CLASSES)
        if cfg.dataset.task == "3class"
        else ["not keratoconus", "keratoconus"],
        "suspect": cfg.dataset.suspect,
        "image_size": cfg.dataset.image_size,
        "use_indices": cfg.dataset.use_indices,
        "input": {
            "maps": ["axial", "tangential"],
            "pixel_mean": PIXEL_MEAN,
            "pixel_std": PIXEL_STD,
            "meta": "laterality (+1 OD, -1 OS)"
            + (" + 7 scaled indices" if cfg.dataset.use_indices else ""),
        },
        "threshold": threshold,
        "threshold_rule": (
            "Youden's J on the validation set (never the test data), placed at the midpoint "
            "of the equally good gap on the logit scale"
        ),
        "validation": val_summary,
        "epochs_run": len(history),
        "best_epoch": int(
            max(range(len(history)), key=lambda i: (history[i]["val_auc"], -history[i]["val_loss"]))
        )
        if history
        else None,
        "data": {**(data_info or {}), "n_train": n_train, "n_val": n_val},
        "parent": parent,
        "training": {"world_size": world, "device": str(device.type)},
        "config": config_to_dict(cfg),
        "versions": versions(),
    }


def train(cfg: TrainConfig, *, renderer=None) -> FitResult:
    """``healthsense kc train``: read ``cfg.data``, split patients, :func:`fit`, write outputs.

    Writes ``best.pt`` (model + card), ``last.pt`` (resumable), ``history.csv`` and
    ``config.json`` into ``cfg.out`` (rank 0 only).
    """
    if not cfg.data:
        raise ValueError("no dataset given: set data=<folder with labels.csv>")
    frame = read_labels(cfg.data)
    if cfg.dataset.domain:
        frame = frame[frame["domain"] == cfg.dataset.domain].reset_index(drop=True)
        if frame.empty:
            raise ValueError(f"{cfg.data}: no case of domain {cfg.dataset.domain!r}")
    from ophthalmo.keratoconus.data import encode_labels

    y = encode_labels(frame["label"], task=cfg.dataset.task, suspect=cfg.dataset.suspect)
    frame, y = frame[y >= 0].reset_index(drop=True), y[y >= 0]
    tr, va = patient_split(frame, val_fraction=cfg.dataset.val_fraction, y=y, random_state=cfg.seed)
    info = {
        "path": str(Path(cfg.data).resolve()),
        "sha256": dataset_hash(frame),
        "domains": sorted(frame["domain"].unique().tolist()),
        "n_cases": len(frame),
    }
    out = Path(cfg.out)
    result = fit(
        cfg, frame.iloc[tr], frame.iloc[va], out_dir=out, renderer=renderer, data_info=info
    )
    if int(os.environ.get("RANK", "0")) == 0:
        from healthsense.config import write_config
        from healthsense.report import write_csv

        write_csv(out / "history.csv", result.history)
        write_config(cfg, out, command="healthsense kc train")
    return result


def clone_model(model: DualHeadNet) -> DualHeadNet:
    """A deep copy on CPU (for keeping several fold models)."""
    return copy.deepcopy(model).to("cpu")
