"""HTML outputs of the screening run: one page per patient and ``summary.html``.

Pages are self-contained (:class:`healthsense.report.Report`: inline CSS, images as base64, no
scripts), open offline and state that this is research software, not a medical device.
The summary gives the counts, the ungradable rate with its reasons and, where the manifest
holds reference labels, a STARD-style flow of eyes with sensitivity, specificity, PPV and NPV
(Wilson 95 % intervals) for the referral decision and for each test.
"""

from __future__ import annotations

import html
import os
import re
from collections import Counter
from pathlib import Path
from typing import Any

from healthsense.screening._common import safe_name
from healthsense.screening.config import ScreeningConfig
from healthsense.screening.kc_test import KcModel

__all__ = ["diagnostic_rows", "referral_rule_text", "write_patient_pages", "write_summary"]

_EYE_WORDS = {"OD": "right eye (OD)", "OS": "left eye (OS)"}
_DECISION_WORDS = {
    "REFER": ("bad", "REFER — refer to an eye-care specialist"),
    "NO_REFER": ("ok", "NO REFER — no referral indicated by these tests"),
    "UNGRADABLE": ("warn", "UNGRADABLE — could not be screened; repeat the test or refer"),
}


def referral_rule_text(config: ScreeningConfig, model: KcModel | None) -> str:
    """The referral rule in plain words, as applied in this run."""
    r, k = config.refraction, config.keratoconus
    meridians = " or the power of any measured meridian" if r.use_meridians else ""
    if model is not None:
        thr = k.threshold if k.threshold is not None else model.threshold
        kc = f"the keratoconus model's probability is at least {thr:.2f} ({model.version})"
    else:
        classes = "keratoconus or suspect" if k.refer_suspect else "keratoconus"
        kc = (
            "no keratoconus model was given, so the index rules decide (KISA %, central K, "
            f"I-S): positive when they class the eye {classes}"
        )
    tail = (
        "An eye is UNGRADABLE when no test gives a result, or when a requested test fails and "
        "no other test is positive."
        if config.require_all_tests
        else "An eye is UNGRADABLE only when no test gives a result."
    )
    return (
        f"Referral rule: REFER when the magnitude of the spherical equivalent{meridians} is at "
        f"least {r.refer_power_d:.2f} D, or when {kc}. One positive test is enough to refer, "
        f"even when the other test failed. {tail}"
    )


# ------------------------------------------------------------------------------ patient pages


def _fmt(value: Any, spec: str = ".2f", unit: str = "") -> str:
    if value is None or value == "":
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return f"{value:{spec}}{unit}"
    return str(value)


def _test_block(report, test: dict[str, Any], out_dir: Path, title: str) -> None:
    report.add_heading(title, level=3)
    status = test["status"]
    if status == "ok":
        report.add_text(test.get("finding") or "Result available.")
        if test.get("reason"):
            report.add_text(f"Note: {test['reason']}")
    elif status == "not_requested":
        report.add_text("Not requested: the manifest gives no input for this test.")
    elif status == "not_run":
        report.add_text(f"Not run: {test['reason']}", css_class="warn")
    else:
        report.add_text(f"Ungradable: {test['reason']}", css_class="warn")
    keys = [
        ("power_d", "meridian power", "+.2f", " D"),
        ("sphere_d", "sphere", "+.2f", " D"),
        ("cylinder_d", "cylinder", "+.2f", " D"),
        ("axis_deg", "axis", ".0f", "°"),
        ("se_d", "spherical equivalent", "+.2f", " D"),
        ("confidence", "confidence", ".2f", ""),
        ("motion", "reflex motion", "", ""),
        ("working_distance_m", "working distance", ".3f", " m"),
        ("method", "method", "", ""),
        ("probability", "keratoconus probability", ".3f", ""),
        ("threshold", "model threshold", ".3f", ""),
        ("rule_class", "index-rule class", "", ""),
        ("kisa_pct", "KISA %", ".1f", ""),
        ("central_k_d", "central K", ".2f", " D"),
        ("i_s_d", "I-S", "+.2f", " D"),
        ("srax_deg", "SRAX", ".1f", "°"),
        ("ast_d", "Sim-K astigmatism", ".2f", " D"),
    ]
    rows = [
        {"measure": label, "value": _fmt(test.get(k), spec, unit)}
        for k, label, spec, unit in keys
        if test.get(k) not in (None, "")
    ]
    if rows:
        report.add_table(rows)
    for name, rel in test.get("figures", {}).items():
        path = out_dir / rel
        if path.is_file():
            report.add_figure(path, caption=name, alt=name)


