"""Dataset loaders: each yields :class:`ppg.record.Record` objects one at a time.

=================  ==========================================  ============================
name               module                                      what
=================  ==========================================  ============================
``mw-ppg-bp``      :mod:`ppg.datasets.mw_ppg_bp`               finger PPG ×3, cuff BP, 200 Hz
``aurora-bp``      :mod:`ppg.datasets.aurora_bp`               wrist PPG/ECG/tonometry, 500 Hz
``uci-cuffless``   :mod:`ppg.datasets.uci_cuffless`            MIMIC-II PPG/ABP/ECG, 125 Hz
``wfdb``           :mod:`ppg.datasets.wfdb_records`            PhysioNet WFDB records
``pulsedb``        :mod:`ppg.datasets.pulsedb`                 PulseDB v7.3 subject files
``csv``            :mod:`ppg.datasets.tabular`                 any CSV/TSV/NPZ + column map
=================  ==========================================  ============================

``iter_dataset(name, path, **options)`` dispatches to the module's ``iter_records``; the
options are that function's keyword arguments. Cards: ``datasets/<name>.md``.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType

from ppg.record import Record

__all__ = ["DATASETS", "DatasetInfo", "count_records", "dataset_info", "iter_dataset"]


@dataclass(frozen=True)
class DatasetInfo:
    """What the command line needs to know about a loader."""

    name: str
    module: str
    default_ppg: str
    labels: tuple[str, ...]

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


DATASETS: dict[str, DatasetInfo] = {
    "mw-ppg-bp": DatasetInfo("mw-ppg-bp", "ppg.datasets.mw_ppg_bp", "green", ("sbp", "dbp")),
    "aurora-bp": DatasetInfo("aurora-bp", "ppg.datasets.aurora_bp", "ppg", ("sbp", "dbp")),
    "uci-cuffless": DatasetInfo("uci-cuffless", "ppg.datasets.uci_cuffless", "ppg", ("sbp", "dbp")),
    "wfdb": DatasetInfo("wfdb", "ppg.datasets.wfdb_records", "ppg", ("sbp", "dbp")),
    "pulsedb": DatasetInfo("pulsedb", "ppg.datasets.pulsedb", "ppg", ("sbp", "dbp")),
    "csv": DatasetInfo("csv", "ppg.datasets.tabular", "ppg", ()),
}


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry, or a ValueError listing the known names."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(DATASETS)}") from None


def iter_dataset(name: str, path: str | os.PathLike, **options) -> Iterator[Record]:
    """Stream the records of a dataset (see the module of ``name`` for ``options``)."""
    return dataset_info(name).load().iter_records(path, **options)


def count_records(name: str, path: str | os.PathLike, **options) -> int | None:
    """How many records :func:`iter_dataset` will yield, or None where that needs a full read."""
    return dataset_info(name).load().count_records(path, **options)
