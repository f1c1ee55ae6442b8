"""GPU check of the keratoconus dual-head CNN: resnet18, bf16 autocast, channels-last.

Self-contained, for a lent CUDA machine with whatever Python and torch are installed there
(run from the repository root; the package need not be installed):

    python benchmarks/kc_gpu_check.py            # < 4 min on one H100

1. Model throughput: a few hundred training steps of the resnet18 dual-head network on
   in-GPU tensors with bf16 autocast + channels-last, against an fp32 / contiguous baseline
   measured in the same run (the ratio is printed).
2. The full engine (if numpy, pandas, OpenCV, albumentations, scikit-learn are present): a
   small synthetic topographer cohort in a temporary folder, ``fit`` with DataLoader workers,
   pinned memory, AMP and channels-last; end-to-end training images/s and validation AUC.
3. The CUDA/AMP unit tests (``pytest -m gpu``) if pytest is present.

Prints human-readable lines and, last, one JSON line with every result. Exits non-zero
(loudly) when CUDA is not available or a step fails.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def model_throughput(
    steps: int, *, amp: bool, channels_last: bool, batch: int = 128, size: int = 128
) -> dict:
    import torch

    from ophthalmo.keratoconus.model import build_model

    dev = torch.device("cuda")
    torch.manual_seed(0)
    net = build_model(backbone="resnet18", n_meta=1).to(dev)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    y = torch.randint(0, 2, (batch,), device=dev)
    # Learnable stand-in for heatmaps: a bright inferior blob for the positive class.
    ax = torch.randn(batch, 3, size, size, device=dev) * 0.2
    ax[y == 1, :, size // 2 : size // 2 + size // 6, size // 4 : size // 4 + size // 6] += 1.5
    ax = ax.contiguous(memory_format=fmt)
    tg = ax.flip(-1).contiguous(memory_format=fmt)
    meta = torch.ones(batch, 1, device=dev)
    losses = []

    def step():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            logits = net(ax, tg, meta)
        loss = torch.nn.functional.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    for _ in range(10):  # warm-up (cuDNN autotuning)
        losses.append(float(step().detach()))
    torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        loss = step()
    torch.cuda.synchronize()
    dt = time.perf_counter() - t
    return {
        "steps": steps,
        "batch": batch,
        "size": size,
        "images_per_s": steps * batch / dt,
        "loss_first": losses[0],
        "loss_last": float(loss.detach()),
        "amp_bf16": amp,
        "channels_last": channels_last,
    }


def engine_run(tmp: Path) -> dict:
    needed = ("numpy", "pandas", "cv2", "sklearn", "scipy", "tqdm")
    missing = [m for m in needed if importlib.util.find_spec(m) is None]
    if missing:
        return {"skipped": f"missing modules: {', '.join(missing)}"}
    # Without albumentations the geometric augmentation cannot run: train unaugmented.
    augment = importlib.util.find_spec("albumentations") is not None
    from ophthalmo.keratoconus.augment import AugmentConfig
    from ophthalmo.keratoconus.synthetic import generate_cohort
    from ophthalmo.keratoconus.train import (
        DatasetOptions,
        ModelOptions,
        OptimOptions,
        TrainConfig,
        train,
    )

    t = time.perf_counter()
    generate_cohort(
        tmp / "A",
        domain="topographer",
        n_eyes=400,
        random_state=1,
        image_size=128,
        n_jobs=min(8, os.cpu_count() or 1),
    )
    t_gen = time.perf_counter() - t
    cfg = TrainConfig(
        data=str(tmp / "A"),
        out=str(tmp / "run"),
        device="cuda",
        seed=0,
        amp=True,
        channels_last=True,
        dataset=DatasetOptions(image_size=128, num_workers=min(8, os.cpu_count() or 1)),
        model=ModelOptions(backbone="resnet18"),
        optim=OptimOptions(lr=1e-3, epochs=12, patience=12, batch_size=32),
        augment=AugmentConfig(enabled=augment),
    )
    t = time.perf_counter()
    res = train(cfg)
    dt = time.perf_counter() - t
    ips = [h["images_per_s"] for h in res.history[1:]] or [res.history[0]["images_per_s"]]
    return {
        "generate_s": t_gen,
        "train_s": dt,
        "epochs": len(res.history),
        "steps": sum(-(-h["images"] // 32) for h in res.history),
        "train_images_per_s_end_to_end": sum(ips) / len(ips),
        "val_auc": res.card["validation"]["auc"],
        "threshold": res.threshold,
        "augmented": augment,
        "checkpoint_bytes": Path(res.checkpoint).stat().st_size,
    }


def gpu_tests() -> dict:
    missing = [
        m
        for m in ("pytest", "numpy", "pandas", "cv2", "sklearn", "scipy")
        if importlib.util.find_spec(m) is None
    ]
    if missing:
        return {"skipped": f"missing modules: {', '.join(missing)}"}
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-m",
        "gpu",
        "-rA",
        str(REPO / "tests" / "keratoconus" / "test_kc_model_train.py"),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=env, timeout=180)
    tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-500:]
    return {"returncode": proc.returncode, "summary": tail}


def main() -> int:
    import torch

    if not torch.cuda.is_available():
        print(
            "kc_gpu_check: FAILED: CUDA is not available (torch " + torch.__version__ + ")",
            file=sys.stderr,
        )
        return 2
    out: dict = {
        "device": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "bf16_supported": torch.cuda.is_bf16_supported(),
    }
    torch.backends.cudnn.benchmark = True
    print(f"device {out['device']}, torch {out['torch']}, CUDA {out['cuda']}")
    t0 = time.perf_counter()
    fast = model_throughput(300, amp=True, channels_last=True)
    base = model_throughput(100, amp=False, channels_last=False)
    out["train_bf16_channels_last"], out["train_fp32_baseline"] = fast, base
    out["speedup_vs_fp32"] = fast["images_per_s"] / base["images_per_s"]
    print(
        f"resnet18 dual-head training, 128 px, batch 128: {fast['images_per_s']:.0f} images/s with bf16 + "
        f"channels-last vs {base['images_per_s']:.0f} images/s fp32 (x{out['speedup_vs_fp32']:.2f}); "
        f"loss {fast['loss_first']:.3f} -> {fast['loss_last']:.3f}"
    )
    ok = fast["loss_last"] < fast["loss_first"]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            out["engine"] = engine_run(Path(tmp))
        except Exception as exc:  # report, then fail loudly below
            out["engine"] = {"error": f"{type(exc).__name__}: {exc}"}
            ok = False
    print("engine:", out["engine"])
    out["gpu_tests"] = gpu_tests()
    print("pytest -m gpu:", out["gpu_tests"])
    if out["gpu_tests"].get("returncode", 0) != 0:
        ok = False
    out["seconds"] = time.perf_counter() - t0
    out["ok"] = ok
    print(json.dumps(out))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
