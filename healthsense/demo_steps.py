"""The steps of ``healthsense demo``, one function per domain (see :mod:`healthsense.demo`).

Each step makes its own small data set with the toolkit's simulators, runs the library and
returns a :class:`~healthsense.demo.StepResult`. Steps import their domain lazily, so the
demo runs whatever parts of the toolkit are built.
"""

from __future__ import annotations

from pathlib import Path

from healthsense.demo import DemoConfig, StepResult, _require


def ppg_step(config: DemoConfig, out: Path) -> StepResult:
    _require("ppg.simulate", "ppg.windows", "ppg.mvm", "ppg.information")
    raise NotImplementedError  # replaced when the PPG parts land


def kc_step(config: DemoConfig, out: Path) -> StepResult:
    _require("ophthalmo.keratoconus.synthetic", "ophthalmo.keratoconus.train")
    raise NotImplementedError


def retino_step(config: DemoConfig, out: Path) -> StepResult:
    _require("ophthalmo.retinoscopy.simulate", "ophthalmo.retinoscopy.estimate")
    raise NotImplementedError


def screening_step(config: DemoConfig, out: Path) -> StepResult:
    _require("healthsense.screening")
    raise NotImplementedError
