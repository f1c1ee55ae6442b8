"""Dual-head CNN for keratoconus: one branch per heatmap (axial, tangential), fused features.

Our reading of the "dual-head" network of arXiv 2205.03702 (its details are not public): two
image branches with the same architecture, shared or separate weights, whose pooled features
are concatenated with a small optional branch of tabular inputs (laterality and, optionally,
the clinical indices) and passed to an MLP head with 2 or 3 outputs.

Backbones: ``"small"`` (a 4-stage CNN sized for CPU work at 64-128 px), torchvision
``"resnet18"``, ``"resnet34"`` and ``"efficientnet_b0"``. Every backbone is built with random
weights (torchvision ``weights=None``); pre-trained weights are loaded from a **local file**
only (:func:`load_backbone_weights`), never downloaded.

Each backbone exposes ``stages`` (an ``nn.ModuleList`` from input to output) so that
:func:`freeze_stages` can freeze the first ``k`` stages for stage-2 fine-tuning.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = [
    "BACKBONES",
    "Backbone",
    "DualHeadNet",
    "ModelSpec",
    "build_model",
    "freeze_stages",
    "load_backbone_weights",
]

BACKBONES = ("small", "resnet18", "resnet34", "efficientnet_b0")


@dataclass(frozen=True)
class ModelSpec:
    """What is needed to rebuild a :class:`DualHeadNet` (stored in every checkpoint).

    Parameters
    ----------
    backbone : {"small", "resnet18", "resnet34", "efficientnet_b0"}
    shared : bool
        One backbone for both maps (half the parameters) instead of one per map.
    n_classes : int
        2 (keratoconus vs not) or 3 (normal, suspect, keratoconus).
    n_meta : int
        Width of the tabular input: 1 (laterality, +1 OD / -1 OS) plus the number of
        clinical indices when the indices branch is used; 0 disables the branch.
    dropout : float
        Dropout before the classifier.
    width : int
        Channels of the first stage of the small CNN (doubles at each stage); ignored by
        torchvision backbones.
    """

    backbone: str = "small"
    shared: bool = False
    n_classes: int = 2
    n_meta: int = 1
    dropout: float = 0.2
    width: int = 8

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {self.backbone!r}")
        if self.n_classes not in (2, 3):
            raise ValueError(f"n_classes must be 2 or 3, got {self.n_classes!r}")
        if self.n_meta < 0:
            raise ValueError(f"n_meta must be >= 0, got {self.n_meta!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if self.width < 1:
            raise ValueError(f"width must be >= 1, got {self.width!r}")


def _conv_block(c_in: int, c_out: int) -> nn.Sequential:
    # One 3x3 convolution then a stride-2 pool per stage keeps a training step at about a
    # millisecond per eye on one CPU core at 64 px; four stages reach the whole map, which
    # is what a localised cone needs.
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class Backbone(nn.Module):
    """An image encoder as a list of stages followed by global average pooling."""

    def __init__(self, stages: list[nn.Module], out_features: int) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_features = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return torch.flatten(self.pool(x), 1)


def _small_backbone(width: int) -> Backbone:
    # A stride-2 stem (as in ResNet) so that no convolution runs at full resolution.
    stem = nn.Sequential(
        nn.Conv2d(3, width, 3, stride=2, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
    )
    chans = [width, 2 * width, 4 * width, 8 * width]
    return Backbone([stem] + [_conv_block(chans[i], chans[i + 1]) for i in range(3)], chans[-1])


def _torchvision_backbone(name: str, weights_path: str | os.PathLike | None) -> Backbone:
    import torchvision

    net = getattr(torchvision.models, name)(weights=None)  # never a download
    if weights_path is not None:
        load_backbone_weights(net, weights_path)
    if name.startswith("resnet"):
        stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        return Backbone([stem, net.layer1, net.layer2, net.layer3, net.layer4], net.fc.in_features)
    # efficientnet_b0: features[0] is the stem, features[1..7] the MBConv stages, [8] the head.
    return Backbone(list(net.features), net.classifier[1].in_features)


def load_backbone_weights(net: nn.Module, path: str | os.PathLike) -> nn.Module:
    """Load a torchvision state dict from a local file into ``net`` (classifier keys ignored).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (nothing is ever downloaded).
    ValueError
        If the file is not a state dict or its tensors do not match the network.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: backbone weights file not found (weights are never downloaded)"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ValueError(f"{path}: not a readable torch state dict ({exc})") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(state).__name__}")
    own = net.state_dict()
    head = ("fc.", "classifier.")
    usable = {k: v for k, v in state.items() if not k.startswith(head)}
    missing = [k for k in own if not k.startswith(head) and k not in usable]
    bad = [k for k, v in usable.items() if k not in own or own[k].shape != v.shape]
    if missing or bad or not usable:
        raise ValueError(
            f"{path}: weights do not fit this backbone "
            f"({len(missing)} missing keys, {len(bad)} unexpected or mis-shaped, e.g. {(missing + bad)[:3]})"
        )
    net.load_state_dict(usable, strict=False)
    return net


