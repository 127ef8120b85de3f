"""Generate a mini-CPC1 dataset: design (serial, seeded), TTS and scenes (parallel), files (atomic).

Layout written under ``root`` (as the real archives unpack, plus three extra folders):

* ``clarity_CPC1_data_train/metadata/{CPC1.train.json, CPC1.train_indep.json,
  listeners.CPC1_train.json, scenes.CPC1_train.json}``; ``clarity_data/HA_outputs/{train,train_indep}/
  <signal>.wav``; ``clarity_data/scenes/<scene>_target_anechoic.wav``.
* ``clarity_CPC1_data_test/metadata/{CPC1.test.json, CPC1.test_indep.json, listeners.CPC1_all.json}``
  (test lists without labels); ``clarity_data/HA_outputs/{test,test_indep}/``; ``clarity_data/scenes/``.
* ``test_listener_responses/CPC1.test{,_indep}.json``: the test labels (full records).
* ``latent/``: what the pipeline must never read (SNR, index, p per signal; the ceiling).
* ``clean_corpus/``: 16 kHz TTS sentences and SpeechBrain CSVs for ASR pre-training.

Every random draw comes from ``numpy.random.SeedSequence`` children of the seed keyed by what they
decide (design, scene number, signal), so results do not depend on worker count or order.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import os
import resource
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import soundfile as sf

from e032.io import atomic_path, read_json, write_csv_atomic, write_json_atomic
from e032.manifests import ASR_SAMPLE_RATE, read_manifest
from e032.minicpc1 import listener_model
from e032.minicpc1.hearing_aids import HA_OUTPUT_TRIM_SAMPLES, apply_system
from e032.minicpc1.listeners import SyntheticListener, make_listeners
from e032.minicpc1.presets import MiniCPC1Config
from e032.minicpc1.scenes import SAMPLE_RATE, BabbleTalker, SceneSpec, ltass, render_scene, rms
from e032.minicpc1.sentences import SentencePartition, partition_sentences, vocabulary
from e032.minicpc1.tts import VOICES, check_engines, resample, synthesize
from msbg.parallel import default_num_workers, run_pool

logger = logging.getLogger(__name__)

GENERATOR_VERSION: Final[int] = 2  # bump whenever the same configuration would give other files
CLEAN_SAMPLE_RATE: Final[int] = ASR_SAMPLE_RATE  # the clean corpus is ASR training data
CLEAN_LEVEL_DBFS: Final[float] = -25.0
REFERENCE_LEVEL_DBFS: Final[float] = -21.0  # active level of the 16-bit target reference (fixture: about -22)
FIRST_TRAIN_SCENE: Final[int] = 1001
FIRST_TEST_SCENE: Final[int] = 9001
RECORD_KEYS: Final[tuple[str, ...]] = (  # key order of the real CPC1 records
    "prompt",
    "scene",
    "n_words",
    "hits",
    "listener",
    "system",
    "correctness",
    "response",
    "volume",
    "signal",
)
LABEL_KEYS: Final[frozenset[str]] = frozenset({"hits", "correctness", "response"})
_SEED_DESIGN, _SEED_SCENE, _SEED_SIGNAL = 0, 1, 2


@dataclass(frozen=True)
class SignalSpec:
    """One (scene, listener, system) signal and the folders its HA output goes to."""

    signal: str
    listener: SyntheticListener
    system: str
    listener_index: int
    system_index: int
    folders: tuple[str, ...]  # e.g. ("train", "train_indep")


@dataclass(frozen=True)
class SceneJob:
    """Work of one scene: render, write the reference and each signal's HA output, score it."""

    spec: SceneSpec
    scene_index: int
    archive: Path  # clarity_CPC1_data_{train,test}
    signals: tuple[SignalSpec, ...]


# ------------------------------------------------------------------------------------------------
# design (serial)


