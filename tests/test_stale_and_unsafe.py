"""Outputs tied to their inputs and settings, IDs validated, every failure named (issue 13).

Each test reproduces one fault of the hostile-user probe on the small synthetic CPC1 tree of
test_prepare_data.py and shows either the correct recomputation or one clear error, and that
nothing outside the folders the user named changed.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_prepare_data import TRAIN, build_cpc1, make_cfg, normalised_digest, run

import prepare_data
from e032.ids import CPC1_IDS, check_record_ids
from e032.io import write_json_atomic
from e032.records import RecordSet, StageRecord, Unit, fingerprint, still_matches
from msbg.__main__ import main as msbg_cli
from msbg.batch import LEVEL_COLUMNS

HA_TRAIN = "clarity_CPC1_data_train/clarity_data/HA_outputs/train"
TRAIN_META = "clarity_CPC1_data_train/metadata"
SIGNAL = "_".join(TRAIN[0])  # S00101_L0001_E001


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (relative path -> digest)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def asr_audio(exp: Path) -> dict[str, str]:
    """Digest of the 16 kHz files of the closed track (not the CSVs, which hold the exp path)."""
    return {name: value for name, value in digest(exp / "cpc1_asr_data").items() if name.endswith(".wav")}


def summary_line(capsys) -> str:
    return capsys.readouterr().out.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def cpc1_root(tmp_path_factory) -> Path:
    return build_cpc1(tmp_path_factory.mktemp("cpc1"))


@pytest.fixture(scope="module")
def done_run(cpc1_root, tmp_path_factory) -> Path:
    """A finished closed-track run to copy (copytree keeps the file times)."""
    exp = tmp_path_factory.mktemp("done") / "exp"
    run(cpc1_root, exp)
    return exp


@pytest.fixture
def copies(cpc1_root, done_run, tmp_path) -> tuple[Path, Path]:
    """A private copy of the dataset and of the finished run."""
    root, exp = tmp_path / "root", tmp_path / "exp"
    shutil.copytree(cpc1_root, root, symlinks=True)
    shutil.copytree(done_run, exp)
    return root, exp


# --------------------------------------------------------------------------------------------
# fault 1: stale 16 kHz data after MSBG is redone
# --------------------------------------------------------------------------------------------
def test_rerun_of_an_unchanged_experiment_redoes_nothing(copies, capsys):
    root, exp = copies
    before = digest(exp)
    run(root, exp)
    line = summary_line(capsys)
    assert "MSBG 0 done, 8 skipped" in line and "16 kHz 0 done, 15 skipped" in line
    after = digest(exp)
    assert after == before  # the CSVs list $data_root/..., so the copy's are current as they are
    assert "$data_root/train_left_msbg/" in (exp / "cpc1_asr_data" / "left_dev_msbg.csv").read_text()
    run(root, exp)
    assert digest(exp) == after  # records included: nothing rewritten


def test_changed_msbg_setting_in_a_new_folder_redoes_the_16khz_files(copies, tmp_path, capsys):
    root, exp = copies
    before = asr_audio(exp)
    run(root, exp, "MSBGEar.src_pos=df", f"path.msbg_output_dir={tmp_path / 'msbg_df'}")
    line = summary_line(capsys)
    assert "MSBG 8 done, 0 skipped" in line and "16 kHz 8 done, 7 skipped" in line  # refs kept
    fresh = tmp_path / "fresh"
    run(root, fresh, "MSBGEar.src_pos=df")
    assert asr_audio(exp) == asr_audio(fresh) != before


def test_deleted_msbg_folder_with_new_settings_redoes_the_16khz_files(copies, tmp_path, capsys):
    root, exp = copies
    shutil.rmtree(exp / "msbg")
    run(root, exp, "MSBGEar.ahr=10")
    assert "16 kHz 8 done, 7 skipped" in summary_line(capsys)
    fresh = tmp_path / "fresh"
    run(root, fresh, "MSBGEar.ahr=10")
    assert asr_audio(exp) == asr_audio(fresh)


def test_deleted_msbg_folder_same_settings_keeps_identical_16khz_files(copies, done_run, capsys):
    root, exp = copies
    before = normalised_digest(done_run)
    shutil.rmtree(exp / "msbg")
    run(root, exp)
    line = summary_line(capsys)
    assert "MSBG 8 done" in line and "16 kHz 0 done, 15 skipped" in line  # same bytes: current
    assert normalised_digest(exp) == before


def test_fixed_audiogram_redoes_that_listeners_signals_only(copies, tmp_path, capsys):
    root, exp = copies
    listeners_json = root / TRAIN_META / "listeners.CPC1_train.json"
    listeners = json.loads(listeners_json.read_text())
    listeners["L0001"]["audiogram_levels_l"] = [40] * 8
    listeners_json.write_text(json.dumps(listeners))
    before = asr_audio(exp)
    run(root, exp)
    line = summary_line(capsys)
    n_l0001 = sum(1 for entry in TRAIN if entry[1] == "L0001")
    assert f"MSBG {n_l0001} done" in line and f"16 kHz {n_l0001} done" in line
    after = asr_audio(exp)
    changed = sorted(name for name in after if after[name] != before[name])
    assert changed and all("L0001" in name for name in changed)
    fresh = tmp_path / "fresh"
    run(root, fresh)
    assert after == asr_audio(fresh)


def test_killed_stage_rerun_redoes_outputs_it_did_not_record(copies, done_run, capsys):
    """An output without a record entry (killed before the flush) is redone, not trusted."""
    root, exp = copies
    before = normalised_digest(done_run)
    (exp / "msbg" / "train" / "msbg_record.json").unlink()
    wav = exp / "cpc1_asr_data" / "train_left_msbg" / f"{SIGNAL}.wav"
    sf.write(wav, np.zeros(100), 16000, subtype="PCM_16")  # a wrong file the record would catch
    run(root, exp)
    line = summary_line(capsys)
    assert "MSBG 6 done, 2 skipped" in line and "16 kHz 1 done" in line
    assert normalised_digest(exp) == before


def test_sharded_records_are_superseded_by_an_unsharded_run(cpc1_root, tmp_path, capsys):
    exp = tmp_path / "exp"
    run(cpc1_root, exp, "num_shards=2", "shard_index=0")
    run(cpc1_root, exp, "num_shards=2", "shard_index=1")
    names = sorted(p.name for p in (exp / "msbg" / "train").glob("msbg_record*.json"))
    assert names == ["msbg_record.shard-1-of-2.json", "msbg_record.shard-2-of-2.json"]
    capsys.readouterr()
    run(cpc1_root, exp)
    assert "MSBG 0 done, 8 skipped" in summary_line(capsys)
    assert sorted(p.name for p in (exp / "msbg" / "train").glob("msbg_record*.json")) == ["msbg_record.json"]


# --------------------------------------------------------------------------------------------
# records, directly
# --------------------------------------------------------------------------------------------
def test_fingerprint_matches_content_not_time(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"abcd")
    stored = fingerprint(path)
    os.utime(path, ns=(1, 1))  # a copy or a touch: same content, other time
    assert still_matches(path, stored) == [4, 1, stored[2]]
    path.write_bytes(b"abce")  # same size, other content
    assert still_matches(path, stored) is None
    path.write_bytes(b"abc")
    assert still_matches(path, stored) is None
    path.unlink()
    assert still_matches(path, stored) is None


def test_stage_record_entries(tmp_path, caplog):
    source, out = tmp_path / "in.txt", tmp_path / "out" / "o.txt"
    source.write_text("x")
    out.parent.mkdir()
    out.write_text("y")
    unit = Unit("o.txt", (source,), {"gain": 1}, (out,))
    with RecordSet([out.parent], "demo") as records:
        assert records.stale([unit]) == [unit]
        records.done(unit)
    record = json.loads((out.parent / "demo_record.json").read_text())
    assert record["version"] == 1 and list(record["entries"]) == ["o.txt"]
    assert StageRecord(out.parent, "demo").stale([unit]) == []
    assert StageRecord(out.parent, "demo").stale([Unit("o.txt", (source,), {"gain": 2}, (out,))])
    out.write_text("z")  # an output replaced by someone else
    assert StageRecord(out.parent, "demo").stale([unit]) == [unit]
    (out.parent / "demo_record.json").write_text('{"version": 99}')
    assert StageRecord(out.parent, "demo").stale([unit]) == [unit]
    assert "not a version-1 record" in caplog.text


# --------------------------------------------------------------------------------------------
# fault 2: IDs used as paths
# --------------------------------------------------------------------------------------------
def _set_first_signal(root: Path, signal: str) -> None:
    path = root / TRAIN_META / "CPC1.train.json"
    records = json.loads(path.read_text())
    records[0]["signal"] = signal
    path.write_text(json.dumps(records))


def test_absolute_signal_id_is_refused_and_the_input_kept(cpc1_root, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(cpc1_root, root)
    _set_first_signal(root, str(root / HA_TRAIN / SIGNAL))
    before = digest(root)
    with pytest.raises(
        ValueError,
        match=r"CPC1\.train\.json: 1 record\(s\) have IDs that are not "
        r"CPC1 IDs .*record 0: signal '/.*' does not match",
    ):
        run(root, tmp_path / "exp")
    assert digest(root) == before and not (tmp_path / "exp").exists()


@pytest.mark.parametrize(
    "field, value",
    [
        ("signal", "../../S00101_L0001_E001"),
        ("scene", "../S00101"),
        ("listener", "L0001/.."),
        ("signal", "S00101_L0002_E001"),
    ],
)
def test_bad_ids_are_refused_before_any_work(cpc1_root, tmp_path, field, value):
    root = tmp_path / "root"
    shutil.copytree(cpc1_root, root)
    path = root / TRAIN_META / "CPC1.train.json"
    records = json.loads(path.read_text())
    records[0][field] = value
    path.write_text(json.dumps(records))
    before = digest(root)
    with pytest.raises(ValueError, match=re.escape(f"record 0: {field} '{value}'")):
        run(root, tmp_path / "exp")
    assert digest(root) == before and sorted(os.listdir(tmp_path)) == ["root"]


def test_id_scheme():
    assert CPC1_IDS.problem("signal", "S08510_L0239_E001") == ""
    assert "does not match" in CPC1_IDS.problem("system", "E1")
    opaque = type(CPC1_IDS)("CPC3", {"signal": r"[0-9a-f]{8}"})
    assert opaque.record_problems({"signal": "0123abcd", "scene": "anything"}) == []
    assert "plain file name" in opaque.problem("scene", "../up")
    check_record_ids([{"signal": "0123abcd"}], Path("x.json"), opaque)
    with pytest.raises(ValueError, match="not CPC3 IDs"):
        check_record_ids([{"signal": "0123abcg"}], Path("x.json"), opaque)


@pytest.mark.parametrize("setting", ["path.exp_folder", "path.msbg_output_dir"])
def test_output_folder_inside_the_dataset_is_refused(cpc1_root, tmp_path, setting):
    root = tmp_path / "root"
    shutil.copytree(cpc1_root, root)
    before = digest(root)
    inside = root / "clarity_CPC1_data_train" / "clarity_data" / "HA_outputs"
    overrides = [f"{setting}={inside}"]
    exp = tmp_path / "exp" if setting != "path.exp_folder" else inside
    with pytest.raises(ValueError, match=f"{setting}=.*HA_outputs is inside the training archive"):
        prepare_data.main(make_cfg(root, exp, *overrides))
    assert digest(root) == before


# --------------------------------------------------------------------------------------------
# fault 5: file modes follow the umask
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002])
def test_outputs_honour_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_json_atomic(tmp_path / "a.json", {"x": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o666 & ~umask


def test_prepare_data_outputs_follow_the_umask(cpc1_root, tmp_path):
    old = os.umask(0o027)
    try:
        run(cpc1_root, tmp_path / "exp", "stage=split")
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "exp").rglob("*") if p.is_file()]
    assert files and {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o640}


# --------------------------------------------------------------------------------------------
# fault 3 and input checks: truncated, replaced, too short or too loud inputs; bad numbers
# --------------------------------------------------------------------------------------------
def _truncate(path: Path, n_bytes: int) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:n_bytes])


def test_truncated_ha_output_is_refused(cpc1_root, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(cpc1_root, root)
    wav = root / HA_TRAIN / f"{SIGNAL}.wav"
    _truncate(wav, wav.stat().st_size - 4410 * 2 * 4)  # header intact, the last 0.1 s lost
    with pytest.raises(
        ValueError,
        match=rf"1 hearing-aid output\(s\) differ in length .*{SIGNAL}"
        r"\.wav has 94815 samples, its reference S00101_target_anechoic\.wav 99225"
        r".*raise input_length_tolerance_s",
    ):
        run(root, tmp_path / "exp")
    assert not (tmp_path / "exp" / "msbg").exists()


def test_small_length_difference_is_accepted(cpc1_root, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(cpc1_root, root)
    wav = root / HA_TRAIN / f"{SIGNAL}.wav"
    _truncate(wav, wav.stat().st_size - 140 * 2 * 4)  # 140 samples shorter, as real CPC1
    run(root, tmp_path / "exp", "stage=msbg")
    with pytest.raises(ValueError, match="differ in length"):
        run(root, tmp_path / "exp", "stage=msbg", "input_length_tolerance_s=0.001")


def test_replaced_ha_output_is_redone_downstream(copies, tmp_path, capsys):
    root, exp = copies
    wav = root / HA_TRAIN / f"{SIGNAL}.wav"
    signal, rate = sf.read(wav)
    sf.write(wav, 0.5 * signal, rate, subtype="FLOAT")  # a repaired file: same length, new content
    before = asr_audio(exp)
    run(root, exp)
    assert "MSBG 1 done, 7 skipped" in (line := summary_line(capsys)) and "16 kHz 1 done" in line
    after = asr_audio(exp)
    assert sorted(k for k in after if after[k] != before[k]) == [
        f"train_{ear}_msbg/{SIGNAL}.wav" for ear in ("left", "right")
    ]
    fresh = tmp_path / "fresh"
    run(root, fresh)
    assert after == asr_audio(fresh)


def test_input_too_short_for_the_asr_is_refused(cpc1_root, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(cpc1_root, root)
    for path in (
        root / HA_TRAIN / f"{SIGNAL}.wav",
        root / "clarity_CPC1_data_train/clarity_data/scenes/S00101_target_anechoic.wav",
    ):
        signal, rate = sf.read(path)
        sf.write(path, signal[: int(2.05 * rate)], rate, subtype=sf.info(str(path)).subtype)
    with pytest.raises(
        ValueError,
        match=r"is 2\.0\d\d s long, expected more than the 2\.0 s "
        r"dropped at the start \+ 0\.1 s for the ASR",
    ):
        run(root, tmp_path / "exp")


@pytest.mark.parametrize(
    "override, message",
    [
        ("trim_s=-1", r"trim_s must be a number in \[0\.0, 60\.0\], got -1"),
        ("trim_s=nan", r"trim_s must be a number in .*got nan"),
        ("dev_percent=1.5", r"dev_percent must be a number in \[0\.0, 1\.0\], got 1\.5"),
        ("target_sample_rate=0", r"target_sample_rate must be a number in \[8000, 48000\], got 0"),
        ("input_length_tolerance_s=-0.1", r"input_length_tolerance_s must be"),
    ],
)
def test_numeric_settings_are_range_checked(cpc1_root, tmp_path, override, message):
    with pytest.raises(ValueError, match=message):
        run(cpc1_root, tmp_path / "exp", override)
    assert not (tmp_path / "exp").exists()


def test_loud_clipping_is_warned_about_with_a_count(cpc1_root, tmp_path, caplog, capsys):
    root = tmp_path / "root"
    shutil.copytree(cpc1_root, root)
    wav = root / HA_TRAIN / f"{SIGNAL}.wav"
    signal, rate = sf.read(wav)
    sf.write(wav, signal * 1e4 / np.abs(signal).max(), rate, subtype="FLOAT")  # peak 1e4
    run(root, tmp_path / "exp")
    assert re.search(rf"train_left_msbg/{SIGNAL}\.wav: \d+ of \d+ samples \(\d+\.\d %\) clipped", caplog.text)
    assert re.search(
        r"16 kHz 15 done, 0 skipped, \d+ file\(s\) with \d+ clipped sample\(s\)", summary_line(capsys)
    )


# --------------------------------------------------------------------------------------------
# errors of the operating system: named, with the fix (read-only folder, full disk)
# --------------------------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB tmpfs (needs root and mount rights, else the test is skipped); unmounted after."""
    point = tmp_path / "disk"
    point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(point)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield point
    finally:
        subprocess.run(["umount", str(point)], check=True)


