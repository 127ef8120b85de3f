"""Prepare the CPC1 data for E032: scene split, MSBG, 16 kHz mono files, SpeechBrain CSVs.

Usage (any config.yaml key can be overridden)::

    python prepare_data.py path.root=/data/cpc1                    # closed track
    python prepare_data.py path.root=/data/cpc1 cpc1_track=open    # open track, same exp_folder
    python prepare_data.py path.root=/data/cpc1 num_shards=8 shard_index=3   # one of 8 jobs
    python prepare_data.py path.root=/data/cpc1 stage=merge        # after all shards: the CSVs
    python prepare_data.py dataset=cpc2 partition=1 path.root=/data/cpc2   # CPC2 train.1 -> eval.1
    python prepare_data.py dataset=cpc3 split=dev path.root=/data/cpc3     # CPC3 train -> dev

See docs/prepare_data.md for the outputs and the differences from the original recipe.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

import e032.hydra_logs  # noqa: F401  (registers the resolver of hydra.run.dir)
from e032.cpc1_inputs import check_wav_headers
from e032.data_split import load_or_make_split
from e032.datasets import TRIM_S, msbg_equiv_0db_spl
from e032.io import explain_os_errors
from e032.manifests import SignalItem, write_manifests
from e032.prepare import (
    RANGES,
    check_audio_inputs,
    check_options,
    check_ranges,
    mono_split_units,
    msbg_enabled,
    msbg_input_units,
    msbg_units,
    output_folders,
    redo_mono_split_units,
    reference_items,
    remove_stale_temp_files,
    run_resample_jobs,
    shard_items,
)
from e032.records import RecordSet, check_or_write_stamp, writer_tag
from e032.resample import RESAMPLER_STAMPS, MonoSplitSettings
from e032.run_items import Cpc1Run, DatasetRun, open_run
from e032.tracks import resolve_track

Run = Cpc1Run | DatasetRun
logger = logging.getLogger(__name__)
WAY_OUT = "use another path.exp_folder (or path.msbg_output_dir), or delete that folder to redo " "it"


@dataclass
class Report:
    """What each stage did, for the one-line summary."""

    track: str
    shard: str
    n_signals: int = 0
    split: str = ""
    msbg: str = "not run"
    resample: str = "not run"
    csvs: str = "not written"
    seconds: dict[str, float] = field(default_factory=dict)

    def line(self) -> str:
        total_s = sum(self.seconds.values())
        worked = total_s > 0 and ("msbg" in self.seconds or "resample" in self.seconds)
        rate = f"{60 * self.n_signals / total_s:.1f} signals/min" if worked else "-"
        share = (
            f", MSBG {100 * self.seconds.get('msbg', 0) / total_s:.0f}% of {total_s:.1f} s" if worked else ""
        )
        return (
            f"prepare_data [{self.track}{self.shard}]: {self.n_signals} signals | split "
            f"{self.split} | MSBG {self.msbg} | 16 kHz {self.resample} | CSVs {self.csvs} | "
            f"{rate}{share}"
        )


def stage_split(cfg: DictConfig, run: Run, report: Report) -> list[str]:
    """Draw (or reuse) the train/dev scene split; return the dev scenes.

    CPC2/CPC3 scenes are ``<subset>_<scene>``: the same scene ID in CEC1 and CEC2 is two scenes.
    """
    paths = run.paths
    train, dev, reused = load_or_make_split(
        paths.split_list("train"),
        paths.split_list("dev"),
        run.split_records(),
        cfg.dev_percent,
        cfg.split_seed,
        paths.split_settings,
    )
    report.split = f"{len(train)} train / {len(dev)} dev scenes ({'reused' if reused else 'new'})"
    return dev


def stage_check_audio(cfg, run: Run, items, references) -> None:
    """Check every input WAV header of this shard before the long stages (cheap)."""
    if isinstance(run, DatasetRun):
        run.check_files()  # the dataset's own checks first: they name layout mix-ups
    check_audio_inputs(run, items, references, float(cfg.input_length_tolerance_s))
    if cfg.stage == "resample" and msbg_enabled(cfg.msbg_mode):  # MSBG must have run already
        groups: dict[float, list[Path]] = {}
        for item in items:
            inputs = run.inputs(item)
            groups.setdefault(inputs.trim_s, []).append(inputs.msbg_wav)
        for trim_s, files in groups.items():
            check_wav_headers(files, int(cfg.MSBGEar.sample_rate), n_channels=2, trim_s=trim_s)


def ear_settings(cfg: DictConfig, run: Run) -> dict:
    """The MSBGEar settings of this run (CPC2/CPC3: ``equiv_0db_spl`` at the dataset's level)."""
    ear_params = OmegaConf.to_container(cfg.MSBGEar, resolve=True)
    if run.name != "cpc1":
        ear_params["equiv_0db_spl"] = msbg_equiv_0db_spl(run.name, ear_params["equiv_0db_spl"])
    return ear_params


def stage_msbg_inputs(cfg: DictConfig, run: Run, items: list[SignalItem]) -> int:
    """Resample the HA outputs that are not at 44.1 kHz (CPC2/CPC3: 32 kHz) for MSBG."""
    units = msbg_input_units(run, items, str(cfg.resampler))
    if not units:
        return 0
    folders = sorted({unit.outputs[0].parent for unit in units})
    with RecordSet(folders, "msbg_input", shared_tag(cfg, run)) as record:
        todo = record.stale(units)
        by_output = {unit.job.output: unit for unit in todo}
        run_resample_jobs(
            [unit.job for unit in todo],
            int(cfg.num_workers),
            on_done=lambda job, wrote: record.done(by_output[job.output]),
        )
    return len(todo)


def stage_msbg(cfg: DictConfig, run: Run, items: list[SignalItem], report: Report):
    """Simulate the listener's hearing loss on every signal of this shard whose MSBG output is
    missing or stale (msbg batch runner); record what each output was made from."""
    from msbg.batch import run_jobs

    n_resampled = stage_msbg_inputs(cfg, run, items)
    ear_params = ear_settings(cfg, run)
    settings = {"MSBGEar": ear_params}
    units = msbg_units(run, items, settings)
    folders = sorted({unit.outputs[0].parent for unit in units})
    for folder in folders:
        check_or_write_stamp(folder / "msbg_settings.json", settings, WAY_OUT)
    logger.info("MSBG: %d signals -> %s", len(units), folders[0].parent if folders else "-")
    with RecordSet(folders, "msbg", shared_tag(cfg, run)) as record:
        todo = record.stale(units)
        by_output = {unit.job.output_wav: unit for unit in todo}
        run_jobs(
            [unit.job for unit in todo],
            ear_params=ear_params,
            num_workers=int(cfg.num_workers),
            progress=bool(cfg.progress),
            skip_existing=False,
            on_done=lambda job: record.done(by_output[job.output_wav]),
        )
    resampled = f" ({n_resampled} resampled to 44.1 kHz first)" if n_resampled else ""
    report.msbg = f"{len(todo)} done, {len(units) - len(todo)} skipped{resampled}"


def stage_resample(cfg: DictConfig, run: Run, items, references, report: Report) -> None:
    """16 kHz mono files of the MSBG outputs (msbg=off: the HA outputs) and of the references
    of this shard, for every file missing or stale (its source or the settings changed)."""
    paths = run.paths
    trim_s = cfg.trim_s
    if run.name == "cpc1" and trim_s == "dataset":
        trim_s = TRIM_S[("cpc1", "CPC1")]  # stamped as the number, as before
    base = MonoSplitSettings(
        int(cfg.MSBGEar.sample_rate),
        int(cfg.target_sample_rate),
        float(trim_s) if not isinstance(trim_s, str) else float("nan"),
        str(cfg.wav_subtype),
        str(cfg.resampler),
    )
    stamp = {
        "target_sample_rate": base.sample_rate_out,
        "trim_s": trim_s,
        "wav_subtype": base.subtype,
        "resampler": RESAMPLER_STAMPS[base.resampler],
    }
    if not msbg_enabled(cfg.msbg_mode):
        stamp["msbg"] = "off"
    check_or_write_stamp(paths.asr_data_dir / "prepare_settings.json", stamp, WAY_OUT)
    units, settings = mono_split_units(run, items, references, stamp, base, msbg_enabled(cfg.msbg_mode))
    logger.info("16 kHz: %d files -> %s", len(units), paths.asr_data_dir)
    with RecordSet([paths.asr_data_dir], "resample", shard_tag(cfg)) as record:
        todo = record.stale(units)
        clipping = redo_mono_split_units(todo, settings, record, int(cfg.num_workers), bool(cfg.progress))
    report.resample = f"{len(todo)} done, {len(units) - len(todo)} skipped{clipping.summary()}"


def stage_merge(cfg: DictConfig, run: Run, items: list[SignalItem], report: Report):
    """Write the 18 CSVs from the files on disk (after all shards, or in an unsharded run)."""
    remove_stale_temp_files(output_folders(run, items))
    n_signals = write_manifests(run.paths, items, int(cfg.target_sample_rate))
    report.csvs = f"18 written ({n_signals} signals)"


def shard_tag(cfg: DictConfig) -> str:
    """The record-file tag of this run (its shard, if sharded)."""
    return writer_tag(int(cfg.shard_index), int(cfg.num_shards))


def shared_tag(cfg: DictConfig, run: Run) -> str:
    """The record-file tag in MSBG folders, which CPC2 partitions share: each run (suffix) has its
    own record file and reads the others' (e032.records), so no run redoes another's outputs."""
    return shard_tag(cfg) + ("" if run.name == "cpc1" else run.paths.suffix)


def timed(report: Report, name: str, function, *args) -> None:
    """Run one stage and record its wall time."""
    start_s = time.perf_counter()
    function(*args)
    report.seconds[name] = time.perf_counter() - start_s


@hydra.main(version_base=None, config_path=".", config_name="config")
@explain_os_errors
def main(cfg: DictConfig) -> None:
    """Run the stages selected by ``cfg.stage`` for this shard, then print a summary."""
    check_options(
        cfg.stage, int(cfg.shard_index), int(cfg.num_shards), str(cfg.wav_subtype), str(cfg.resampler)
    )
    check_ranges(**{name: cfg[name] for name in RANGES})
    paths = resolve_track(cfg)
    shard_i, n_shards = int(cfg.shard_index), int(cfg.num_shards)
    report = Report(paths.track, f" shard {shard_i + 1}/{n_shards}" if n_shards > 1 else "")
    msbg_on = msbg_enabled(cfg.msbg_mode)
    run = open_run(cfg, paths)
    dev_scenes = stage_split(cfg, run, report)
    items = run.items(dev_scenes)
    mine = shard_items(items, shard_i, n_shards)
    references = reference_items(items, shard_i, n_shards)
    report.n_signals = len(mine)
    if cfg.stage in ("all", "msbg", "resample"):
        stage_check_audio(cfg, run, mine, references)
    if cfg.stage in ("all", "msbg") and msbg_on:
        timed(report, "msbg", stage_msbg, cfg, run, mine, report)
    elif cfg.stage in ("all", "msbg"):
        report.msbg = "off"
    if cfg.stage in ("all", "resample"):
        timed(report, "resample", stage_resample, cfg, run, mine, references, report)
    if cfg.stage == "merge" or (cfg.stage == "all" and n_shards == 1):
        timed(report, "merge", stage_merge, cfg, run, items, report)
    elif cfg.stage == "all":
        report.csvs = "deferred (run stage=merge after all shards)"
    print(report.line())


if __name__ == "__main__":
    main()