def _draw_scene(
    scene: str, sentence: str, babble_sentences: list[str], cfg: MiniCPC1Config, rng: np.random.Generator
) -> SceneSpec:
    voices = [v.name for v in VOICES]
    voice = voices[int(rng.integers(len(voices)))]
    kind = "ssn" if rng.random() < 0.5 else "babble"
    babble = ()
    if kind == "babble":
        others = [v for v in voices if v != voice]
        talker_voices = rng.choice(len(others), size=cfg.babble_talkers, replace=False)
        babble = tuple(
            BabbleTalker(
                sentences=tuple(
                    babble_sentences[i]
                    for i in rng.choice(
                        len(babble_sentences), size=min(3, len(babble_sentences)), replace=False
                    )
                ),
                voice=others[int(v)],
                azimuth_deg=float(np.round(rng.uniform(-90, 90))),
            )
            for v in talker_voices
        )
    return SceneSpec(
        scene=scene,
        sentence=sentence,
        voice=voice,
        # never exactly frontal, so that the reference always has ear differences
        target_azimuth_deg=float(np.round(rng.choice([-1.0, 1.0]) * rng.uniform(5, 30))),
        interferer_kind=kind,
        interferer_azimuth_deg=float(np.round(rng.uniform(-90, 90))),
        snr_db=float(np.round(rng.uniform(*cfg.snr_range_db), 2)),
        speech_level_db_spl=float(np.round(rng.uniform(*cfg.speech_level_range_db_spl), 2)),
        babble=babble,
    )


def _draw_pairs(
    n_pairs: int,
    listeners: list[SyntheticListener],
    cfg: MiniCPC1Config,
    heldout_listeners: set[str],
    first_heldout: bool,
    rng: np.random.Generator,
) -> list[tuple[int, int]]:
    """Distinct (listener index, system index) pairs; the first one held out (or not) as asked."""
    systems = list(cfg.systems)
    pairs = [(li, si) for li in range(len(listeners)) for si in range(len(systems))]

    def is_heldout(pair: tuple[int, int]) -> bool:
        return listeners[pair[0]].name in heldout_listeners or systems[pair[1]] in cfg.heldout_systems

    first_pool = [p for p in pairs if is_heldout(p) == first_heldout]
    first = first_pool[int(rng.integers(len(first_pool)))]
    rest = [p for p in pairs if p != first]
    chosen = rng.choice(len(rest), size=n_pairs - 1, replace=False)
    return [first] + [rest[int(i)] for i in chosen]


def design(
    cfg: MiniCPC1Config, root: Path
) -> tuple[list[SceneJob], list[SyntheticListener], set[str], SentencePartition]:
    """Draw sentences, listeners, scenes and signals (no audio, no files).

    Returns
    -------
    jobs : one per scene, train scenes first.
    listeners : all listeners.
    heldout : names of the listeners held out of the open-track training list.
    parts : the sentence partition.
    """
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, _SEED_DESIGN]))
    parts = partition_sentences(
        rng,
        cfg.n_train_scenes,
        cfg.n_test_scenes,
        cfg.n_babble_sentences,
        cfg.n_clean_valid,
        cfg.n_clean_train,
    )
    listeners = make_listeners(cfg.n_listeners, rng)
    n_heldout = max(1, int(round(cfg.heldout_listener_fraction * len(listeners))))
    heldout = {listeners[int(i)].name for i in rng.choice(len(listeners), size=n_heldout, replace=False)}
    jobs = []
    for split, sentences, first_number in (
        ("train", parts.train, FIRST_TRAIN_SCENE),
        ("test", parts.test, FIRST_TEST_SCENE),
    ):
        archive = root / f"clarity_CPC1_data_{split}"
        for i, sentence in enumerate(sentences):
            scene_index = first_number + i
            spec = _draw_scene(f"S{scene_index:05d}", sentence, parts.babble, cfg, rng)
            pairs = _draw_pairs(cfg.signals_per_scene, listeners, cfg, heldout, split == "test", rng)
            signals = []
            for li, si in pairs:
                listener, system = listeners[li], cfg.systems[si]
                is_heldout = listener.name in heldout or system in cfg.heldout_systems
                # open track: training keeps seen pairs only; test keeps pairs with an unseen part
                in_open = (not is_heldout) if split == "train" else is_heldout
                folders = (split, f"{split}_indep") if in_open else (split,)
                signals.append(
                    SignalSpec(f"{spec.scene}_{listener.name}_{system}", listener, system, li, si, folders)
                )
            jobs.append(SceneJob(spec, scene_index, archive, tuple(signals)))
    return jobs, listeners, heldout, parts


