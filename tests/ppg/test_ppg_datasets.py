"""Record type and dataset loaders: tiny files in every format, gzip, errors, real data."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from ppg.datasets import count_records, dataset_info, iter_dataset
from ppg.record import LabelSeries, Record


def _gz(path: Path) -> Path:
    out = path.with_name(path.name + ".gz")
    with open(path, "rb") as src, gzip.open(out, "wb") as dst:
        shutil.copyfileobj(src, dst)
    path.unlink()
    return out


# ----------------------------------------------------------------------------- Record


def test_record_validates_and_copies():
    r = Record("r1", 7, {"ppg": [1, 2, 3]}, {"ppg": 100}, labels={"sbp": 120})
    assert r.subject_id == "7" and r.signal("ppg").dtype == float
    assert r.duration_s("ppg") == pytest.approx(0.03)
    with pytest.raises(ValueError, match="no sampling rate"):
        Record("r", "s", {"ppg": [1, 2]}, {})
    with pytest.raises(ValueError, match="empty"):
        Record("r", "s", {"ppg": []}, {"ppg": 1})
    with pytest.raises(ValueError, match="must be > 0"):
        Record("r", "s", {"ppg": [1, 2]}, {"ppg": 0})
    with pytest.raises(ValueError, match="artifact mask"):
        Record("r", "s", {"ppg": [1, 2]}, {"ppg": 1}, artifacts={"ppg": [True]})
    with pytest.raises(KeyError, match="available"):
        r.signal("abp")
    sel = Record("r", "s", {"a": [1, 2], "b": [3, 4]}, {"a": 1, "b": 2}).select(["b"])
    assert list(sel.signals) == ["b"]


def test_label_series_between():
    s = LabelSeries([0.1, 0.5, 1.2, 2.0], [1, 2, 3, 4])
    assert s.between(0.5, 2.0).tolist() == [2, 3]
    with pytest.raises(ValueError, match="non-decreasing"):
        LabelSeries([1, 0], [1, 2])


# ----------------------------------------------------------------------------- mw-ppg-bp


def _write_mw(folder: Path, ids, n=400, gz=False):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "artifact_labeled").mkdir(exist_ok=True)
    rng = np.random.default_rng(0)
    rows = ["subject_id,sbp_mmhg,dbp_mmhg,age_years,height_cm,weight_kg,sex"]
    for i in ids:
        rows.append(f"{i},{100 + i},{60 + i},30,170,70,female")
        sig = rng.integers(1000, 2000, size=(n, 3))
        art = np.zeros((n, 3), int)
        art[10:20, 0] = 1
        f = folder / f"bp_dataset_{i}.csv"
        np.savetxt(
            f,
            sig,
            fmt="%d",
            delimiter=",",
            header="green_channel,red_channel,ir_channel",
            comments="",
        )
        a = folder / "artifact_labeled" / f"bp_dataset_{i}.csv"
        np.savetxt(
            a,
            np.hstack([sig, art]),
            fmt="%d",
            delimiter=",",
            header="green_channel,red_channel,ir_channel,Anomaly_ch0,Anomaly_ch1,Anomaly_ch2",
            comments="",
        )
        if gz:
            _gz(f)
            _gz(a)
    (folder / "subjects.csv").write_text("\n".join(rows) + "\n")
    return folder


@pytest.mark.parametrize("gz", [False, True])
def test_mw_ppg_bp_tiny(tmp_path, gz):
    folder = _write_mw(tmp_path / "mw", [3, 12], gz=gz)
    recs = list(iter_dataset("mw-ppg-bp", folder))
    assert [r.subject_id for r in recs] == ["3", "12"]  # numeric order, not lexical
    r = recs[1]
    assert r.labels == {"sbp": 112.0, "dbp": 72.0}
    assert r.fs["green"] == 200.0 and r.signal("green").size == 400
    assert r.artifacts["green"].sum() == 10 and r.artifacts["red"].sum() == 0
    assert count_records("mw-ppg-bp", folder) == 2


def test_mw_ppg_bp_errors(tmp_path):
    folder = _write_mw(tmp_path / "mw", [1])
    bad = folder / "artifact_labeled" / "bp_dataset_1.csv"
    bad.write_text("green_channel,red_channel\n1,2\n")
    with pytest.raises(ValueError, match=r"bp_dataset_1\.csv.*missing column"):
        list(iter_dataset("mw-ppg-bp", folder))
    bad.write_text("")
    with pytest.raises(ValueError, match=r"bp_dataset_1\.csv: empty"):
        list(iter_dataset("mw-ppg-bp", folder))
    with pytest.raises(FileNotFoundError, match="subject"):
        list(iter_dataset("mw-ppg-bp", folder, subjects=[99]))
    with pytest.raises(FileNotFoundError, match="folder not found"):
        list(iter_dataset("mw-ppg-bp", tmp_path / "nothing"))
    with pytest.raises(ValueError, match="unknown dataset"):
        dataset_info("nope")


def test_mw_ppg_bp_real(shared_data):
    recs = list(iter_dataset("mw-ppg-bp", shared_data / "mw-ppg-bp", subjects=[1, 40]))
    assert len(recs) == 2
    r = recs[1]
    assert r.signal("green").size == 12000 and r.fs["green"] == 200
    assert r.labels["sbp"] == pytest.approx(117.6667, abs=1e-3)
    assert r.artifacts["green"].any()  # subject 40 has labelled artifacts on channel 0
    assert count_records("mw-ppg-bp", shared_data / "mw-ppg-bp") == 78


# ----------------------------------------------------------------------------- aurora-bp


def _write_aurora(folder: Path, fs=500.0, gz=True):
    (folder / "measurements_oscillometric" / "o001").mkdir(parents=True)
    (folder / "participants.tsv").write_text("pid\tage\tgender\no001\t40\tF\n")
    rows = "pid\tphase\tmeasurement\tdate_time\tsbp\tdbp\twaveform_file_path\n"
    rows += "o001\tinitial\tSitting arm down\t2018-01-01\t130\t85\tmeasurements_oscillometric/o001/o001.initial.Sitting_arm_down.tsv\n"
    rows += "o001\tinitial\tMissing one\t2018-01-01\t\t\tmeasurements_oscillometric/o001/o001.initial.gone.tsv\n"
    (folder / "measurements_oscillometric.tsv").write_text(rows)
    t = np.arange(1000) / fs
    data = np.column_stack([t, np.sin(t), np.cos(t), t, t * 0, t * 0, t * 0 + 1])
    f = folder / "measurements_oscillometric" / "o001" / "o001.initial.Sitting_arm_down.tsv"
    np.savetxt(
        f,
        data,
        delimiter="\t",
        header="t\tekg\toptical\tpressure\taccel_x\taccel_y\taccel_z",
        comments="",
    )
    if gz:
        _gz(f)
    return folder


def test_aurora_tiny(tmp_path):
    folder = _write_aurora(tmp_path / "au")
    recs = list(iter_dataset("aurora-bp", folder))
    assert len(recs) == 1  # the measurement without a file is skipped
    r = recs[0]
    assert r.subject_id == "o001" and r.labels == {"sbp": 130.0, "dbp": 85.0}
    assert np.allclose(r.signal("ppg"), np.cos(np.arange(1000) / 500.0))
    assert r.metadata["age"] == 40
    with pytest.raises(FileNotFoundError, match="gone"):
        list(iter_dataset("aurora-bp", folder, missing="error"))


def test_aurora_wrong_rate(tmp_path):
    folder = _write_aurora(tmp_path / "au", fs=250.0, gz=False)
    with pytest.raises(ValueError, match=r"Sitting_arm_down\.tsv: sampling rate .* 250"):
        list(iter_dataset("aurora-bp", folder))


def test_aurora_real(shared_data):
    folder = shared_data / "aurora-bp-sample"
    recs = list(iter_dataset("aurora-bp", folder, participants=["a000"], signals=["ppg", "ecg"]))
    assert len(recs) == 13
    assert all(r.fs["ppg"] == 500 and r.subject_id == "a000" for r in recs)
    assert recs[0].labels["sbp"] == 110.0
    from ppg.datasets.aurora_bp import load_features

    feats = load_features(folder)
    assert feats["sbp"].size == 385 and np.issubdtype(feats["hr_ekg"].dtype, np.floating)


# ----------------------------------------------------------------------------- UCI (.mat)


def _uci_cells(rng, k=4):
    cells = np.empty((1, k), dtype=object)
    for i in range(k):
        cells[0, i] = rng.normal(size=(3, 200 + 10 * i))
    return cells


@pytest.mark.parametrize("compress", [True, False])
@pytest.mark.parametrize("gz", [False, True])
def test_uci_v5_streaming(tmp_path, compress, gz):
    import scipy.io as sio

    cells = _uci_cells(np.random.default_rng(1))
    f = tmp_path / "Part_2.mat"
    sio.savemat(f, {"Part_2": cells}, do_compression=compress)
    if gz:
        f = _gz(f)
    recs = list(iter_dataset("uci-cuffless", tmp_path))
    assert [r.record_id for r in recs] == ["Part_2/1", "Part_2/2", "Part_2/3", "Part_2/4"]
    for r, c in zip(recs, cells[0], strict=True):
        assert np.array_equal(r.signal("ppg"), c[0]) and np.array_equal(r.signal("ecg"), c[2])
        assert r.subject_id == r.record_id and r.fs["abp"] == 125
    assert len(list(iter_dataset("uci-cuffless", tmp_path, max_records=2))) == 2


def test_uci_v73(tmp_path):
    import h5py

    rng = np.random.default_rng(2)
    arrays = [rng.normal(size=(3, 50 + i)) for i in range(3)]
    f = tmp_path / "Part_1.mat"
    with h5py.File(f, "w", userblock_size=512) as h:
        refs = []
        for i, a in enumerate(arrays):
            d = h.create_dataset(f"#refs#/{i}", data=a.T)  # HDF5 holds MATLAB arrays transposed
            refs.append(d.ref)
        h.create_dataset("Part_1", data=np.array(refs, dtype=h5py.ref_dtype).reshape(-1, 1))
    with open(f, "r+b") as handle:
        handle.write(b"MATLAB 7.3 MAT-file".ljust(128, b" "))
    recs = list(iter_dataset("uci-cuffless", f))
    assert len(recs) == 3 and np.array_equal(recs[2].signal("abp"), arrays[2][1])


def test_uci_errors(tmp_path):
    import scipy.io as sio

    cells = np.empty((1, 1), dtype=object)
    cells[0, 0] = np.ones((2, 10))
    sio.savemat(tmp_path / "Part_1.mat", {"Part_1": cells})
    with pytest.raises(ValueError, match=r"Part_1\.mat: cell 1 .* shape \(2, 10\)"):
        list(iter_dataset("uci-cuffless", tmp_path))
    (tmp_path / "Part_1.mat").write_bytes(b"hello")
    with pytest.raises(ValueError, match="too short|not a MATLAB"):
        list(iter_dataset("uci-cuffless", tmp_path))
    (tmp_path / "Part_1.mat").write_bytes(b"")
    with pytest.raises(ValueError, match="empty file"):
        list(iter_dataset("uci-cuffless", tmp_path))


# ----------------------------------------------------------------------------- PulseDB


def test_pulsedb_v73(tmp_path):
    import h5py

    rng = np.random.default_rng(3)
    f = tmp_path / "p000123.mat"
    segs = [rng.normal(size=1250) for _ in range(2)]
    with h5py.File(f, "w") as h:
        g = h.create_group("Subj_Wins")

        def cellfield(name, values):
            refs = [
                h.create_dataset(f"#refs#/{name}{i}", data=np.atleast_2d(v)).ref
                for i, v in enumerate(values)
            ]
            g.create_dataset(name, data=np.array(refs, dtype=h5py.ref_dtype).reshape(1, -1))

        cellfield("PPG_Raw", segs)
        cellfield("ABP_Raw", [s + 100 for s in segs])
        cellfield("SegSBP", [[121.0], [133.0]])
        cellfield("Age", [[55.0], [55.0]])
    gzf = _gz(f)
    recs = list(iter_dataset("pulsedb", gzf.parent, signals=["ppg", "abp"]))
    assert [r.record_id for r in recs] == ["p000123/1", "p000123/2"]
    assert recs[1].labels["sbp"] == 133.0 and recs[0].metadata["age"] == 55.0
    assert np.allclose(recs[0].signal("ppg"), segs[0]) and recs[0].subject_id == "p000123"
    with pytest.raises(ValueError, match="none of the fields"):
        list(iter_dataset("pulsedb", gzf, signals=["ecg"]))


# ----------------------------------------------------------------------------- WFDB


@pytest.mark.parametrize("gz", [False, True])
def test_wfdb(tmp_path, gz):
    import wfdb

    folder = tmp_path / "p000020"
    folder.mkdir()
    t = np.arange(1250) / 125
    sig = np.column_stack([np.sin(2 * np.pi * t), 100 + 20 * np.sin(2 * np.pi * t), np.cos(t)])
    wfdb.wrsamp(
        "3000003",
        fs=125,
        units=["NU", "mmHg", "mV"],
        sig_name=["PLETH", "ABP", "II"],
        p_signal=sig,
        fmt=["16", "16", "16"],
        write_dir=str(folder),
    )
    if gz:
        for f in list(folder.iterdir()):
            _gz(f)
    recs = list(iter_dataset("wfdb", tmp_path))
    assert len(recs) == 1
    r = recs[0]
    assert r.subject_id == "p000020" and set(r.signals) == {"ppg", "abp", "ecg"}
    assert np.allclose(r.signal("abp"), sig[:, 1], atol=0.01) and r.fs["ppg"] == 125


# ----------------------------------------------------------------------------- CSV / NPZ


def test_csv_npz_generic(tmp_path):
    from ppg.datasets.tabular import iter_records

    t = np.arange(300) / 100
    f = tmp_path / "rec_a.csv"
    np.savetxt(
        f,
        np.column_stack([t, np.sin(t), np.full(300, 118.0)]),
        delimiter=",",
        header="time,PLETH,cuff",
        comments="",
    )
    _gz(f)
    np.savez(tmp_path / "rec_b.npz", PLETH=np.cos(t), fs=100.0, cuff=np.array([125.0]))
    recs = list(iter_records(tmp_path, columns={"ppg": "PLETH"}, labels={"sbp": "cuff"}, fs=100))
    assert [r.record_id for r in recs] == ["rec_a", "rec_b"]
    assert recs[0].labels["sbp"] == 118 and recs[1].labels["sbp"] == 125
    assert np.allclose(recs[1].signal("ppg"), np.cos(t))
    # the time column must agree with the rate given
    with pytest.raises(ValueError, match="sampling rate in the file is 100"):
        list(
            iter_records(
                tmp_path / "rec_a.csv.gz", columns={"ppg": "PLETH"}, fs=125, time_column="time"
            )
        )
    with pytest.raises(ValueError, match="unknown sampling rate"):
        list(iter_records(tmp_path / "rec_a.csv.gz", columns={"ppg": "PLETH"}))
    with pytest.raises(ValueError, match="missing column"):
        list(iter_records(tmp_path / "rec_a.csv.gz", columns={"ppg": "NOPE"}, fs=100))


def test_csv_one_sample_and_nan(tmp_path):
    from ppg.datasets.tabular import iter_records

    (tmp_path / "one.csv").write_text("ppg\n1.0\n")
    with pytest.raises(ValueError, match=r"one\.csv: signal 'ppg' has 1 sample"):
        list(iter_records(tmp_path / "one.csv", columns={"ppg": "ppg"}, fs=100))
    (tmp_path / "text.csv").write_text("ppg\n1.0\nabc\n")
    with pytest.raises(ValueError, match="non-numeric"):
        list(iter_records(tmp_path / "text.csv", columns={"ppg": "ppg"}, fs=100))
