"""prepare_data.py / infer.py on hand-built CPC2 and CPC3 layouts (no TTS): the CEC1/CEC2 ID
collision, 32 kHz input through MSBG, severity audiograms, msbg=off, the onset trim and the
one-line errors for a wrong dataset, split, missing file or mixed-up layout.

The layouts are the fixtures of tests/test_datasets.py: 2.2 s of noise per file at 32 kHz, 16-bit.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import prepare_data
from e032.datasets import CPC3_SEVERITY_AUDIOGRAMS_DB_HL
from e032.resample import resample
from e032.run_items import DatasetRun, onset_s
from e032.tracks import resolve_track
from tests.test_datasets import cpc2_root, cpc3_root  # noqa: F401  (fixtures)
from tests.test_prepare_data import make_cfg as prepare_cfg
from tests.tiny_asr import TINY_ASR_SIZES

REPO = Path(__file__).resolve().parents[1]
TINY_ASR = REPO / "tests" / "data" / "asr_reference" / "tiny_ckpt"
TINY = {**TINY_ASR_SIZES, "test_beam_size": 8}
MSBG_TOLERANCE = 1e-6  # float32 WAV output vs the same computation by hand (float64, then float32)
SIGNAL = "S08501_L0201_E001"  # in CEC1 and CEC2 of the cpc2_root fixture, with different audio


def make_cfg(root: Path, exp: Path, *overrides: str):
    """The Hydra config of a run on ``root`` into ``exp`` (single process, no bars, soxr)."""
    return prepare_cfg(root, exp, "resampler=soxr_hq", *overrides)


def prepare(root: Path, exp: Path, *overrides: str) -> None:
    prepare_data.main(make_cfg(root, exp, *overrides))


def csv_rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_same_signal_id_in_cec1_and_cec2_stays_apart(cpc2_root, tmp_path):  # noqa: F811
    exp = tmp_path / "exp"
    # every training scene in dev (both copies of the colliding signal get a similarity)
    args = ("dataset=cpc2", "msbg_mode=off", "trim_s=0.5", "dev_percent=1.0")
    prepare(cpc2_root, exp, *args)
    split = json.loads((exp / "data_split" / "scene_dev_list_cpc2_p1.json").read_text())
    assert split == ["CEC1_S08501", "CEC2_S08501"]
    data = exp / "asr_data_cpc2_p1"
    processed = csv_rows(data / "left_dev_msbg.csv")
    references = csv_rows(data / "left_dev_ref.csv")
    assert [r["ID"] for r in processed] == [f"CEC1_{SIGNAL}", f"CEC2_{SIGNAL}"]
    files = [[data / r["wav"].removeprefix("$data_root/") for r in rows] for rows in (processed, references)]
    for first, second in files:
        assert first != second and first.read_bytes() != second.read_bytes()
    assert files[1][0].name == "CEC1_S08501.wav" and files[1][1].name == "CEC2_S08501.wav"

    shutil.copytree(TINY_ASR, tmp_path / "asr")
    tiny = "{" + ", ".join(f"{k}: {v}" for k, v in TINY.items()).replace("'", "") + "}"
    hydra_args = [
        f"path.root={cpc2_root}",
        f"path.exp_folder={exp}",
        "progress=false",
        *args,
        f"asr_output_folder={tmp_path / 'asr'}",
        f"asr_overrides={tiny}",
        "device=cpu",
    ]
    proc = subprocess.run(
        [sys.executable, "infer.py", *hydra_args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for rep in ("enc", "dec"):
        sims = json.loads((exp / f"dev_{rep}_similarity_cpc2_p1.json").read_text())
        assert list(sims) == [f"CEC1_{SIGNAL}", f"CEC2_{SIGNAL}"]
        assert sims[f"CEC1_{SIGNAL}"] != sims[f"CEC2_{SIGNAL}"]


def test_32khz_input_through_msbg_is_resample_then_msbg(cpc2_root, tmp_path):  # noqa: F811
    from msbg import Audiogram
    from msbg.ear import Ear, listen

    exp = tmp_path / "exp"
    prepare(cpc2_root, exp, "dataset=cpc2", "stage=msbg", "trim_s=0.5")
    data = cpc2_root / "clarity_CPC2_data" / "clarity_data"
    listener = json.loads((data / "metadata" / "listeners.json").read_text())["L0201"]
    for subset in ("CEC1", "CEC2"):
        signal_32k, rate = sf.read(
            data / "HA_outputs" / "signals" / subset / f"{SIGNAL}.wav", dtype="float64", always_2d=True
        )
        assert rate == 32000
        # the 44.1 kHz copy is stored as float32
        signal_44k = resample(signal_32k, 32000, 44100, "soxr_hq").astype(np.float32)
        ear = Ear(src_pos="ff", sample_rate=44100, equiv_0db_spl=80.0, ahr=20.0)  # 100 dB SPL
        expected = listen(
            ear,
            signal_44k.astype(np.float64),
            Audiogram(listener["audiogram_levels_l"], listener["audiogram_cfs"]),
            Audiogram(listener["audiogram_levels_r"], listener["audiogram_cfs"]),
        )
        output, rate = sf.read(
            exp / "msbg" / "cpc2" / "train" / f"{subset}_{SIGNAL}_HL-output.wav",
            dtype="float64",
            always_2d=True,
        )
        assert rate == 44100 and output.shape == expected.shape
        np.testing.assert_allclose(output, expected.astype(np.float32), rtol=0, atol=MSBG_TOLERANCE)
    settings = json.loads((exp / "msbg" / "cpc2" / "train" / "msbg_settings.json").read_text())
    assert settings["MSBGEar"]["equiv_0db_spl"] == 80.0


def test_cpc3_severity_audiograms_and_msbg_off(cpc3_root, tmp_path):  # noqa: F811
    exp = tmp_path / "exp"
    cfg = make_cfg(cpc3_root, exp, "dataset=cpc3", "msbg_mode=off", "trim_s=onset")
    prepare_data.main(cfg)
    run = DatasetRun(cfg, resolve_track(cfg))
    items = run.items(["CEC1_S09000"])
    by_split = {item.split: run.inputs(item) for item in items}
    moderate, mild = (CPC3_SEVERITY_AUDIOGRAMS_DB_HL[s] for s in ("Moderate", "Mild"))
    assert tuple(by_split["train"].audiogram_left.levels) == moderate  # listeners.csv
    assert tuple(by_split["train"].audiogram_right.levels) == moderate
    assert tuple(by_split["dev"].audiogram_left.levels) == mild  # hearing_loss of the record
    # msbg=off: the processed 16 kHz file is the HA output itself, resampled and trimmed
    row = csv_rows(exp / "asr_data_cpc3_dev" / "left_test_msbg.csv")[0]
    wav = exp / "asr_data_cpc3_dev" / row["wav"].removeprefix("$data_root/")
    ha = data_file(cpc3_root, "dev", "signals", "0123456789abcdef01234567.wav")
    trim_s = onset_s(data_file(cpc3_root, "dev", "references", "0123456789abcdef01234567_ref.wav"), 32000)
    expected = resample(sf.read(ha, dtype="float64")[0], 32000, 16000, "soxr_hq")
    expected = expected[int(trim_s * 16000) :, 0]
    got = sf.read(wav, dtype="float64")[0]
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, np.clip(expected, -1, 1), atol=1 / 32768)  # 16-bit
    assert not (exp / "msbg").exists()


def data_file(root: Path, *parts: str) -> Path:
    return root.joinpath("clarity_CPC3_data", "clarity_data", *parts)


def test_onset_is_found_in_a_reference(tmp_path):
    rate = 32000
    signal = np.zeros((3 * rate, 2))
    signal[int(1.3 * rate) :] = np.random.default_rng(0).normal(
        0, 0.1, (signal.shape[0] - int(1.3 * rate), 2)
    )
    sf.write(tmp_path / "ref.wav", signal, rate, subtype="FLOAT")
    assert onset_s(tmp_path / "ref.wav", rate) == pytest.approx(1.3 - 0.1, abs=0.02)
    sf.write(tmp_path / "silent.wav", np.zeros((rate, 2)), rate)
    with pytest.raises(ValueError, match=r"silent\.wav: the reference is silent"):
        onset_s(tmp_path / "silent.wav", rate)


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        (("dataset=cpc4",), ValueError, r"dataset must be one of \['cpc1', 'cpc2', 'cpc3'\], got " r"'cpc4'"),
        (("dataset=cpc2", "partition=4"), ValueError, r"CPC2 partition must be 1, 2 or 3, got 4"),
        (("dataset=cpc3", "split=test"), ValueError, r"CPC3 split must be 'dev' or 'eval'"),
        (("dataset=cpc2", "msbg_mode=maybe"), ValueError, r"msbg_mode must be one of \['on', 'off'\]"),
        (
            ("dataset=cpc2", "trim_s=start"),
            ValueError,
            r"trim_s must be a number in .* or one of \['dataset', 'onset'\]",
        ),
    ],
)
def test_bad_dataset_options(cpc2_root, tmp_path, overrides, error, message):  # noqa: F811
    with pytest.raises(error, match=message):
        prepare(cpc2_root, tmp_path / "exp", *overrides)


def test_list_naming_a_missing_file_and_mixed_layout(cpc2_root, tmp_path):  # noqa: F811
    ha = cpc2_root / "clarity_CPC2_data" / "clarity_data" / "HA_outputs"
    (ha / "signals" / "CEC2" / f"{SIGNAL}.wav").unlink()
    with pytest.raises(
        FileNotFoundError, match=r"1 input WAV file\(s\) not found: .*signals/CEC2/" rf"{SIGNAL}\.wav"
    ):
        prepare(cpc2_root, tmp_path / "exp", "dataset=cpc2")
    (ha / "train.1" / "CEC2").mkdir(parents=True)
    shutil.copyfile(ha / "signals" / "CEC1" / f"{SIGNAL}.wav", ha / "train.1" / "CEC2" / f"{SIGNAL}.wav")
    with pytest.raises(ValueError, match=r"only in the v1_0 folders .* mixes CPC2 v1_0 and v1_1"):
        prepare(cpc2_root, tmp_path / "exp", "dataset=cpc2")
    assert not (tmp_path / "exp" / "msbg").exists()  # nothing long started


def test_disjoint_fit_predicts_each_signal_from_its_disjoint_dev_set():
    from e032 import evaluation as ev
    from e032 import run_evaluation as rev
    from e032.datasets import SignalRecord

    rng = np.random.default_rng(0)
    dev_keys = [(f"L{i}", f"E{j}") for i in range(1, 4) for j in range(1, 4)] * 2
    records = {
        f"d{k}": SignalRecord("CEC2", f"d{k}", "S1", lis, sys_, "p") for k, (lis, sys_) in enumerate(dev_keys)
    }
    records |= {
        "t0": SignalRecord("CEC2", "t0", "S2", "L1", "E1", "p"),
        "t1": SignalRecord("CEC2", "t1", "S2", "L9", "E9", "p"),
    }
    dev_sim = rng.uniform(0.3, 0.9, len(dev_keys))
    dev_y = 100 / (1 + np.exp(-0.1 * (100 * dev_sim - 60))) + rng.normal(0, 5, len(dev_keys))
    dev = ev.Paired(tuple(f"d{k}" for k in range(len(dev_keys))), dev_sim, np.clip(dev_y, 0, 100))
    test = ev.Paired(("t0", "t1"), np.array([0.5, 0.7]), np.array([40.0, 70.0]))
    labels = ev.Labels(
        Path("x"), {"t0": 40.0, "t1": 70.0}, {}, {"t0": "L1", "t1": "L9"}, {"t0": "E1", "t1": "E9"}
    )
    result = ev.evaluate_representation("dec", dev, test, labels, initial_guess="auto")
    refit = rev.disjoint_refit(result, records, labels, "auto")
    # t0 (L1, E1): only dev signals of other listeners and systems; t1 shares nothing: all of dev
    rows = [k for k, (lis, sys_) in enumerate(dev_keys) if lis != "L1" and sys_ != "E1"]
    by_hand = ev.fit_logistic(dev_sim[rows], dev.correctness[rows], "auto").predict(0.5)
    assert refit.test_prediction[0] == pytest.approx(float(by_hand))
    assert refit.test_prediction[1] == pytest.approx(result.test_prediction[1])
    assert refit.mapping == result.mapping
    few = {**records, "t0": SignalRecord("CEC2", "t0", "S2", "L1", "E1", "p")}
    only_l1 = {k: SignalRecord("CEC2", k, "S1", "L1", "E2", "p") for k in dev.signal_ids}
    with pytest.raises(ValueError, match=r"only 0 dev signal\(s\) share neither .* of t0"):
        rev.disjoint_refit(result, {**few, **only_l1}, labels, "auto")
