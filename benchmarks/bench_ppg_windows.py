"""Benchmark the PPG data layer: windowing speed on mw-ppg-bp and streaming memory on UCI-sized data.

1. Window all 78 mw-ppg-bp subjects with the defaults (0.5–8 Hz, 125 Hz, 2 s, labels, quality),
   against a straightforward baseline (pandas + neurokit2 cleaning + FFT resampling + a Python
   loop over windows, no labels or quality). Target: ≤ 10 s on 2 cores.
2. Stream N synthetic UCI-sized records (3 × ~12,500 samples, a MATLAB v7 Part_1.mat) through
   ``iter_dataset("uci-cuffless") → make_windows`` in a subprocess and report its peak RSS,
   against ``scipy.io.loadmat`` of the same file (what a straightforward loader does).
   Target: < 1 GB for N = 1,000.

Usage: python benchmarks/bench_ppg_windows.py [--data ../shared/data/mw-ppg-bp] [--n 1000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HEALTHSENSE_NO_PROGRESS", "1")


def bench_mw(data: Path) -> None:
    import neurokit2 as nk
    import pandas as pd
    from scipy import stats

    from ppg.datasets import iter_dataset
    from ppg.windows import make_windows

    t0 = time.perf_counter()
    ws = make_windows(iter_dataset("mw-ppg-bp", data, channels=["green"]), channel="green")
    ours = time.perf_counter() - t0

    t0 = time.perf_counter()
    n_base = 0
    for f in sorted(data.glob("bp_dataset_*.csv*")):
        x = pd.read_csv(f)["green_channel"].to_numpy(float)
        y = nk.ppg_clean(x, sampling_rate=200)
        y = nk.signal_resample(y, sampling_rate=200, desired_sampling_rate=125, method="FFT")
        for start in range(0, len(y) - 250 + 1, 250):
            stats.zscore(y[start : start + 250])
            n_base += 1
    base = time.perf_counter() - t0
    print(
        f"mw-ppg-bp, 78 subjects: {len(ws)} windows in {ours:.2f} s (target <= 10 s); "
        f"baseline (no labels/quality) {n_base} windows in {base:.2f} s; ratio ours/baseline = {ours / base:.2f}"
    )


_CHILD = r"""
import os, sys, time
os.environ["HEALTHSENSE_NO_PROGRESS"] = "1"
sys.path.insert(0, sys.argv[3])
t0 = time.perf_counter()
if sys.argv[1] == "stream":
    from ppg.datasets import iter_dataset
    from ppg.windows import make_windows
    ws = make_windows(iter_dataset("uci-cuffless", sys.argv[2]), labels=("sbp", "dbp", "hr"), hr_source="ppg")
    n = len(ws)
elif sys.argv[1] == "iterate":
    from ppg.datasets import iter_dataset
    n = sum(1 for r in iter_dataset("uci-cuffless", sys.argv[2]))
else:
    import scipy.io as sio
    n = sio.loadmat(sys.argv[2])["Part_1"].size
# VmHWM (peak resident set of this process image): ru_maxrss would carry the parent's peak
# across fork + exec on Linux.
hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
print(n, time.perf_counter() - t0, hwm / 1024)
"""


def bench_stream(n_records: int) -> None:
    import scipy.io as sio

    from ppg.simulate import ppg_simulate, simulate_subjects

    rng = np.random.default_rng(0)
    cells = np.empty((1, n_records), dtype=object)
    subjects = simulate_subjects(50, random_state=rng)
    for i in range(n_records):
        dur = float(rng.uniform(60, 140))  # ~12,500 samples on average, as in the UCI parts
        rec = ppg_simulate(subjects[i % 50], duration_s=dur, random_state=rng)
        ecg = rng.normal(size=rec.signal("ppg").size)
        cells[0, i] = np.vstack([rec.signal("ppg"), rec.signal("abp"), ecg])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "Part_1.mat"
        sio.savemat(path, {"Part_1": cells}, do_compression=True)
        size_mb = sum(c.nbytes for c in cells[0]) / 2**20
        del cells
        print(
            f"synthetic UCI file: {n_records} records, {size_mb:.0f} MB of samples, "
            f"{path.stat().st_size / 2**20:.0f} MB on disk"
        )
        for mode in ("iterate", "stream", "loadmat"):
            out = subprocess.run(
                [sys.executable, "-c", _CHILD, mode, str(path), str(ROOT)],
                capture_output=True,
                text=True,
                check=True,
            )
            n, secs, rss = out.stdout.split()
            what = "windows" if mode == "stream" else "records"
            # iterate: the loader alone; stream: loader + windowing (holds all windows);
            # loadmat: the straightforward whole-file read
            print(f"  {mode:8s}: {n} {what} in {float(secs):.1f} s, peak RSS {float(rss):.0f} MB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mw-ppg-bp")
    ap.add_argument("--n", type=int, default=1000, help="synthetic UCI records (default 1000)")
    args = ap.parse_args()
    if args.data.is_dir():
        bench_mw(args.data)
    else:
        print(f"{args.data} not found; skipping the mw-ppg-bp benchmark")
    bench_stream(args.n)


if __name__ == "__main__":
    main()
