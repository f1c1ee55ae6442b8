"""Configuration: defaults, TOML, typed overrides, errors that list valid keys, resolved JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import pytest

from healthsense.config import (
    ConfigError,
    apply_overrides,
    config_to_dict,
    load_config,
    parse_overrides,
    valid_keys,
    write_config,
)


@dataclass(frozen=True)
class Optim:
    lr: float = 1e-3
    betas: tuple[float, ...] = (0.9, 0.999)


@dataclass(frozen=True)
class Train:
    epochs: int = 10
    device: str = "auto"
    amp: bool = False
    init: Path | None = None
    stage: Literal[1, 2] = 1
    labels: tuple[str, ...] = ("sbp", "dbp")
    optim: Optim = field(default_factory=Optim)

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ValueError("epochs must be >= 1")


def test_defaults_come_from_code():
    cfg = load_config(Train)
    assert cfg == Train()


def test_valid_keys_expand_sections():
    assert valid_keys(Train) == [
        "epochs",
        "device",
        "amp",
        "init",
        "stage",
        "labels",
        "optim.lr",
        "optim.betas",
    ]


@pytest.mark.parametrize(
    ("override", "attr", "expected"),
    [
        ("epochs=3", "epochs", 3),
        ("epochs=3.0", "epochs", 3),
        ("epochs=1_000", "epochs", 1000),
        ("amp=true", "amp", True),
        ("amp=0", "amp", False),
        ("amp=yes", "amp", True),
        ("device=cuda:1", "device", "cuda:1"),
        ("init=ckpt/stage1.pt", "init", Path("ckpt/stage1.pt")),
        ("init=none", "init", None),
        ("stage=2", "stage", 2),
        ("labels=sbp,hr", "labels", ("sbp", "hr")),
        ('labels=["hr"]', "labels", ("hr",)),
    ],
)
def test_override_coercion(override, attr, expected):
    cfg = apply_overrides(Train(), [override])
    assert getattr(cfg, attr) == expected
    assert type(getattr(cfg, attr)) is type(expected)


def test_dotted_override_reaches_section():
    cfg = apply_overrides(Train(), ["optim.lr=3e-4", "optim.betas=[0.8, 0.9]"])
    assert cfg.optim.lr == pytest.approx(3e-4)
    assert cfg.optim.betas == (0.8, 0.9)
    # the original is frozen and untouched
    assert Train().optim.lr == 1e-3


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ("epoch=3", r"unknown configuration key 'epoch'.*valid keys: .*epochs"),
        ("optim.momentum=0.9", r"unknown configuration key 'optim.momentum'.*optim.lr"),
        ("optim=1", r"'optim' \(a section"),
        ("epochs=three", r"epochs: expected int, got 'three'"),
        ("epochs=2.5", r"epochs: expected int"),
        ("amp=maybe", r"amp: expected bool.*true or false"),
        ("stage=3", r"stage: expected one of 1, 2"),
        ("optim.lr=fast", r"optim.lr: expected float"),
        ("epochs=0", r"epochs must be >= 1"),
        ("noequals", r"not of the form key=value"),
        ("=3", r"empty key"),
    ],
)
def test_bad_overrides_are_clear_errors(override, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(Train(), [override])


def test_toml_then_overrides(tmp_path):
    path = tmp_path / "train.toml"
    path.write_text('epochs = 4\ndevice = "cpu"\n[optim]\nlr = 0.01\n', encoding="utf-8")
    cfg = load_config(Train, path, ["epochs=6"])
    assert (cfg.epochs, cfg.device, cfg.optim.lr) == (6, "cpu", 0.01)


def test_toml_section(tmp_path):
    path = tmp_path / "all.toml"
    path.write_text("[train]\nepochs = 2\n[other]\nx = 1\n", encoding="utf-8")
    assert load_config(Train, path, section="train").epochs == 2
    with pytest.raises(ConfigError, match=r"no \[screen\] table"):
        load_config(Train, path, section="screen")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("epochs = 'ten'\n", r"epochs: expected int"),
        ("epochz = 1\n", r"unknown configuration key\(s\) epochz; valid keys"),
        ("[optim]\nlr = true\n", r"optim.lr: expected float"),
        ("optim = 3\n", r"optim: expected Optim.*section"),
        ("epochs = \n", r"not valid TOML"),
    ],
)
def test_bad_toml_names_the_file(tmp_path, content, match):
    path = tmp_path / "bad.toml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=match) as info:
        load_config(Train, path)
    assert "bad.toml" in str(info.value)


def test_missing_toml(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(Train, tmp_path / "nope.toml")


def test_parse_overrides_keeps_equals_in_value():
    assert parse_overrides(["data=a=b.csv"]) == {"data": "a=b.csv"}


def test_resolved_config_written_as_json_with_versions(tmp_path):
    cfg = apply_overrides(Train(), ["init=x.pt", "optim.lr=0.5"])
    path = write_config(cfg, tmp_path / "out", command="healthsense kc train")
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert payload["config"] == config_to_dict(cfg)
    assert payload["config"]["init"] == "x.pt"
    assert payload["config"]["optim"] == {"lr": 0.5, "betas": [0.9, 0.999]}
    assert payload["command"] == "healthsense kc train"
    assert payload["versions"]["numpy"]
    assert payload["versions"]["python"].startswith("3.")
    assert payload["schema"].endswith("Train")
    # no temp files left behind by the atomic write
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.json"]


def test_write_config_accepts_a_mapping(tmp_path):
    path = write_config({"threshold": float("nan"), "out": Path("a")}, tmp_path)
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert payload["config"] == {"threshold": None, "out": "a"}