def test_full_disk_names_the_file_and_the_fix(cpc1_root, small_disk):
    with pytest.raises(
        OSError,
        match=r"disk/exp/msbg/(train|test)/S\d{5}_L\d{4}_E\d{3}_HL-output\.wav: "
        r".*: the disk is full \(0\.\d MiB free\): free some space or write the "
        r"outputs elsewhere; a re-run resumes",
    ):
        run(cpc1_root, small_disk / "exp")


def test_read_only_output_folder_names_the_folder_and_the_fix(cpc1_root, small_disk):
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    with pytest.raises(
        OSError,
        match=r"disk/exp: Read-only file system: make the folder " r"writable or write the outputs elsewhere",
    ):
        run(cpc1_root, small_disk / "exp")


def test_msbg_cli_read_only_output_is_one_message(small_disk, tmp_path, capsys):
    sf.write(tmp_path / "a.wav", np.zeros((44100, 2)), 44100, subtype="FLOAT")
    (small_disk / "out").mkdir()
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(
        f"input,output,{','.join(LEVEL_COLUMNS)}\n"
        f"a.wav,{small_disk / 'out' / 'a.wav'},{','.join(['20'] * 16)}\n"
    )
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    assert msbg_cli([str(jobs), "--num-workers", "1", "--quiet"]) == 2
    assert re.fullmatch(
        r"error: .*disk/out/a\.wav: Read-only file system: make the folder writable "
        r"or write the outputs elsewhere\n",
        capsys.readouterr().err,
    )


