"""Runtime utilities: seeding, devices, hashing, logging-aware progress bars, versions."""

from __future__ import annotations

import hashlib
import logging
import random

import numpy as np
import pytest

from healthsense import runtime


def test_seed_everything_reproduces_all_generators():
    import torch

    def draw():
        rng = runtime.seed_everything(123)
        return (random.random(), np.random.rand(), torch.rand(1).item(), rng.random())  # noqa: NPY002

    assert draw() == draw()
    a = draw()
    runtime.seed_everything(124)
    b = (random.random(), np.random.rand())  # noqa: NPY002
    assert (a[0], a[1]) != b


@pytest.mark.parametrize("bad", [-1, 1.5, "3"])
def test_seed_validation(bad):
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        runtime.seed_everything(bad)


def test_select_device_cpu_and_errors(monkeypatch):
    import torch

    assert runtime.select_device("cpu").type == "cpu"
    assert runtime.select_device("auto").type in {"cpu", "cuda", "mps"}
    with pytest.raises(ValueError, match="unknown device"):
        runtime.select_device("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        runtime.select_device("cuda")
    assert runtime.select_device("auto").type in {"cpu", "mps"}


def test_sha256_file_matches_hashlib(tmp_path):
    data = np.random.default_rng(0).bytes(3_000_000)  # spans several read chunks
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert runtime.sha256_file(path, chunk_size=1 << 16) == hashlib.sha256(data).hexdigest()
    assert runtime.sha256_bytes(b"abc") == hashlib.sha256(b"abc").hexdigest()


def test_progress_silent_above_info(monkeypatch, capsys):
    monkeypatch.delenv("HEALTHSENSE_NO_PROGRESS", raising=False)
    runtime.setup_logging(-1)
    assert runtime.get_logger().level == logging.WARNING
    assert not runtime.progress_enabled()
    assert list(runtime.progress(range(5), desc="quiet")) == [0, 1, 2, 3, 4]
    assert "quiet" not in capsys.readouterr().err
    runtime.setup_logging(0)
    assert runtime.progress_enabled()
    assert list(runtime.progress(range(3), desc="shown")) == [0, 1, 2]
    assert "shown" in capsys.readouterr().err
    runtime.setup_logging(1)
    assert runtime.get_logger().level == logging.DEBUG
    runtime.setup_logging(0)
    handlers = [h for h in runtime.get_logger().handlers if getattr(h, "_healthsense", False)]
    assert len(handlers) == 1


def test_get_logger_children():
    assert runtime.get_logger("ppg.signal").name == "healthsense.ppg.signal"
    assert runtime.get_logger("healthsense.x").name == "healthsense.x"
    assert runtime.get_logger().name == "healthsense"


def test_versions_lists_every_dependency():
    info = runtime.versions(include_git=False)
    for dist in runtime.RUNTIME_DEPENDENCIES:
        assert dist in info
    assert info["numpy"] == np.__version__
    assert "git_revision" not in info
