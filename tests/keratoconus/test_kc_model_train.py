"""Dual-head CNN: shapes, learning, freezing, checkpoints, stage 2, resume, CLI, DDP, CV."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from ophthalmo.keratoconus.model import ModelSpec, build_model, freeze_stages, load_backbone_weights
from ophthalmo.keratoconus.train import TrainConfig, load_checkpoint, train, train_one_epoch

sys.path.insert(0, str(Path(__file__).parent))
from test_kc_model_data import write_toy_dataset

FAST = [
    "device=cpu",
    "dataset.image_size=32",
    "model.width=4",
    "optim.batch_size=8",
    "optim.epochs=2",
    "optim.warmup_epochs=0",
    "dataset.val_fraction=0.34",
]


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Two cores shared by several jobs: OpenMP spin-waiting with 2 threads is 10-30x slower.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def toy_a(tmp_path_factory):
    return write_toy_dataset(tmp_path_factory.mktemp("kcA"), 9, seed=1, png=False)


@pytest.fixture(scope="module")
def toy_b(tmp_path_factory):
    return write_toy_dataset(tmp_path_factory.mktemp("kcB"), 9, seed=2, domain="smartkc")


@pytest.fixture(scope="module")
def stage1(toy_a, tmp_path_factory):
    from healthsense.config import load_config

    out = tmp_path_factory.mktemp("s1")
    cfg = load_config(TrainConfig, overrides=[*FAST, f"data={toy_a}", f"out={out}"])
    return train(cfg), out


@pytest.mark.parametrize(
    ("backbone", "shared", "n_classes", "n_meta"),
    [
        ("small", False, 2, 1),
        ("small", True, 3, 8),
        ("small", False, 2, 0),
        ("resnet18", False, 2, 1),
        ("resnet34", True, 2, 1),
        ("efficientnet_b0", True, 3, 1),
    ],
)
def test_model_shapes(backbone, shared, n_classes, n_meta):
    net = build_model(backbone=backbone, shared=shared, n_classes=n_classes, n_meta=n_meta).eval()
    x = torch.randn(2, 3, 32, 32)
    meta = torch.ones(2, n_meta) if n_meta else None
    assert net(x, x, meta).shape == (2, n_classes)
    assert (net.axial is net.tangential) == shared
    with pytest.raises(ValueError):
        net(x, torch.randn(2, 3, 16, 16), meta)
    if n_meta:
        with pytest.raises(ValueError, match="meta"):
            net(x, x, None)


def test_model_spec_validation():
    with pytest.raises(ValueError):
        ModelSpec(backbone="vgg")
    with pytest.raises(ValueError):
        ModelSpec(n_classes=4)


def test_few_steps_reduce_the_loss():
    torch.manual_seed(0)
    net = build_model(backbone="small", width=4, dropout=0.0)
    # A learnable toy problem: class 1 has a hot blob in the lower half of the axial map.
    y = torch.tensor([0, 1] * 8)
    ax = torch.randn(16, 3, 32, 32) * 0.1
    ax[y == 1, :, 20:28, 8:16] += 2.0
    batch = (ax, ax.clone(), torch.ones(16, 1), y)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    losses = [
        train_one_epoch(net, [batch], opt, device=torch.device("cpu"))["train_loss"]
        for _ in range(25)
    ]
    assert losses[-1] < 0.5 * losses[0]


def test_freezing_keeps_weights_and_bn_statistics():
    torch.manual_seed(0)
    net = build_model(backbone="small", width=4)
    names = freeze_stages(net, 2)
    assert names and all(
        n.startswith(
            ("axial.stages.0", "axial.stages.1", "tangential.stages.0", "tangential.stages.1")
        )
        for n in names
    )
    before = {k: v.clone() for k, v in net.state_dict().items()}
    batch = (
        torch.randn(8, 3, 32, 32),
        torch.randn(8, 3, 32, 32),
        torch.ones(8, 1),
        torch.tensor([0, 1] * 4),
    )
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    train_one_epoch(net, [batch], opt, device=torch.device("cpu"))
    after = net.state_dict()
    for k in before:
        frozen = k.startswith(
            ("axial.stages.0.", "axial.stages.1.", "tangential.stages.0.", "tangential.stages.1.")
        )
        changed = not torch.equal(before[k], after[k])
        if frozen:
            assert not changed, k  # weights and running statistics
        elif k.endswith("stages.3.0.weight") or k == "head.3.weight":
            assert changed, k
    with pytest.raises(ValueError):
        freeze_stages(net, 9)
    freeze_stages(net, 0)
    assert all(p.requires_grad for p in net.parameters())


def test_backbone_weights_load_from_local_file_only(tmp_path):
    import torchvision

    ref = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.pt"
    torch.save(ref.state_dict(), path)
    net = build_model(backbone="resnet18", backbone_weights=path)
    assert torch.equal(net.axial.stages[0][0].weight, ref.conv1.weight)
    assert torch.equal(net.tangential.stages[4][0].conv1.weight, ref.layer4[0].conv1.weight)
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        build_model(backbone="resnet18", backbone_weights=tmp_path / "none.pt")
    torch.save(torchvision.models.resnet34(weights=None).state_dict(), tmp_path / "r34.pt")
    with pytest.raises(ValueError, match="do not fit"):
        load_backbone_weights(ref, tmp_path / "r34.pt")


def test_checkpoint_round_trip_and_model_card(stage1, toy_a):
    result, out = stage1
    assert {p.name for p in out.iterdir()} >= {"best.pt", "last.pt", "history.csv", "config.json"}
    model, card = load_checkpoint(out / "best.pt")
    assert card["threshold"] == pytest.approx(result.threshold)
    assert 0.0 <= card["threshold"] <= 1.0
    assert (
        len(card["data"]["sha256"]) == 64 and card["data"]["n_train"] + card["data"]["n_val"] == 18
    )
    assert card["versions"]["torch"] and card["config"]["dataset"]["image_size"] == 32
    assert "not a medical device" in card["disclaimer"].lower() or card["disclaimer"]
    x = torch.randn(3, 3, 32, 32)
    m = torch.ones(3, 1)
    with torch.no_grad():
        assert torch.allclose(model(x, x, m), result.model.eval()(x, x, m))
    with pytest.raises(ValueError, match="use best.pt"):
        load_checkpoint(out / "last.pt")
    (out / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="junk.pt"):
        load_checkpoint(out / "junk.pt")


def test_stage2_freezes_and_records_parent_then_resumes(stage1, toy_b, tmp_path):
    from healthsense.config import load_config

    _, s1 = stage1
    over = [
        *FAST,
        "stage=2",
        f"init={s1 / 'best.pt'}",
        f"data={toy_b}",
        f"out={tmp_path}",
        "optim.freeze_stages=2",
        "optim.epochs=1",
    ]
    res = train(load_config(TrainConfig, overrides=over))
    ref, _ = load_checkpoint(s1 / "best.pt")
    sd, sd_ref = res.model.state_dict(), ref.state_dict()
    assert torch.equal(sd["axial.stages.0.0.weight"], sd_ref["axial.stages.0.0.weight"])
    assert not torch.equal(sd["head.3.weight"], sd_ref["head.3.weight"])
    assert res.card["parent"]["sha256"] and res.card["stage"] == 2
    resumed = train(
        load_config(
            TrainConfig, overrides=[*over, "optim.epochs=2", f"resume={tmp_path / 'last.pt'}"]
        )
    )
    assert [h["epoch"] for h in resumed.history] == [0, 1]
    with pytest.raises(ValueError, match="image_size"):
        train(load_config(TrainConfig, overrides=[*over, "dataset.image_size=48"]))


def test_deterministic_mode_repeats_and_three_classes(toy_a):
    from healthsense.config import load_config
    from ophthalmo.keratoconus.data import read_labels
    from ophthalmo.keratoconus.train import fit

    frame = read_labels(toy_a)
    cfg = load_config(
        TrainConfig,
        overrides=[*FAST, "deterministic=true", "optim.epochs=1", "dataset.task=3class", "seed=3"],
    )
    runs = [fit(cfg, frame.iloc[:12], frame.iloc[12:]) for _ in range(2)]
    a, b = (r.model.state_dict() for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert runs[0].model.spec.n_classes == 3 and runs[0].card["classes"][1] == "suspect"
    torch.use_deterministic_algorithms(False)


def test_cli_predict_evaluate_and_bad_files(stage1, toy_b, tmp_path, run_cli):
    _, s1 = stage1
    ckpt = str(s1 / "best.pt")
    npz = sorted((toy_b / "raw").glob("*.npz"))[:2]
    bad = tmp_path / "broken.npz"
    bad.write_bytes(b"\x00" * 10)
    code, out, _ = run_cli(
        "kc",
        "predict",
        *map(str, npz),
        str(bad),
        "--model",
        ckpt,
        "--json",
        "--cam",
        str(tmp_path / "cam"),
        "--device",
        "cpu",
    )
    lines = [json.loads(line) for line in out.splitlines()]
    assert code == 1 and len(lines) == 3
    for r in lines[:2]:
        assert {"case", "probability", "decision", "threshold"} <= set(r) and 0 <= r[
            "probability"
        ] <= 1
        assert Path(r["cam"]).is_file()
    assert "broken.npz" in lines[2]["error"]
    pngs = sorted((toy_b / "png").glob("*.png"))[:2]
    code, out, err = run_cli("kc", "predict", *map(str, pngs), "--model", ckpt, "--device", "cpu")
    assert code == 2 and "--eye" in err
    code, out, _ = run_cli(
        "kc", "predict", *map(str, pngs), "--eye", "OD", "--model", ckpt, "--json"
    )
    assert code == 0 and json.loads(out)["eye"] == "OD"
    code, _, err = run_cli("kc", "predict", str(npz[0]), "--model", str(tmp_path / "none.pt"))
    assert code == 1 and "checkpoint not found" in err
    code, out, _ = run_cli(
        "kc", "evaluate", str(toy_b), "--model", ckpt, "--json", "--out", str(tmp_path / "ev")
    )
    m = json.loads(out)
    assert code == 0 and m["n"] == 18 and m["tp"] + m["fn"] + m["tn"] + m["fp"] == 18
    assert (tmp_path / "ev" / "report.html").is_file()


def test_cli_train_rejects_bad_config(run_cli, tmp_path):
    code, out, _ = run_cli("kc", "--help")
    assert code == 0 and all(c in out for c in ("train", "evaluate", "predict", "cv"))
    for sub in ("train", "evaluate", "predict", "cv"):
        assert run_cli("kc", sub, "--help")[0] == 0
    code, _, err = run_cli("kc", "train", "optim.lr=-1", f"out={tmp_path}")
    assert code == 2 and "lr" in err
    code, _, err = run_cli("kc", "train", "stage=2", f"out={tmp_path}")
    assert code == 2 and "init" in err


def test_ddp_two_cpu_processes_gloo(toy_a, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HEALTHSENSE_NO_PROGRESS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "healthsense",
        "kc",
        "train",
        *FAST,
        "optim.epochs=1",
        f"data={toy_a}",
        f"out={out}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    _, card = load_checkpoint(out / "best.pt")
    assert card["training"]["world_size"] == 2
    assert proc.stderr.count("epoch 0:") == 1  # rank 0 alone logs


def test_cv_recipes_small(toy_a, toy_b, tmp_path):
    from ophthalmo.keratoconus.cv import CVConfig, run_cv, write_cv_outputs
    from ophthalmo.keratoconus.train import DatasetOptions, ModelOptions, OptimOptions

    o = OptimOptions(epochs=1, batch_size=8, warmup_epochs=0)
    cfg = CVConfig(
        data_a=str(toy_a),
        data_b=str(toy_b),
        n_splits=2,
        out=str(tmp_path),
        device="cpu",
        inner_val_fraction=0.5,
        dataset=DatasetOptions(image_size=32, val_fraction=0.34),
        model=ModelOptions(width=4),
        optim=o,
        b_optim=o,
        stage2=o,
        joint_epochs=1,
    )
    res = run_cv(cfg)
    pred = res.predictions
    assert len(pred) == 18 and set(pred["fold"]) == {0, 1}
    assert pred.groupby("patient_id")["fold"].nunique().max() == 1
    assert [r["recipe"] for r in res.summary] == list(cfg.recipes)
    for r in cfg.recipes:
        assert np.isfinite(pred[f"score_{r}"]).all()
    kc = pred["label"] == "keratoconus"  # the toy cones are large: the KISA rule finds them
    assert (
        pred.loc[kc, "positive_indices"].mean()
        > pred.loc[pred["label"] == "normal", "positive_indices"].mean()
    )
    paths = write_cv_outputs(res, cfg)
    assert paths["roc"].stat().st_size > 1000 and paths["report"].is_file()


@pytest.mark.gpu
def test_cuda_bf16_channels_last_step():
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    from ophthalmo.keratoconus.train import _autocast

    dev = torch.device("cuda")
    net = build_model(backbone="resnet18").to(dev).to(memory_format=torch.channels_last)
    x = torch.randn(8, 3, 64, 64, device=dev).contiguous(memory_format=torch.channels_last)
    with _autocast(dev, True):
        logits = net(x, x, torch.ones(8, 1, device=dev))
    assert logits.dtype == torch.bfloat16
    loss = torch.nn.functional.cross_entropy(logits.float(), torch.tensor([0, 1] * 4, device=dev))
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)
    assert net.axial.stages[0][0].weight.is_contiguous(memory_format=torch.channels_last)