def _patient_page(patient: str, eyes: list[dict[str, Any]], out_dir: Path, rule: str):
    from healthsense.report import Report

    report = Report(f"Screening — patient {patient}", subtitle="healthsense screen")
    report.add_html('<p><a href="../summary.html">← back to the summary</a></p>')
    report.add_table(
        [
            {
                "eye": _EYE_WORDS[e["eye"]],
                "decision": e["decision"],
                "reasons": "; ".join(e["reasons"]),
            }
            for e in eyes
        ],
        table_id="decisions",
    )
    for e in eyes:
        css, words = _DECISION_WORDS[e["decision"]]
        report.add_heading(_EYE_WORDS[e["eye"]], anchor=e["eye"])
        report.add_html(f'<p class="{css}">{html.escape(words)}</p>')
        _test_block(report, e["refraction"], out_dir, "Refraction (retinoscopy)")
        _test_block(report, e["keratoconus"], out_dir, "Keratoconus (corneal topography)")
        inputs = [
            {"input": c, "file": v["path"], "sha256": (v.get("sha256") or "missing")[:16]}
            for c, v in e["inputs"].items()
        ]
        if inputs:
            report.add_table(
                inputs, caption="Inputs (sha256 abbreviated; full hashes in screening.csv)"
            )
    report.add_heading("How the decision is made")
    report.add_text(rule)
    return report


def write_patient_pages(
    results: list[dict[str, Any]],
    out_dir: Path,
    *,
    config: ScreeningConfig,
    model: KcModel | None,
) -> dict[str, Path]:
    """Write ``patients/<patient>.html`` for every patient; returns patient id → path."""
    rule = referral_rule_text(config, model)
    by_patient: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_patient.setdefault(r["patient_id"], []).append(r)
    pages = {}
    for patient, eyes in by_patient.items():
        eyes = sorted(eyes, key=lambda e: e["eye"] != "OD")
        path = out_dir / "patients" / f"{safe_name(patient)}.html"
        _patient_page(patient, eyes, out_dir, rule).save(path)
        pages[patient] = path
    return pages


# ------------------------------------------------------------------------------ diagnostics


def _reference(result: dict[str, Any], test: str, threshold: float) -> bool | None:
    if test == "refraction":
        ref = result.get("reference_power_d")
        return None if ref is None else abs(ref) >= threshold
    if test == "keratoconus":
        return result.get("reference_keratoconus")
    refs = [
        _reference(result, t, threshold)
        for t in ("refraction", "keratoconus")
        if result[t]["status"] != "not_requested"
    ]
    if any(r is True for r in refs):
        return True
    if refs and all(r is False for r in refs):
        return False
    return None  # some requested test has no reference: the eye's true status is unknown


def diagnostic_rows(results: list[dict[str, Any]], config: ScreeningConfig) -> list[dict[str, Any]]:
    """Per target (referral, refraction, keratoconus): the STARD flow counts and accuracy.

    Eyes without a reference are left out; ungradable index tests are counted in the flow and
    excluded from the 2 × 2 table (the ungradable rate is reported beside the accuracy).
    """
    import warnings

    from healthsense.metrics import ConfusionCounts, binary_diagnostics

    thr = config.refraction.refer_power_d
    rows = []
    for target in ("referral", "refraction", "keratoconus"):
        tp = fp = fn = tn = ungradable = no_ref = 0
        eligible = 0
        for r in results:
            if target != "referral" and r[target]["status"] == "not_requested":
                continue
            eligible += 1
            ref = _reference(r, target, thr)
            if ref is None:
                no_ref += 1
                continue
            if target == "referral":
                if r["decision"] == "UNGRADABLE":
                    ungradable += 1
                    continue
                pos = r["decision"] == "REFER"
            else:
                if r[target]["status"] != "ok":
                    ungradable += 1
                    continue
                pos = bool(r[target]["positive"])
            tp += pos and ref
            fp += pos and not ref
            fn += (not pos) and ref
            tn += (not pos) and (not ref)
        if eligible - no_ref == 0:
            continue
        counts = ConfusionCounts(tp=tp, fp=fp, fn=fn, tn=tn)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # undefined proportions are shown as "–"
            d = binary_diagnostics(counts=counts)
        rows.append(
            {
                "target": target,
                "eligible": eligible,
                "no_reference": no_ref,
                "with_reference": eligible - no_ref,
                "ungradable": ungradable,
                "tp": tp,
                "fp": fp,
                "fn": fn,
                "tn": tn,
                **{k: getattr(d, k) for k in ("sensitivity", "specificity", "ppv", "npv")},
                **{
                    f"{k}_ci": list(getattr(d, f"{k}_ci"))
                    for k in ("sensitivity", "specificity", "ppv", "npv")
                },
            }
        )
    return rows