def _make_backbone(spec: ModelSpec, weights_path: str | os.PathLike | None) -> Backbone:
    if spec.backbone == "small":
        if weights_path is not None:
            raise ValueError("backbone weights files apply to torchvision backbones only")
        return _small_backbone(spec.width)
    return _torchvision_backbone(spec.backbone, weights_path)


class DualHeadNet(nn.Module):
    """Two heatmap branches + an optional tabular branch, fused, then a classifier.

    ``forward(axial, tangential, meta=None)`` takes two ``(N, 3, H, W)`` float tensors (the
    normalised RGB heatmaps) and, when ``spec.n_meta > 0``, an ``(N, n_meta)`` tensor; it
    returns ``(N, n_classes)`` logits.
    """

    def __init__(self, spec: ModelSpec, *, backbone_weights: str | os.PathLike | None = None):
        super().__init__()
        self.spec = spec
        self.axial = _make_backbone(spec, backbone_weights)
        self.tangential = self.axial if spec.shared else _make_backbone(spec, backbone_weights)
        feat = self.axial.out_features
        meta_width = 16 if spec.n_meta else 0
        self.meta = (
            nn.Sequential(nn.Linear(spec.n_meta, meta_width), nn.ReLU(inplace=True))
            if spec.n_meta
            else None
        )
        hidden = 64 if spec.backbone == "small" else 256
        self.head = nn.Sequential(
            nn.Linear(2 * feat + meta_width, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(spec.dropout),
            nn.Linear(hidden, spec.n_classes),
        )

    def branches(self) -> list[Backbone]:
        """The distinct image branches (one when weights are shared)."""
        return [self.axial] if self.spec.shared else [self.axial, self.tangential]

    def features(
        self, axial: torch.Tensor, tangential: torch.Tensor, meta: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The fused feature vector fed to the classifier head."""
        if axial.shape != tangential.shape or axial.ndim != 4 or axial.shape[1] != 3:
            raise ValueError(
                "axial and tangential must both be (N, 3, H, W) tensors of the same shape, got "
                f"{tuple(axial.shape)} and {tuple(tangential.shape)}"
            )
        if self.spec.shared:
            # One pass over the stacked batch: same result, better use of the hardware.
            both = self.axial(torch.cat([axial, tangential], 0))
            fa, ft = both.chunk(2, 0)
        else:
            fa, ft = self.axial(axial), self.tangential(tangential)
        parts = [fa, ft]
        if self.meta is not None:
            if meta is None or meta.shape != (axial.shape[0], self.spec.n_meta):
                got = None if meta is None else tuple(meta.shape)
                raise ValueError(
                    f"meta must be an ({axial.shape[0]}, {self.spec.n_meta}) tensor, got {got}"
                )
            parts.append(self.meta(meta.to(fa.dtype)))
        return torch.cat(parts, 1)

    def forward(
        self, axial: torch.Tensor, tangential: torch.Tensor, meta: torch.Tensor | None = None
    ) -> torch.Tensor:
        return self.head(self.features(axial, tangential, meta))

    def train(self, mode: bool = True) -> DualHeadNet:
        super().train(mode)
        # Frozen stages keep their BatchNorm statistics: fine-tuning on 100 eyes must not
        # re-estimate what the stage-1 data measured well.
        for branch in self.branches():
            for stage in branch.stages:
                if getattr(stage, "_kc_frozen", False):
                    stage.eval()
        return self


def build_model(
    spec: ModelSpec | None = None,
    *,
    backbone_weights: str | os.PathLike | None = None,
    **kwargs: Any,
) -> DualHeadNet:
    """Build a randomly initialised :class:`DualHeadNet` (``kwargs`` are ModelSpec fields).

    Examples
    --------
    >>> net = build_model(backbone="small", n_meta=1)
    >>> x = torch.zeros(2, 3, 64, 64)
    >>> tuple(net(x, x, torch.ones(2, 1)).shape)
    (2, 2)
    """
    if spec is None:
        spec = ModelSpec(**kwargs)
    elif kwargs:
        raise TypeError("give either a ModelSpec or its fields as keywords, not both")
    return DualHeadNet(spec, backbone_weights=backbone_weights)


def freeze_stages(model: DualHeadNet, n_stages: int) -> list[str]:
    """Freeze the first ``n_stages`` stages of every image branch (parameters and BN stats).

    ``0`` unfreezes everything. Returns the names of the frozen parameters.
    """
    n_total = len(model.axial.stages)
    if not 0 <= n_stages <= n_total:
        raise ValueError(
            f"n_stages must be in [0, {n_total}] for {model.spec.backbone}, got {n_stages}"
        )
    frozen_ids = set()
    for branch in model.branches():
        for i, stage in enumerate(branch.stages):
            freeze = i < n_stages
            stage._kc_frozen = freeze  # type: ignore[attr-defined]
            for p in stage.parameters():
                p.requires_grad_(not freeze)
                if freeze:
                    frozen_ids.add(id(p))
    model.train(model.training)
    return [name for name, p in model.named_parameters() if id(p) in frozen_ids]
