"""Feature sources made from the windows themselves: a small autoencoder and downsampling.

The paper estimated the information in a PPG window through a learned 20-D bottleneck; this is
that idea at the scale of a CPU: a fully connected autoencoder (n -> 128 -> 64 -> dim and back)
trained on the z-scored windows with mean-squared error. Its bottleneck is a low-dimensional
summary for the k-NN information estimates, which degrade quickly with dimension (docs §3).
The embedding is unsupervised: the label is never seen, so it cannot leak into the features.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from healthsense.runtime import get_logger, progress, select_device

__all__ = ["autoencoder_embedding", "downsample_windows"]

_log = get_logger("ppg.embedding")


def _check_windows(windows: Any) -> np.ndarray:
    w = np.asarray(windows, dtype=np.float64)
    if w.ndim != 2 or w.shape[0] < 2 or w.shape[1] < 4:
        raise ValueError(
            f"windows must be a 2-D array (N >= 2 windows x n >= 4 samples), got {w.shape}"
        )
    if not np.all(np.isfinite(w)):
        raise ValueError("windows contain NaN/inf values")
    return w


def downsample_windows(windows: Any, *, n_points: int = 25) -> np.ndarray:
    """Each window z-scored and averaged into ``n_points`` equal bins (a simple shape code)."""
    w = _check_windows(windows)
    if not 1 <= int(n_points) <= w.shape[1]:
        raise ValueError(f"n_points must lie in [1, {w.shape[1]}], got {n_points}")
    sd = w.std(axis=1, keepdims=True)
    if np.any(sd == 0):
        raise ValueError("constant window(s): cannot z-score")
    z = (w - w.mean(axis=1, keepdims=True)) / sd
    edges = np.linspace(0, w.shape[1], int(n_points) + 1).round().astype(int)
    return np.add.reduceat(z, edges[:-1], axis=1) / np.diff(edges)[None, :]


def autoencoder_embedding(
    windows: Any,
    *,
    dim: int = 20,
    epochs: int = 30,
    batch_size: int = 128,
    lr: float = 1e-3,
    device: str = "cpu",
    random_state: int | None = 0,
    show_progress: bool = True,
) -> np.ndarray:
    """Train a small autoencoder on the z-scored windows and return the bottleneck codes.

    Parameters
    ----------
    windows : array-like, shape (N, n)
    dim : int
        Bottleneck size (20, as in the paper).
    epochs, batch_size, lr : training settings (Adam, MSE).
    device : str
        ``"cpu"``, ``"cuda"`` or ``"auto"`` (see :func:`healthsense.runtime.select_device`).
    random_state : int or None
        Seeds torch for the initialisation and the batch order.

    Returns
    -------
    ndarray, shape (N, dim)
    """
    import torch
    from torch import nn

    w = _check_windows(windows)
    if int(dim) < 1 or int(epochs) < 1 or int(batch_size) < 1 or not lr > 0:
        raise ValueError("dim, epochs and batch_size must be >= 1 and lr > 0")
    sd = w.std(axis=1, keepdims=True)
    if np.any(sd == 0):
        raise ValueError("constant window(s): cannot z-score")
    z = ((w - w.mean(axis=1, keepdims=True)) / sd).astype(np.float32)
    dev = select_device(device)
    gen = torch.Generator().manual_seed(int(random_state or 0))
    torch.manual_seed(int(random_state or 0))
    n = z.shape[1]
    model = nn.Sequential(
        nn.Linear(n, 128),
        nn.GELU(),
        nn.Linear(128, 64),
        nn.GELU(),
        nn.Linear(64, int(dim)),
        nn.Linear(int(dim), 64),
        nn.GELU(),
        nn.Linear(64, 128),
        nn.GELU(),
        nn.Linear(128, n),
    ).to(dev)
    encoder = model[:5]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    data = torch.from_numpy(z)
    loss_value = float("nan")
    epochs_iter = range(int(epochs))
    if show_progress:
        epochs_iter = progress(epochs_iter, total=int(epochs), desc="autoencoder", unit="epoch")
    model.train()
    for _ in epochs_iter:
        order = torch.randperm(data.shape[0], generator=gen)
        for start in range(0, data.shape[0], int(batch_size)):
            batch = data[order[start : start + int(batch_size)]].to(dev)
            opt.zero_grad()
            loss = torch.mean((model(batch) - batch) ** 2)
            loss.backward()
            opt.step()
            loss_value = float(loss.detach())
    _log.debug("autoencoder trained: final batch MSE %.4f", loss_value)
    model.eval()
    with torch.no_grad():
        codes = [
            encoder(data[s : s + 4096].to(dev)).cpu().numpy() for s in range(0, len(data), 4096)
        ]
    return np.concatenate(codes).astype(np.float64)