def test_libsndfile_system_error_becomes_a_named_os_error(tmp_path, monkeypatch):
    """libsndfile says only "System error." on a full disk: the error names the file and why."""
    import e032.io
    import msbg.files

    def failing_write(self, data):
        raise sf.LibsndfileError(2, "")

    monkeypatch.setattr(sf.SoundFile, "write", failing_write)
    monkeypatch.setattr(msbg.files.shutil, "disk_usage", lambda folder: shutil._ntuple_diskusage(1, 1, 0))
    with pytest.raises(OSError, match=r"libsndfile could not write it") as info:
        e032.io.write_wav_atomic(tmp_path / "x.wav", np.zeros(10), 16000)
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(tmp_path / "x.wav")
    assert os.listdir(tmp_path) == []  # no temporary file left


def test_msbg_cli_refuses_absurd_audiogram_levels(tmp_path, capsys):
    sf.write(tmp_path / "a.wav", np.zeros((44100, 2)), 44100, subtype="FLOAT")
    jobs = tmp_path / "jobs.csv"
    jobs.write_text(
        f"input,output,{','.join(LEVEL_COLUMNS)}\n" f"a.wav,out/a.wav,-500,{','.join(['20'] * 15)}\n"
    )
    assert msbg_cli([str(jobs), "--num-workers", "1", "--quiet"]) == 2
    assert "line 2: bad audiogram: audiogram levels must be at least -20 dB HL" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------------------------
