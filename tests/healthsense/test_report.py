"""Reports: atomic writers never leave partial files; HTML is self-contained; JSON/CSV exact."""

from __future__ import annotations

import base64
import json
import math
import os
import re
import stat

import numpy as np
import pytest

from healthsense.report import (
    Report,
    atomic_path,
    atomic_write_text,
    atomic_writer,
    new_figure,
    read_json,
    to_jsonable,
    write_csv,
    write_json,
)


def test_atomic_write_replaces_whole_file(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["a.txt"]


def test_atomic_files_get_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        a = atomic_write_text(tmp_path / "a.txt", "x")
        with atomic_path(tmp_path / "b.npz") as tmp:
            np.savez(tmp, x=np.zeros(1))
    finally:
        os.umask(old)
    assert stat.S_IMODE(a.stat().st_mode) == 0o644
    assert stat.S_IMODE((tmp_path / "b.npz").stat().st_mode) == 0o644


def test_atomic_writer_keeps_old_content_on_crash(tmp_path):
    target = tmp_path / "report.csv"
    target.write_text("old complete content")
    with pytest.raises(RuntimeError), atomic_writer(target) as handle:
        handle.write("new partial")
        raise RuntimeError("killed half-way")
    assert target.read_text() == "old complete content"
    assert [p.name for p in tmp_path.iterdir()] == ["report.csv"]


def test_atomic_path_for_libraries_that_write_by_name(tmp_path):
    target = tmp_path / "arrays.npz"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".npz" and tmp.parent == tmp_path and tmp != target
        np.savez(tmp, x=np.arange(3))
        assert not target.exists()
    assert np.array_equal(np.load(target)["x"], np.arange(3))
    with pytest.raises(ValueError), atomic_path(target) as tmp:
        np.savez(tmp, x=np.zeros(1))
        raise ValueError("boom")
    assert np.array_equal(np.load(target)["x"], np.arange(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["arrays.npz"]


def test_atomic_writer_rejects_read_modes(tmp_path):
    with pytest.raises(ValueError, match="write modes"), atomic_writer(tmp_path / "x", "r"):
        pass


def test_to_jsonable_handles_numpy_and_non_finite():
    obj = {
        "a": np.float32(1.5),
        "b": np.int64(3),
        "c": np.array([1.0, np.nan]),
        "d": float("inf"),
        "e": np.bool_(True),
        "f": (1, 2),
    }
    assert to_jsonable(obj) == {
        "a": 1.5,
        "b": 3,
        "c": [1.0, None],
        "d": "inf",
        "e": True,
        "f": [1, 2],
    }


def test_write_json_roundtrip_and_strict(tmp_path):
    path = write_json(tmp_path / "r.json", {"auc": np.float64(0.91), "ci": [math.nan, 1.0]})
    assert json.loads(path.read_text()) == {"auc": 0.91, "ci": [None, 1.0]}
    assert read_json(path) == {"auc": 0.91, "ci": [None, 1.0]}


def test_read_json_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json: not valid JSON"):
        read_json(bad)
    with pytest.raises(FileNotFoundError, match="missing.json"):
        read_json(tmp_path / "missing.json")


def test_write_csv_is_deterministic(tmp_path):
    rows = [{"case": "a", "p": 0.25, "ok": True}, {"case": "b", "p": float("nan"), "extra": 1}]
    first = write_csv(tmp_path / "1.csv", rows).read_bytes()
    second = write_csv(tmp_path / "2.csv", rows).read_bytes()
    assert first == second
    assert first.decode() == "case,p,ok,extra\na,0.25,True,\nb,,,1\n"


def test_write_csv_unknown_column_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="row 0 has keys not in columns: zzz"):
        write_csv(tmp_path / "x.csv", [{"a": 1, "zzz": 2}], columns=["a"])
    assert not (tmp_path / "x.csv").exists()


def test_html_report_is_self_contained(tmp_path):
    rep = Report("Test <report>", subtitle="sub")
    rep.add_heading("Numbers")
    rep.add_text("a < b\n\nsecond paragraph")
    rep.add_table(
        [{"name": "x<y", "value": 0.123456, "n": 3, "nan": float("nan")}], float_format=".2f"
    )
    fig, ax = new_figure(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    rep.add_figure(fig, caption="a line")
    rep.add_figure(np.zeros((4, 5, 3), dtype=np.uint8), caption="array")
    path = rep.save(tmp_path / "r.html")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "Test &lt;report&gt;" in text and "x&lt;y" in text and "a &lt; b" in text
    assert "Research software, not a medical device" in text
    assert '<td class="num">0.12</td>' in text and '<td class="num">3</td>' in text
    assert '<td class="num">–</td>' in text
    # no external resources of any kind
    assert not re.search(r'(src|href)="(http|//)', text)
    assert "<script" not in text
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(images) == 2
    for data in images:
        assert base64.b64decode(data).startswith(b"\x89PNG")


def test_report_rejects_bad_images():
    rep = Report("x")
    with pytest.raises(ValueError, match="uint8"):
        rep.add_figure(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="not a PNG"):
        rep.add_figure(b"GIF89a")
    with pytest.raises(TypeError):
        rep.add_figure(42)