# ------------------------------------------------------------------------------------------------
# work (parallel)


def _tts_44k(key: tuple[str, str]) -> tuple[tuple[str, str], npt.NDArray[np.float32]]:
    """(sentence, voice) -> mono TTS at 44.1 kHz (float32 to keep the transfer small)."""
    signal, rate = synthesize(*key)
    return key, resample(signal, rate, SAMPLE_RATE).astype(np.float32)


def _clean_utterance(job: tuple[str, str, str, str]) -> tuple[str, float]:
    """(utt id, sentence, voice, wav path) -> write a 16 kHz 16-bit clean utterance; return its duration."""
    utt_id, sentence, voice, wav_path = job
    signal, rate = synthesize(sentence, voice)
    signal = resample(signal, rate, CLEAN_SAMPLE_RATE)
    signal = signal * (10 ** (CLEAN_LEVEL_DBFS / 20) / rms(signal))
    _write_wav(Path(wav_path), signal, CLEAN_SAMPLE_RATE, "PCM_16")
    return utt_id, len(signal) / CLEAN_SAMPLE_RATE


def _write_wav(path: Path, signal: npt.NDArray[np.float64], sample_rate: int, subtype: str) -> None:
    """Write a WAV atomically. libsndfile stamps float WAVs' PEAK chunk with the wall-clock time;
    the real CPC1 files carry the chunk too, so it is kept (unlike :func:`e032.io.write_wav_atomic`,
    which leaves it out) but its stamp is zeroed so that the same seed gives the same bytes."""
    buffer = io.BytesIO()
    sf.write(buffer, signal, sample_rate, subtype=subtype, format="WAV")
    data = bytearray(buffer.getvalue())
    peak = data.find(b"PEAK", 12, 200)
    if peak >= 0:  # chunk id, size, version, then the 32-bit timestamp
        data[peak + 12 : peak + 16] = bytes(4)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _link_atomic(source: Path, path: Path) -> None:
    """Make ``path`` a hard link to ``source`` (a copy where links fail), atomically."""
    with atomic_path(path) as tmp:
        tmp.unlink()
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)


def _reference(target: npt.NDArray[np.float64], onset: int, offset: int) -> npt.NDArray[np.float64]:
    """Target at the ears scaled to ``REFERENCE_LEVEL_DBFS`` over its span, peak kept below 1."""
    ref = target * (10 ** (REFERENCE_LEVEL_DBFS / 20) / rms(target[onset:offset]))
    peak = np.max(np.abs(ref))
    return ref * (0.99 / peak) if peak > 0.99 else ref


