"""Show versions of Python, healthsense and every dependency, devices, CPUs and the git revision.

Paste this output into bug reports. With ``--json`` it prints one JSON object.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

from healthsense.cli._common import print_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def _torch_devices() -> dict:
    try:
        import torch
    except Exception as exc:  # a broken torch install must not break sys-info itself
        return {"torch_error": str(exc)}
    info: dict = {
        "cuda_available": bool(torch.cuda.is_available()),
        "cuda_version": torch.version.cuda,
        "cuda_devices": [],
    }
    if info["cuda_available"]:
        info["cuda_devices"] = [
            torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())
        ]
    mps = getattr(torch.backends, "mps", None)
    info["mps_available"] = bool(mps is not None and mps.is_available())
    info["torch_threads"] = torch.get_num_threads()
    return info


def collect() -> dict:
    """Everything ``sys-info`` reports, as a dict."""
    from healthsense.runtime import select_device, versions

    info = {
        "versions": versions(),
        "executable": sys.executable,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }
    devices = _torch_devices()
    info["torch"] = devices
    if "torch_error" not in devices:
        info["default_device"] = str(select_device("auto"))
    return info


def run(args: argparse.Namespace) -> int:
    info = collect()
    if args.json:
        print_json(info)
        return 0
    width = 24
    lines = ["healthsense system information", ""]
    for key, value in info["versions"].items():
        lines.append(
            f"{key + ':':<{width}}{value if value is not None else ('unknown' if key == 'git_revision' else 'not installed')}"
        )
    lines.append("")
    lines.append(f"{'executable:':<{width}}{info['executable']}")
    lines.append(f"{'machine:':<{width}}{info['machine']}")
    lines.append(f"{'CPUs (usable):':<{width}}{info['cpu_count']} ({info['cpu_affinity']})")
    torch_info = info["torch"]
    if "torch_error" in torch_info:
        lines.append(f"{'torch:':<{width}}import failed: {torch_info['torch_error']}")
    else:
        cuda = ", ".join(torch_info["cuda_devices"]) or "none"
        lines.append(f"{'CUDA available:':<{width}}{torch_info['cuda_available']} ({cuda})")
        lines.append(f"{'CUDA build:':<{width}}{torch_info['cuda_version']}")
        lines.append(f"{'MPS available:':<{width}}{torch_info['mps_available']}")
        lines.append(f"{'torch threads:':<{width}}{torch_info['torch_threads']}")
        lines.append(f"{'default device:':<{width}}{info['default_device']}")
    print("\n".join(lines))
    return 0
