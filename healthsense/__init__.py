"""healthsense: wearable and smartphone health sensing.

The shared core: configuration (:mod:`healthsense.config`), diagnostic and agreement metrics
(:mod:`healthsense.metrics`), reports and atomic writers (:mod:`healthsense.report`),
run-time utilities (:mod:`healthsense.runtime`) and the ``healthsense`` command line
(:mod:`healthsense.cli`). The domain packages are :mod:`ppg` and :mod:`ophthalmo`.

Research software, not a medical device.
"""

from healthsense._version import __version__

__all__ = ["__version__"]

DISCLAIMER = (
    "Research software, not a medical device: results must not be used for diagnosis or "
    "treatment decisions without review by a qualified clinician."
)
