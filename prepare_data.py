"""Prepare the CPC1 data for E032: scene split, MSBG, 16 kHz mono files, SpeechBrain CSVs.

Usage (any config.yaml key can be overridden)::

    python prepare_data.py path.root=/data/cpc1                    # closed track
    python prepare_data.py path.root=/data/cpc1 cpc1_track=open    # open track, same exp_folder
    python prepare_data.py path.root=/data/cpc1 num_shards=8 shard_index=3   # one of 8 jobs
    python prepare_data.py path.root=/data/cpc1 stage=merge        # after all shards: the CSVs

See docs/prepare_data.md for the outputs and the differences from the original recipe.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import hydra
from omegaconf import DictConfig, OmegaConf

import e032.hydra_logs  # noqa: F401  (registers the resolver of hydra.run.dir)
from e032.cpc1_inputs import check_wav_headers
from e032.data_split import load_or_make_split
from e032.io import explain_os_errors
from e032.manifests import SignalItem, items_from_records, write_manifests
from e032.prepare import (
    RANGES,
    check_audio_inputs,
    check_options,
    check_ranges,
    load_listeners,
    load_track_records,
    mono_split_units,
    msbg_units,
    output_folders,
    redo_mono_split_units,
    reference_scenes,
    remove_stale_temp_files,
    shard_items,
)
from e032.records import RecordSet, check_or_write_stamp, writer_tag
from e032.resample import RESAMPLER_STAMPS, MonoSplitSettings
from e032.tracks import TrackPaths, resolve_track

logger = logging.getLogger(__name__)
WAY_OUT = ("use another path.exp_folder (or path.msbg_output_dir), or delete that folder to redo "
           "it")


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
        share = (f", MSBG {100 * self.seconds.get('msbg', 0) / total_s:.0f}% of {total_s:.1f} s"
                 if worked else "")
        return (f"prepare_data [{self.track}{self.shard}]: {self.n_signals} signals | split "
                f"{self.split} | MSBG {self.msbg} | 16 kHz {self.resample} | CSVs {self.csvs} | "
                f"{rate}{share}")


def stage_split(cfg: DictConfig, paths: TrackPaths, records: dict, report: Report) -> list[str]:
    """Draw (or reuse) the train/dev scene split; return the dev scenes."""
    train, dev, reused = load_or_make_split(paths.split_list("train"), paths.split_list("dev"),
                                            records["train"], cfg.dev_percent, cfg.split_seed,
                                            paths.split_settings)
    report.split = f"{len(train)} train / {len(dev)} dev scenes ({'reused' if reused else 'new'})"
    return dev


def stage_check_audio(cfg, paths, items, scenes) -> None:
    """Check every input WAV header of this shard before the long stages (cheap)."""
    check_audio_inputs(paths, items, scenes, int(cfg.MSBGEar.sample_rate), float(cfg.trim_s),
                       float(cfg.input_length_tolerance_s))
    if cfg.stage == "resample":  # MSBG must have run already
        check_wav_headers([paths.msbg_wav(i.split, i.signal) for i in items],
                          int(cfg.MSBGEar.sample_rate), n_channels=2, trim_s=float(cfg.trim_s))


def stage_msbg(cfg: DictConfig, paths: TrackPaths, items: list[SignalItem], report: Report):
    """Simulate the listener's hearing loss on every signal of this shard whose MSBG output is
    missing or stale (msbg batch runner); record what each output was made from."""
    from msbg.batch import run_jobs

    ear_params = OmegaConf.to_container(cfg.MSBGEar, resolve=True)
    settings = {"MSBGEar": ear_params}
    folders = sorted({paths.msbg_dir(item.split) for item in items})
    for folder in folders:
        check_or_write_stamp(folder / "msbg_settings.json", settings, WAY_OUT)
    units = msbg_units(paths, items, load_listeners(paths, items), settings)
    logger.info("MSBG: %d signals -> %s", len(units), paths.msbg_dir("train").parent)
    with RecordSet(folders, "msbg", shard_tag(cfg)) as record:
        todo = record.stale(units)
        by_output = {unit.job.output_wav: unit for unit in todo}
        run_jobs([unit.job for unit in todo], ear_params=ear_params,
                 num_workers=int(cfg.num_workers), progress=bool(cfg.progress),
                 skip_existing=False, on_done=lambda job: record.done(by_output[job.output_wav]))
    report.msbg = f"{len(todo)} done, {len(units) - len(todo)} skipped"


def stage_resample(cfg: DictConfig, paths: TrackPaths, items, scenes, report: Report) -> None:
    """16 kHz mono files of the MSBG outputs and of the per-scene references of this shard,
    for every file missing or stale (its source or the settings changed)."""
    settings = MonoSplitSettings(int(cfg.MSBGEar.sample_rate), int(cfg.target_sample_rate),
                                 float(cfg.trim_s), str(cfg.wav_subtype), str(cfg.resampler))
    stamp = {"target_sample_rate": settings.sample_rate_out, "trim_s": settings.trim_s,
             "wav_subtype": settings.subtype, "resampler": RESAMPLER_STAMPS[settings.resampler]}
    check_or_write_stamp(paths.asr_data_dir / "prepare_settings.json", stamp, WAY_OUT)
    units = mono_split_units(paths, items, scenes, stamp)
    logger.info("16 kHz: %d files -> %s", len(units), paths.asr_data_dir)
    with RecordSet([paths.asr_data_dir], "resample", shard_tag(cfg)) as record:
        todo = record.stale(units)
        clipping = redo_mono_split_units(todo, settings, record, int(cfg.num_workers),
                                         bool(cfg.progress))
    report.resample = f"{len(todo)} done, {len(units) - len(todo)} skipped{clipping.summary()}"


def stage_merge(cfg: DictConfig, paths: TrackPaths, items: list[SignalItem], report: Report):
    """Write the 18 CSVs from the files on disk (after all shards, or in an unsharded run)."""
    remove_stale_temp_files(output_folders(paths))
    n_signals = write_manifests(paths, items, int(cfg.target_sample_rate))
    report.csvs = f"18 written ({n_signals} signals)"


def shard_tag(cfg: DictConfig) -> str:
    """The record-file tag of this run (its shard, if sharded)."""
    return writer_tag(int(cfg.shard_index), int(cfg.num_shards))


def timed(report: Report, name: str, function, *args) -> None:
    """Run one stage and record its wall time."""
    start_s = time.perf_counter()
    function(*args)
    report.seconds[name] = time.perf_counter() - start_s


@hydra.main(version_base=None, config_path=".", config_name="config")
@explain_os_errors
def main(cfg: DictConfig) -> None:
    """Run the stages selected by ``cfg.stage`` for this shard, then print a summary."""
    check_options(cfg.stage, int(cfg.shard_index), int(cfg.num_shards), str(cfg.wav_subtype), str(cfg.resampler))
    check_ranges(**{name: cfg[name] for name in RANGES})
    paths = resolve_track(cfg)
    shard_i, n_shards = int(cfg.shard_index), int(cfg.num_shards)
    report = Report(paths.track, f" shard {shard_i + 1}/{n_shards}" if n_shards > 1 else "")
    records = load_track_records(paths, cfg.path.root)
    dev_scenes = stage_split(cfg, paths, records, report)
    items = items_from_records(records["train"], "train", dev_scenes)
    items += items_from_records(records["test"], "test")
    mine = shard_items(items, shard_i, n_shards)
    scenes = reference_scenes(items, shard_i, n_shards)
    report.n_signals = len(mine)
    if cfg.stage in ("all", "msbg", "resample"):
        stage_check_audio(cfg, paths, mine, scenes)
    if cfg.stage in ("all", "msbg"):
        timed(report, "msbg", stage_msbg, cfg, paths, mine, report)
    if cfg.stage in ("all", "resample"):
        timed(report, "resample", stage_resample, cfg, paths, mine, scenes, report)
    if cfg.stage == "merge" or (cfg.stage == "all" and n_shards == 1):
        timed(report, "merge", stage_merge, cfg, paths, items, report)
    elif cfg.stage == "all":
        report.csvs = "deferred (run stage=merge after all shards)"
    print(report.line())


if __name__ == "__main__":
    main()