# worker processes exit when their parent is killed
# --------------------------------------------------------------------------------------------
ORPHAN_SCRIPT = """
import os, signal, sys
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from functools import partial

if __name__ == "__main__":
    from msbg.parallel import init_pool_worker
    from msbg.batch import _init_worker
    initializer = (init_pool_worker if sys.argv[1] == "forkserver"
                   else partial(init_pool_worker, _init_worker, ({},)))
    pool = ProcessPoolExecutor(2, mp_context=get_context(sys.argv[1]), initializer=initializer)
    pids = {pool.submit(os.getpid).result() for _ in range(6)}
    print(" ".join(map(str, sorted(pids))), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # as kill -9 of prepare_data.py
"""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")  # a zombie has exited


@pytest.mark.parametrize("context", ["forkserver", "spawn"])  # the 16 kHz pool, the MSBG pool
def test_workers_exit_when_their_parent_is_killed(tmp_path, context):
    script = tmp_path / "orphans.py"
    script.write_text(ORPHAN_SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    result = subprocess.run(
        [sys.executable, str(script), context],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    pids = [int(p) for p in result.stdout.split()]
    assert result.returncode == -9 and pids, result.stderr
    deadline = time.monotonic() + 30
    while any(map(_running, pids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = [pid for pid in pids if _running(pid)]
    for pid in alive:
        os.kill(pid, 9)  # do not leave them behind when the test fails
    assert alive == []


# --------------------------------------------------------------------------------------------
# a mistyped path.root: Hydra's log does not create <typo>/e032/hydra/
# --------------------------------------------------------------------------------------------
def test_hydra_log_dir_only_under_an_existing_experiment_or_dataset(tmp_path, monkeypatch):
    from e032.hydra_logs import log_dir

    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    exp, data = tmp_path / "root" / "e032", tmp_path / "root" / "clarity_CPC1_data_train"
    assert log_dir(str(exp), str(data), "t") == str(tmp_path / "tmp" / "e032-hydra" / "t")
    data.mkdir(parents=True)
    assert log_dir(str(exp), str(data), "t") == str(exp / "hydra" / "t")
    assert log_dir(str(tmp_path), str(tmp_path / "typo"), "t") == str(tmp_path / "hydra" / "t")
