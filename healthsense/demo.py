"""The main job: every part of the toolkit on embedded, simulated data, offline and deterministic.

``healthsense demo`` runs a list of steps, one per domain. Each step synthesises its own
small data set with the toolkit's simulators (no download), runs the library on it, and
returns a summary row plus the files it wrote. A step whose inputs are missing (an earlier
step failed) is skipped with the reason, and a step that fails is reported and does not stop
the others, so the demo always ends with an index page that says plainly what ran.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from healthsense.runtime import get_logger

__all__ = ["DemoConfig", "DemoStep", "StepResult", "demo_steps", "run_demo"]

log = get_logger("demo")


@dataclass(frozen=True)
class DemoConfig:
    """Options of the demo (all have offline defaults)."""

    out: Path = Path("healthsense-demo")
    seed: int = 0
    #: Use ``../shared/data`` (real recordings) where present, beside the simulated data.
    use_shared_data: bool = True
    shared_data: Path | None = None
    #: Sizes of the simulated data sets (the defaults fit the 3-minute budget on 2 cores;
    #: tests use tiny ones).
    ppg_subjects: int = 24
    kc_train_eyes: int = 240
    kc_test_eyes: int = 80
    kc_epochs: int = 12
    screening_patients: int = 6

    def __post_init__(self) -> None:
        for name in ("ppg_subjects", "kc_train_eyes", "kc_test_eyes", "kc_epochs"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be >= 2, got {getattr(self, name)}")
        if self.screening_patients < 3:
            raise ValueError(f"screening_patients must be >= 3, got {self.screening_patients}")


@dataclass
class StepResult:
    """What one demo step did: a status, a one-line summary, key figures and files."""

    name: str
    status: str  # "ok" | "skipped" | "failed"
    summary: str
    figures: dict[str, Any] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    seconds: float = 0.0


class StepUnavailable(Exception):
    """Raised by a step whose inputs are missing (e.g. an earlier step failed): it is skipped."""


@dataclass(frozen=True)
class DemoStep:
    name: str
    title: str
    run: Callable[[DemoConfig, Path], StepResult]


def demo_steps() -> list[DemoStep]:
    """The demo's steps in order (each module in :mod:`healthsense.demo_steps`)."""
    from healthsense import demo_steps as steps

    return [
        DemoStep("ppg", "PPG informativeness on simulated recordings", steps.ppg_step),
        DemoStep("keratoconus", "Keratoconus screening on synthetic topography", steps.kc_step),
        DemoStep("retinoscopy", "Smartphone retinoscopy on simulated videos", steps.retino_step),
        DemoStep("screening", "Clinician batch screening run", steps.screening_step),
    ]


def _run_step(step: DemoStep, config: DemoConfig, out: Path) -> StepResult:
    start = time.perf_counter()
    try:
        result = step.run(config, out / step.name)
    except StepUnavailable as exc:
        result = StepResult(step.name, "skipped", str(exc))
    except Exception as exc:  # the demo reports a failed step and goes on
        log.error("demo step %s failed: %s", step.name, exc)
        log.debug("%s", traceback.format_exc())
        result = StepResult(step.name, "failed", f"{type(exc).__name__}: {exc}")
    result.seconds = time.perf_counter() - start
    return result


def run_demo(config: DemoConfig, *, steps: list[DemoStep] | None = None) -> list[StepResult]:
    """Run the demo steps and write ``index.html``, ``results.json`` and ``config.json``."""
    from healthsense.config import write_config
    from healthsense.report import Report, write_json
    from healthsense.runtime import seed_everything

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(config.seed)
    results = [_run_step(step, config, out) for step in (steps or demo_steps())]

    report = Report("healthsense demo", subtitle=f"seed {config.seed} · output folder {out}")
    report.add_heading("Steps")
    report.add_table(
        [
            {
                "step": r.name,
                "status": r.status,
                "summary": r.summary,
                "seconds": round(r.seconds, 1),
            }
            for r in results
        ]
    )
    for r in results:
        if r.figures:
            report.add_heading(r.name, level=3)
            report.add_table([{"figure": k, "value": v} for k, v in r.figures.items()])
        if r.outputs:
            items = "".join(
                f'<li><a href="{_rel(p, out)}">{_rel(p, out)}</a></li>' for p in r.outputs
            )
            report.add_html(f"<ul>{items}</ul>")
    report.save(out / "index.html")
    write_json(out / "results.json", [r.__dict__ for r in results])
    write_config(config, out, command="healthsense demo")
    return results


def _rel(path: str | Path, root: Path) -> str:
    import html

    try:
        rel = Path(path).resolve().relative_to(root.resolve())
    except ValueError:
        rel = Path(path)
    return html.escape(rel.as_posix())