def run_scene(
    job: SceneJob,
    target_speech: npt.NDArray[np.float32],
    babble_speech: dict[tuple[str, str], npt.NDArray[np.float32]],
    noise_psd: npt.NDArray[np.float64],
    seed: int,
    vocab: list[str],
) -> list[dict]:
    """Render one scene, write its reference and HA outputs; return {record, latent} per signal."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SEED_SCENE, job.scene_index]))
    babble = {k: v.astype(np.float64) for k, v in babble_speech.items()}
    audio = render_scene(job.spec, target_speech.astype(np.float64), babble, noise_psd, rng)
    scenes_dir = job.archive / "clarity_data" / "scenes"
    _write_wav(
        scenes_dir / f"{job.spec.scene}_target_anechoic.wav",
        _reference(audio.target, audio.onset, audio.offset),
        SAMPLE_RATE,
        "PCM_16",
    )
    results = []
    for sig in job.signals:  # a few signals per scene
        out = apply_system(
            sig.system, audio.target, audio.interferer, (sig.listener.levels_l, sig.listener.levels_r)
        )
        n_out = audio.target.shape[0] - (HA_OUTPUT_TRIM_SAMPLES if sig.system != "E001" else 0)
        paths = [
            job.archive / "clarity_data" / "HA_outputs" / folder / f"{sig.signal}.wav"
            for folder in sig.folders
        ]
        _write_wav(paths[0], out.output[:n_out], SAMPLE_RATE, "FLOAT")
        for path in paths[1:]:  # the *_indep copy shares the file (hard link), as identical bytes
            _link_atomic(paths[0], path)
        span = slice(audio.onset + out.delay_samples, audio.offset + out.delay_samples)
        results.append(_label(job, sig, out.target[span], out.noise[span], seed, vocab))
        results[-1]["latent"]["ha_output_level_dbfs"] = round(20 * np.log10(rms(out.output[:n_out])), 3)
    return results


def _label(
    job: SceneJob,
    sig: SignalSpec,
    target_part: npt.NDArray[np.float64],
    noise_part: npt.NDArray[np.float64],
    seed: int,
    vocab: list[str],
) -> dict:
    """The listener model's verdict on one signal: the CPC1 record and the latent values."""
    audiograms = (sig.listener.levels_l, sig.listener.levels_r)
    speech_db = listener_model.band_levels_db_spl(target_part)
    noise_db = listener_model.band_levels_db_spl(noise_part)
    hl = np.stack([listener_model.audiogram_at_bands(a) for a in audiograms])
    index = float(listener_model.intelligibility_index(speech_db, noise_db, hl))
    p = float(listener_model.word_probability(index, sig.listener.offset))
    rng = np.random.default_rng(
        np.random.SeedSequence([seed, _SEED_SIGNAL, job.scene_index, sig.listener_index, sig.system_index])
    )
    n_words = len(job.spec.sentence.split())
    hits = int(rng.binomial(n_words, p))
    volume = int(np.clip(sig.listener.volume + rng.integers(-5, 6), 0, 100))
    record = {
        "prompt": job.spec.sentence,
        "scene": job.spec.scene,
        "n_words": n_words,
        "hits": hits,
        "listener": sig.listener.name,
        "system": sig.system,
        "correctness": 100.0 * hits / n_words,
        "response": listener_model.make_response(job.spec.sentence, hits, vocab, rng),
        "volume": volume,
        "signal": sig.signal,
    }
    latent = {
        "signal": sig.signal,
        "folders": list(sig.folders),
        "snr_db": job.spec.snr_db,
        "speech_level_db_spl": job.spec.speech_level_db_spl,
        "interferer": job.spec.interferer_kind,
        "voice": job.spec.voice,
        "listener_profile": sig.listener.profile,
        "listener_offset": round(sig.listener.offset, 6),
        "index": round(index, 6),
        "p": round(p, 6),
    }
    return {"record": record, "latent": latent}


def _run_scene_star(args: tuple) -> list[dict]:
    return run_scene(*args)


# ------------------------------------------------------------------------------------------------
# outputs


