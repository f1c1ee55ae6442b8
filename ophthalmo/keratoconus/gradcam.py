"""Grad-CAM for the dual-head network: where on each map the keratoconus score comes from.

Selvaraju et al. (2017): the activations ``A`` of the last stage of a branch, weighted by the
spatial mean of the gradient of the keratoconus logit with respect to them, summed over
channels and rectified. One map per branch (axial, tangential), up-sampled to the input size
and scaled to [0, 1].
"""

from __future__ import annotations

import numpy as np
import torch

from ophthalmo.keratoconus.model import DualHeadNet

__all__ = ["grad_cam", "overlay"]


def grad_cam(
    model: DualHeadNet,
    axial: torch.Tensor,
    tangential: torch.Tensor,
    meta: torch.Tensor | None = None,
    *,
    target_class: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM maps ``(N, H, W)`` in [0, 1] for the axial and the tangential branch.

    ``target_class`` defaults to the keratoconus class (1 of 2, or 2 of 3).
    """
    if target_class is None:
        target_class = 1 if model.spec.n_classes == 2 else 2
    acts: list[torch.Tensor] = []

    def hook(_module, _inputs, output):
        output.retain_grad()
        acts.append(output)

    handles = [b.stages[-1].register_forward_hook(hook) for b in model.branches()]
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad():
            logits = model(axial, tangential, meta)
            model.zero_grad(set_to_none=True)
            logits[:, target_class].sum().backward()
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if model.spec.shared:  # one call over the stacked batch [axial; tangential]
        a_ax, a_tg = acts[0].chunk(2, 0)
        g_ax, g_tg = acts[0].grad.chunk(2, 0)
    else:
        a_ax, a_tg = acts
        g_ax, g_tg = acts[0].grad, acts[1].grad
    size = axial.shape[-2:]
    return _cam(a_ax, g_ax, size), _cam(a_tg, g_tg, size)


def _cam(act: torch.Tensor, grad: torch.Tensor, size) -> np.ndarray:
    weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = torch.relu((weights * act).sum(1, keepdim=True))
    cam = torch.nn.functional.interpolate(
        cam.float(), size=size, mode="bilinear", align_corners=False
    )
    cam = cam[:, 0].detach().cpu().numpy()
    peak = cam.reshape(len(cam), -1).max(1).reshape(-1, 1, 1)
    return np.where(peak > 0, cam / np.maximum(peak, 1e-12), 0.0).astype(np.float32)


def overlay(rgb: np.ndarray, cam: np.ndarray, *, alpha: float = 0.45) -> np.ndarray:
    """Blend a [0, 1] CAM (as a grey-to-white intensity, not a colour map, so that it cannot
    be confused with the dioptre palette) over an RGB heatmap; returns uint8 RGB."""
    import cv2

    if cam.shape != rgb.shape[:2]:
        cam = cv2.resize(cam, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)
    dim = rgb.astype(np.float32) * (1.0 - alpha)
    light = (alpha * 255.0 * cam)[..., None]
    return np.clip(dim + light, 0, 255).astype(np.uint8)
