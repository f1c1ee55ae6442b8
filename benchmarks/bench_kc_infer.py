"""CPU inference speed of the keratoconus dual-head CNN (small backbone, 64 px).

Target (issue 6): >= 50 eyes/s on CPU with the small backbone. Measures, on a synthetic
SmartKC-like cohort written to a temporary folder:

* end to end: ``predict_cases`` from raw ``.npz`` files (read, render both maps, score);
* batched model only (inputs already decoded);
* baseline: the straightforward loop, one eye per forward pass.

    .venv/bin/python benchmarks/bench_kc_infer.py [--eyes 200] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--eyes", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--image-size", type=int, default=64)
    args = parser.parse_args()

    import torch

    from ophthalmo.keratoconus.data import KCDataset, read_labels
    from ophthalmo.keratoconus.model import build_model
    from ophthalmo.keratoconus.predict import predict_cases
    from ophthalmo.keratoconus.synthetic import generate_cohort
    from ophthalmo.keratoconus.train import predict_proba

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_model(backbone="small").eval()
    card = {"threshold": 0.5, "image_size": args.image_size, "use_indices": False}
    with tempfile.TemporaryDirectory() as tmp:
        generate_cohort(
            Path(tmp) / "B", domain="smartkc", n_eyes=args.eyes, random_state=0, image_size=64
        )
        frame = read_labels(Path(tmp) / "B")
        cases = frame.assign(label="")
        t = time.perf_counter()
        res = predict_cases(model, card, cases)
        e2e = len(res) / (time.perf_counter() - t)
        assert not any("error" in r for r in res)

        ds = KCDataset(frame, image_size=args.image_size)
        items = [ds[i] for i in range(len(ds))]  # decode once
        t = time.perf_counter()
        predict_proba(model, items, batch_size=64)
        batched = len(items) / (time.perf_counter() - t)
        t = time.perf_counter()
        with torch.no_grad():
            for ax, tg, meta, _ in items:  # baseline: one eye per forward pass
                model(ax[None], tg[None], meta[None])
        single = len(items) / (time.perf_counter() - t)

    out = {
        "eyes": args.eyes,
        "threads": args.threads,
        "image_size": args.image_size,
        "end_to_end_eyes_per_s": e2e,
        "batched_model_eyes_per_s": batched,
        "baseline_one_at_a_time_eyes_per_s": single,
        "batched_vs_baseline": batched / single,
        "target_eyes_per_s": 50,
        "meets_target": e2e >= 50,
    }
    print(f"end to end (read .npz, render, score): {e2e:7.1f} eyes/s  (target >= 50)")
    print(f"model only, batched (64):              {batched:7.1f} eyes/s")
    print(
        f"baseline, one eye per forward pass:    {single:7.1f} eyes/s  (batched x{batched / single:.1f})"
    )
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