def _pct_ci(value: float, ci: list[float]) -> str:
    import math

    if value is None or not math.isfinite(value):
        return "–"
    return f"{100 * value:.1f} % ({100 * ci[0]:.1f}–{100 * ci[1]:.1f})"


def _flow_html(row: dict[str, Any]) -> str:
    """A STARD-style flow diagram as nested boxes (pure HTML/CSS, no scripts)."""
    box = (
        'style="border:1px solid #57606a;border-radius:6px;padding:.4rem .7rem;'
        'margin:.35rem auto;max-width:34rem;text-align:center;background:#f6f8fa"'
    )
    pos, neg = row["tp"] + row["fp"], row["fn"] + row["tn"]
    name = {
        "referral": "screening decision",
        "refraction": "refraction test",
        "keratoconus": "keratoconus test",
    }[row["target"]]
    parts = [
        f'<div class="flow" data-target="{row["target"]}">',
        f"<div {box}>Eligible eyes: <b>{row['eligible']}</b></div>",
        f"<div {box}>Excluded, no reference standard: <b>{row['no_reference']}</b></div>",
        f"<div {box}>Eyes with a reference standard: <b>{row['with_reference']}</b></div>",
        f"<div {box}>Index test ({name}) ungradable: <b>{row['ungradable']}</b></div>",
        '<div style="display:flex;gap:1rem;justify-content:center">',
        f"<div {box}>Index test positive: <b>{pos}</b><br>reference + {row['tp']} · "
        f"reference − {row['fp']}</div>",
        f"<div {box}>Index test negative: <b>{neg}</b><br>reference + {row['fn']} · "
        f"reference − {row['tn']}</div>",
        "</div></div>",
    ]
    return "".join(parts)


def _reason_category(reason: str) -> str:
    # Drop the file name in front ("clip.mp4: not a readable video") so reasons group.
    return re.sub(r"^[^:;]*\.[A-Za-z0-9]{2,5}: ", "", reason.strip())


def _decision_figure(counts: dict[str, int]):
    from healthsense.report import new_figure

    fig, ax = new_figure(figsize=(5.0, 2.4))
    names = list(counts)
    colours = {"REFER": "#cf222e", "NO_REFER": "#1a7f37", "UNGRADABLE": "#9a6700"}
    ax.barh(names, [counts[n] for n in names], color=[colours[n] for n in names])
    for i, n in enumerate(names):
        ax.text(counts[n], i, f" {counts[n]}", va="center")
    ax.set_xlabel("eyes")
    ax.invert_yaxis()
    ax.set_xlim(0, max(1, max(counts.values())) * 1.15)
    return fig


