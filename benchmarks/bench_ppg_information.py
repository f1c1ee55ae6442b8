"""Benchmark of the k-NN information estimates (ppg.information): accuracy and speed.

Accuracy on fixed Gaussian samples (n = 2,000, k = 3, seed 0) against the closed forms of
docs §3 (targets: within 0.05 nats; |I| <= 0.05 for independence; monotone invariance within
0.02; Gaussian entropy within 0.05), then the speed of the KD-tree KSG against a brute-force
O(n^2) max-norm implementation of the same algorithm (the straightforward baseline), timed
in the same run, with the largest difference between the two estimates.

Usage::

    .venv/bin/python benchmarks/bench_ppg_information.py [--n-speed 10000]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from ppg.information import _ksg_with_origins, kl_entropy, ksg_mutual_information


def accuracy(n: int = 2000) -> None:
    rng = np.random.default_rng(0)
    print(f"accuracy, n = {n}, k = 3 (nats)")
    for rho in (0.3, 0.6, 0.9):
        s = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], n)
        est = ksg_mutual_information(s[:, 0], s[:, 1])
        truth = -0.5 * math.log(1 - rho**2)
        mono = ksg_mutual_information(np.exp(s[:, 0] / 2), 1 / (1 + np.exp(-s[:, 1])))
        cube = ksg_mutual_information(s[:, 0] ** 3, s[:, 1])
        print(
            f"  rho {rho}: I = {est:.4f} truth {truth:.4f} |err| {abs(est - truth):.4f}; "
            f"monotone (exp, logistic) shift {mono - est:+.4f}; cube shift {cube - est:+.4f}"
        )
    a = rng.normal(size=(5, 5))
    cov = a @ a.T + np.eye(5)
    s = rng.multivariate_normal(np.zeros(5), cov, n)
    truth = 0.5 * math.log(np.linalg.det(cov[:4, :4]) * cov[4, 4] / np.linalg.det(cov))
    est = ksg_mutual_information(s[:, :4], s[:, 4])
    print(
        f"  5-D Gaussian (4-D X, 1-D y): I = {est:.4f} truth {truth:.4f} |err| {abs(est - truth):.4f}"
    )
    ind = ksg_mutual_information(rng.normal(size=(n, 3)), rng.normal(size=n))
    print(f"  independent (3-D X): I = {ind:+.4f}")
    y = rng.normal(120, 15, n)
    h = kl_entropy(y)
    print(
        f"  entropy N(120, 15^2): H = {h:.4f} truth {0.5 * math.log(2 * math.pi * math.e * 225):.4f}"
    )


def speed(n: int, d: int = 5) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(n, d))
    y = X[:, 0] + rng.normal(size=n)
    ksg_mutual_information(X[:200], y[:200])
    t0 = time.perf_counter()
    fast = ksg_mutual_information(X, y)
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    brute = _ksg_with_origins(X, y[:, None], np.arange(n), 3)
    t_brute = time.perf_counter() - t0
    print(
        f"speed, n = {n}, d = {d}: KD-tree KSG {t_fast:.3f} s, brute-force O(n^2) "
        f"{t_brute:.2f} s -> x{t_brute / t_fast:.0f}; |difference| {abs(fast - brute):.2e} nats"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-speed", type=int, default=10_000)
    args = ap.parse_args()
    accuracy()
    speed(args.n_speed)


if __name__ == "__main__":
    main()
