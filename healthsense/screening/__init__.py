"""The clinician batch screening run: a manifest of eyes in, referral decisions and reports out.

Public API::

    from healthsense.screening import ScreeningConfig, run_screening

    summary = run_screening("manifest.csv", "screen_out", config=ScreeningConfig(),
                            kc_model=None, workers=2)
    summary.counts        # {"REFER": ..., "NO_REFER": ..., "UNGRADABLE": ...}
    summary.exit_code     # 0: every eye graded; 1: some eyes UNGRADABLE

Modules: :mod:`~healthsense.screening.manifest` (the input CSV),
:mod:`~healthsense.screening.config` (thresholds), :mod:`~healthsense.screening.retino_test`
and :mod:`~healthsense.screening.kc_test` (adapters to the two domain libraries),
:mod:`~healthsense.screening.cases` (one eye and the referral decision),
:mod:`~healthsense.screening.executors` (local, process pool, Dask),
:mod:`~healthsense.screening.runner` (the run), :mod:`~healthsense.screening.pages` (HTML),
:mod:`~healthsense.screening.audit` (the append-only audit log).

Research software, not a medical device.
"""

from healthsense.screening.cases import DECISIONS, decide, screen_eye
from healthsense.screening.config import ScreeningConfig, load_screening_config
from healthsense.screening.kc_test import KcModel, load_kc_model
from healthsense.screening.manifest import MANIFEST_COLUMNS, EyeCase, ManifestError, read_manifest
from healthsense.screening.runner import ScreeningSummary, run_screening

__all__ = [
    "DECISIONS",
    "MANIFEST_COLUMNS",
    "EyeCase",
    "KcModel",
    "ManifestError",
    "ScreeningConfig",
    "ScreeningSummary",
    "decide",
    "load_kc_model",
    "load_screening_config",
    "read_manifest",
    "run_screening",
    "screen_eye",
]