def _ncc(x: list[float], y: list[float]) -> float | None:
    if len(x) < 2 or np.std(x) == 0 or np.std(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def _scene_record(spec: SceneSpec, split: str, n_target: int) -> dict:
    """A scenes.CPC1_train.json entry (CEC1-like fields; E032 never reads this file)."""
    onset = 2 * SAMPLE_RATE
    return {
        "scene": spec.scene,
        "dataset": split,
        "target": {"name": f"T_{spec.voice}", "nsamples": n_target, "azimuth_deg": spec.target_azimuth_deg},
        "interferer": {
            "name": "speech_shaped_noise" if spec.interferer_kind == "ssn" else "babble",
            "type": "noise" if spec.interferer_kind == "ssn" else "speech",
            "offset": 0,
            "nsamples": onset + n_target + SAMPLE_RATE,
            "azimuth_deg": spec.interferer_azimuth_deg,
        },
        "duration": onset + n_target + SAMPLE_RATE,
        "SNR": spec.snr_db,
    }


def _ordered(record: dict, drop_labels: bool = False) -> dict:
    return {k: record[k] for k in RECORD_KEYS if not (drop_labels and k in LABEL_KEYS)}


def generate(cfg: MiniCPC1Config, root: str | Path, force: bool = False) -> dict:
    """Generate the dataset under ``root``; return a summary (counts, ceilings, time).

    A complete dataset already in ``root`` from the same configuration and generator version is
    reused (``summary["reused"]`` is True) unless ``force``.

    Raises
    ------
    RuntimeError
        If espeak-ng or flite is not installed.
    """
    t_start, cpu_start, children_start = time.perf_counter(), time.process_time(), _children_cpu_s()
    root = Path(root).expanduser().resolve()
    if not force and _is_complete(root, cfg):
        logger.info("mini-CPC1 in %s is complete and up to date: reused", root)
        summary = read_json(root / "latent" / "summary.json") | {"root": str(root), "reused": True}
        return summary | {"wall_s": round(time.perf_counter() - t_start, 2), "cpu_s": 0.0}
    check_engines()
    (root / "latent" / "summary.json").unlink(missing_ok=True)  # written last: marks a complete run
    jobs, listeners, heldout, parts = design(cfg, root)
    vocab = sorted(vocabulary(parts.clean_train + parts.test + parts.train))
    babble_keys = sorted({(s, t.voice) for j in jobs for t in j.spec.babble for s in t.sentences})
    target_keys = sorted({(j.spec.sentence, j.spec.voice) for j in jobs})
    ltass_keys = [(s, VOICES[i % len(VOICES)].name) for i, s in enumerate(parts.babble)]
    tts_keys = sorted(set(babble_keys) | set(target_keys) | set(ltass_keys))
    clean_jobs = _clean_jobs(cfg, parts, root / "clean_corpus")
    n_workers = default_num_workers(cfg.num_workers)
    logger.info(
        "mini-CPC1: %d scenes, %d TTS renders, %d clean utterances, %d workers",
        len(jobs),
        len(tts_keys),
        sum(len(v) for v in clean_jobs.values()),
        n_workers,
    )
    renders = dict(_map(_tts_44k, tts_keys, n_workers))
    stage_s = {"tts": time.perf_counter() - t_start}
    clean_flat = [j for part in clean_jobs.values() for j in part]
    durations = dict(_map(_clean_utterance, clean_flat, n_workers))
    stage_s["clean_corpus"] = time.perf_counter() - t_start - sum(stage_s.values())
    noise_psd = ltass([renders[k].astype(np.float64) for k in ltass_keys])
    scene_args = [
        (
            job,
            renders[(job.spec.sentence, job.spec.voice)],
            {(s, t.voice): renders[(s, t.voice)] for t in job.spec.babble for s in t.sentences},
            noise_psd,
            cfg.seed,
            vocab,
        )
        for job in jobs
    ]
    results = [r for rs in _map(_run_scene_star, scene_args, n_workers) for r in rs]
    stage_s["scenes"] = time.perf_counter() - t_start - sum(stage_s.values())
    logger.info("mini-CPC1 stage wall times (s): %s", {k: round(v, 1) for k, v in stage_s.items()})
    summary = _write_metadata(cfg, root, jobs, listeners, heldout, results, renders)
    _write_clean_csvs(root / "clean_corpus", clean_jobs, durations)
    summary |= {f"n_clean_{part}": len(rows) for part, rows in clean_jobs.items()} | {"reused": False}
    summary["wall_s"] = round(time.perf_counter() - t_start, 2)
    summary["cpu_s"] = round(time.process_time() - cpu_start + _children_cpu_s() - children_start, 2)
    # the summary file leaves out what varies between identical runs (folder, times)
    write_json_atomic(
        root / "latent" / "summary.json",
        {k: v for k, v in summary.items() if k not in ("root", "wall_s", "cpu_s", "reused")},
    )
    return summary


def _config_record(cfg: MiniCPC1Config) -> dict:
    """What determines the files: the configuration (not num_workers) and the generator version."""
    record = {k: v for k, v in dataclasses.asdict(cfg).items() if k != "num_workers"}
    return json.loads(json.dumps({"generator_version": GENERATOR_VERSION, **record}))


def _is_complete(root: Path, cfg: MiniCPC1Config) -> bool:
    """True if ``root`` holds a finished generation of ``cfg`` with every listed file present."""
    latent = root / "latent"
    if not (latent / "summary.json").is_file() or not (latent / "config.json").is_file():
        return False
    if read_json(latent / "config.json") != _config_record(cfg):
        return False
    try:
        lists = {
            "train": read_json(root / "clarity_CPC1_data_train" / "metadata" / "CPC1.train.json"),
            "train_indep": read_json(root / "clarity_CPC1_data_train" / "metadata" / "CPC1.train_indep.json"),
            "test": read_json(root / "test_listener_responses" / "CPC1.test.json"),
            "test_indep": read_json(root / "test_listener_responses" / "CPC1.test_indep.json"),
        }
        clean = [
            [row.wav for row in read_manifest(root / "clean_corpus" / f"clean_{part}.csv")]
            for part in ("train", "valid")
        ]
    except (FileNotFoundError, ValueError, KeyError):
        return False
    for name, records in lists.items():
        data = root / f"clarity_CPC1_data_{name.split('_')[0]}" / "clarity_data"
        for r in records:
            if not (data / "HA_outputs" / name / f"{r['signal']}.wav").is_file():
                return False
            if not (data / "scenes" / f"{r['scene']}_target_anechoic.wav").is_file():
                return False
    return all(wav.is_file() for part in clean for wav in part)


def _children_cpu_s() -> float:
    """CPU seconds of finished child processes (workers and TTS engines)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _map(func, items: list, n_workers: int) -> list:
    """``[func(item) for item in items]`` on ``n_workers`` processes (msbg's pool runner)."""
    return run_pool(func, items, n_workers, chunksize=max(1, len(items) // (4 * max(n_workers, 1))))


def _clean_jobs(cfg: MiniCPC1Config, parts, clean_root: Path) -> dict[str, list[tuple[str, str, str, str]]]:
    """Utterance jobs (id, sentence, voice, wav path) of clean_train and clean_valid."""
    voices = [v.name for v in VOICES]
    jobs: dict[str, list[tuple[str, str, str, str]]] = {}
    for part, sentences, offset in (("train", parts.clean_train, 0), ("valid", parts.clean_valid, 3)):
        rows = []
        for i, sentence in enumerate(sentences):
            for k in range(cfg.clean_voices_per_sentence):
                voice = voices[(i * cfg.clean_voices_per_sentence + k + offset) % len(voices)]
                utt_id = f"{part}_{i:05d}_{voice}"
                rows.append((utt_id, sentence, voice, str(clean_root / "wav" / part / f"{utt_id}.wav")))
        jobs[part] = rows
    return jobs


def _write_clean_csvs(clean_root: Path, clean_jobs: dict, durations: dict[str, float]) -> None:
    for part, rows in clean_jobs.items():
        write_csv_atomic(
            clean_root / f"clean_{part}.csv",
            ["ID", "duration", "wav", "spk_id", "wrd"],
            [
                [
                    utt_id,
                    f"{durations[utt_id]:.4f}",
                    f"$data_root/wav/{part}/{utt_id}.wav",
                    voice,
                    sentence.upper(),
                ]
                for utt_id, sentence, voice, _ in rows
            ],
        )


def _warn_unlisted(root: Path, lists: dict[str, list[dict]]) -> None:
    """Warn about HA outputs left in ``root`` by an earlier, different generation."""
    for name, records in lists.items():
        folder = root / f"clarity_CPC1_data_{name.split('_')[0]}" / "clarity_data" / "HA_outputs" / name
        stale = {p.stem for p in folder.glob("*.wav")} - {r["signal"] for r in records}
        if stale:
            warnings.warn(
                f"{folder} holds {len(stale)} WAV file(s) not in CPC1.{name}.json (left by an earlier run "
                "with other settings?); the recipe ignores them, but a clean --root is tidier",
                stacklevel=3,
            )


def _write_metadata(cfg, root, jobs, listeners, heldout, results, renders) -> dict:
    """Write every JSON file; return the summary."""
    by_signal = {r["record"]["signal"]: r for r in results}
    train_archive, test_archive = root / "clarity_CPC1_data_train", root / "clarity_CPC1_data_test"
    lists: dict[str, list[dict]] = {"train": [], "train_indep": [], "test": [], "test_indep": []}
    for signal in sorted(by_signal):
        for folder in by_signal[signal]["latent"]["folders"]:
            lists[folder].append(by_signal[signal]["record"])
    listener_records = {lis.name: lis.to_record() for lis in listeners}
    write_json_atomic(
        train_archive / "metadata" / "CPC1.train.json", [_ordered(r) for r in lists["train"]], indent=4
    )
    write_json_atomic(
        train_archive / "metadata" / "CPC1.train_indep.json",
        [_ordered(r) for r in lists["train_indep"]],
        indent=4,
    )
    write_json_atomic(train_archive / "metadata" / "listeners.CPC1_train.json", listener_records)
    write_json_atomic(
        train_archive / "metadata" / "scenes.CPC1_train.json",
        [
            _scene_record(j.spec, "train", len(renders[(j.spec.sentence, j.spec.voice)]))
            for j in jobs
            if j.archive == train_archive
        ],
    )
    write_json_atomic(test_archive / "metadata" / "listeners.CPC1_all.json", listener_records)
    for name in ("test", "test_indep"):
        write_json_atomic(
            test_archive / "metadata" / f"CPC1.{name}.json",
            [_ordered(r, True) for r in lists[name]],
            indent=4,
        )
        write_json_atomic(
            root / "test_listener_responses" / f"CPC1.{name}.json",
            [_ordered(r) for r in lists[name]],
            indent=4,
        )
    _warn_unlisted(root, lists)
    latent = [
        by_signal[s]["latent"] | {"correctness": by_signal[s]["record"]["correctness"]}
        for s in sorted(by_signal)
    ]
    write_json_atomic(root / "latent" / "signals.json", latent)
    write_json_atomic(
        root / "latent" / "listeners.json",
        [dataclasses.asdict(lis) | {"heldout": lis.name in heldout} for lis in listeners],
    )
    write_json_atomic(root / "latent" / "config.json", _config_record(cfg))
    ceiling = {}
    for name, records in lists.items():
        p = [100 * by_signal[r["signal"]]["latent"]["p"] for r in records]
        ceiling[name] = _ncc(p, [r["correctness"] for r in records])
    write_json_atomic(
        root / "latent" / "ceiling.json",
        {
            "definition": "Pearson correlation between 100*p (listener-model probability) and correctness",
            **ceiling,
        },
    )
    return {
        "root": str(root),
        **{f"n_{k}": len(v) for k, v in lists.items()},
        "n_listeners": len(listeners),
        "n_scenes": len(jobs),
        "ceiling_test": ceiling["test"],
        "ceiling_test_indep": ceiling["test_indep"],
        "mean_correctness_test": float(np.mean([r["correctness"] for r in lists["test"]]))
        if lists["test"]
        else None,
    }