def write_summary(
    results: list[dict[str, Any]],
    out_dir: Path,
    *,
    config: ScreeningConfig,
    model: KcModel | None,
    manifest: Path,
    pages: dict[str, Path],
) -> tuple[Path, list[dict[str, Any]]]:
    """Write ``summary.html``; returns its path and the diagnostic rows."""
    from healthsense import __version__
    from healthsense.metrics import wilson_interval
    from healthsense.report import Report

    n = len(results)
    counts = {
        d: sum(r["decision"] == d for r in results) for d in ("REFER", "NO_REFER", "UNGRADABLE")
    }
    report = Report(
        "Screening summary",
        subtitle=f"manifest {manifest.name} · {n} eyes · healthsense {__version__}",
    )
    report.add_heading("Decisions")
    u = counts["UNGRADABLE"]
    lo, hi = wilson_interval(u, n) if n else (float("nan"), float("nan"))
    report.add_table(
        [
            {"decision": d, "eyes": c, "share": f"{100 * c / n:.1f} %" if n else "–"}
            for d, c in counts.items()
        ],
        table_id="counts",
    )
    report.add_text(
        f"Ungradable rate: {u} of {n} eyes"
        + (
            f" = {100 * u / n:.1f} % (Wilson 95 % CI {100 * lo:.1f}–{100 * hi:.1f} %)."
            if n
            else "."
        )
    )
    report.add_figure(_decision_figure(counts), caption="Decisions per eye", alt="decision counts")
    reasons: Counter[tuple[str, str]] = Counter()
    for r in results:
        if r["decision"] != "UNGRADABLE":
            continue
        for test in ("refraction", "keratoconus"):
            t = r[test]
            if t["status"] in ("ungradable", "not_run"):
                reasons[(test, _reason_category(t["reason"]))] += 1
        if all(r[t]["status"] == "not_requested" for t in ("refraction", "keratoconus")):
            reasons[("—", "no test input in the manifest")] += 1
    if reasons:
        report.add_heading("Reasons for ungradable eyes", level=3)
        report.add_table(
            [{"test": t, "reason": why, "eyes": c} for (t, why), c in reasons.most_common()],
            table_id="reasons",
        )

    report.add_heading("Eyes")
    rows_html = []
    for r in results:
        css = _DECISION_WORDS[r["decision"]][0]
        page = pages.get(r["patient_id"])
        link = Path(os.path.relpath(page, out_dir)).as_posix() if page else ""
        pid = html.escape(r["patient_id"])
        rows_html.append(
            f'<tr><td><a href="{html.escape(link)}#{r["eye"]}">{pid}</a></td><td>{r["eye"]}</td>'
            f'<td class="{css}">{r["decision"]}</td>'
            f"<td>{html.escape('; '.join(r['reasons']))}</td></tr>"
        )
    report.add_html(
        '<table id="eyes"><thead><tr><th>patient</th><th>eye</th><th>decision</th>'
        "<th>reasons</th></tr></thead><tbody>" + "".join(rows_html) + "</tbody></table>"
    )

    diagnostics = diagnostic_rows(results, config)
    report.add_heading("Diagnostic accuracy against the reference labels")
    if not diagnostics:
        report.add_text(
            "The manifest has no reference labels (reference_power_d, reference_keratoconus), "
            "so accuracy is not estimated."
        )
    else:
        report.add_text(
            f"Reference standard: refractive error when |reference_power_d| ≥ "
            f"{config.refraction.refer_power_d:.2f} D; keratoconus as labelled; an eye needs "
            "referral when either is present. Eyes without a reference are excluded; "
            "ungradable index tests are shown in the flow and excluded from the 2 × 2 table. "
            "Proportions with Wilson 95 % confidence intervals. PPV and NPV depend on the "
            "prevalence in this sample."
        )
        report.add_table(
            [
                {
                    "target": d["target"],
                    "n (2×2)": d["tp"] + d["fp"] + d["fn"] + d["tn"],
                    "TP": d["tp"],
                    "FP": d["fp"],
                    "FN": d["fn"],
                    "TN": d["tn"],
                    **{
                        k.upper() if len(k) == 3 else k: _pct_ci(d[k], d[f"{k}_ci"])
                        for k in ("sensitivity", "specificity", "ppv", "npv")
                    },
                }
                for d in diagnostics
            ],
            table_id="accuracy",
        )
        for d in diagnostics:
            report.add_heading(f"STARD flow: {d['target']}", level=3)
            report.add_html(_flow_html(d))
    report.add_heading("Method")
    report.add_text(referral_rule_text(config, model))
    report.add_text(
        "Model: "
        + (f"{model.version}, weights sha256 {model.sha256}" if model else "none (index rules)")
        + ". Outputs: screening.csv (one row per eye, with input hashes), the patient pages, "
        "audit.jsonl (one line per run) and config.json (the resolved configuration)."
    )
    path = report.save(out_dir / "summary.html")
    return path, diagnostics
