"""Build the stand-in's corpus: TTS of WordNet sentences, part clean, part degraded, SpeechBrain CSVs.

Layout under ``<out>``::

    wav/<part>/<utt_id>.wav         16 kHz 16-bit mono
    train.csv, valid.csv            ID, duration, wav ($data_root/...), spk_id (voice), wrd, condition
    card_<condition>.csv            the model card's test sets: held-out sentences x held-out voices
    corpus.json                     sizes, seed, sentence counts, per-condition settings

Every utterance has its own random generator, seeded from (``seed``, part, index), so the corpus does
not depend on the number of workers; a re-run skips the WAVs already written (atomically) and gives
byte-identical files.
"""

from __future__ import annotations

import hashlib
import logging
import warnings
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt
import soundfile as sf

from e032.io import atomic_path, write_csv_atomic, write_json_atomic
from e032.minicpc1.tts import speak
from e032.resample import resample
from msbg.parallel import default_num_workers, pin_threads

from . import degrade
from .texts import split_sentences, wordnet_sentences
from .voices import VoiceSetting, draw_voice

logger = logging.getLogger(__name__)

SAMPLE_RATE: Final[int] = 16000  # Hz, the ASR's rate
RESAMPLER: Final[str] = "soxr_hq"  # e032.resample's fast resampler (the corpus has no 2022 run to follow)
CLEAN_LEVEL_DBFS: Final[float] = -25.0  # RMS of a clean utterance (as the mini-CPC1 clean corpus)
DEGRADED_FRACTION: Final[float] = 0.35  # share of train/valid utterances that go through degrade()
N_BABBLE_POOL: Final[int] = 48  # utterances (valid sentences, training voices) that babble is made of
CARD_SPEECH_LEVEL_DB_SPL: Final[float] = 80.0  # speech level of the card's MSBG conditions
#: the model card's conditions: (name, noise kind or None, SNR dB, named audiogram or None)
CARD_CONDITIONS: Final[tuple[tuple[str, str | None, float, str | None], ...]] = (
    ("clean", None, 0.0, None),
    ("ssn_10", "speech_shaped", 10.0, None),
    ("ssn_5", "speech_shaped", 5.0, None),
    ("ssn_0", "speech_shaped", 0.0, None),
    ("babble_10", "babble", 10.0, None),
    ("babble_5", "babble", 5.0, None),
    ("msbg_mild", None, 0.0, "mild"),
    ("msbg_moderate", None, 0.0, "moderate"),
    ("msbg_severe", None, 0.0, "severe"),
)
PART_CODES: Final[dict[str, int]] = {"train": 0, "valid": 1, "card": 2, "babble": 3}
CSV_HEADER: Final[list[str]] = ["ID", "duration", "wav", "spk_id", "wrd", "condition"]


@dataclass(frozen=True)
class CorpusConfig:
    """Sizes and seed of a corpus (``n_train`` / ``n_valid``: utterances; ``n_card``: per condition)."""

    n_train: int = 16000
    n_valid: int = 300
    n_card: int = 100
    seed: int = 0
    num_workers: int = 0


@dataclass(frozen=True)
class Job:
    """One utterance to make: ``condition`` is ``clean``, ``degraded`` or a card condition name."""

    part: str
    index: int
    sentence: str
    condition: str
    seed: int
    wav: Path

    @property
    def utt_id(self) -> str:
        return f"{self.part}_{self.index:05d}" + (
            "" if self.part in ("train", "valid") else f"_{self.condition}"
        )


def _rng(seed: int, part: str, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, PART_CODES[part], index])


def _tts_44k(sentence: str, voice: VoiceSetting) -> npt.NDArray[np.float64]:
    signal, rate = speak(sentence, voice.to_voice())
    return resample(signal, rate, degrade.SAMPLE_RATE, RESAMPLER)


_BABBLE_POOL: list[npt.NDArray[np.float64]] = []
_EAR = None


def _init_worker(babble_sentences: list[str], seed: int) -> None:
    """Pin threads; build the babble pool (same in every worker) and one MSBG ear."""
    global _EAR
    pin_threads(1)
    # the card's "severe" audiogram reaches 90 dB HL on purpose; MSBG warns about it for every ear
    warnings.filterwarnings("ignore", message="audiogram reaches", category=UserWarning)
    from msbg import Ear

    _EAR = Ear()  # the defaults are E032's MSBGEar (ff, 100 dB SPL, ahr 20)
    _BABBLE_POOL[:] = [
        _tts_44k(s, draw_voice(_rng(seed, "babble", i))) for i, s in enumerate(babble_sentences)
    ]


def _normalise(signal: npt.NDArray[np.float64], level_dbfs: float) -> npt.NDArray[np.float64]:
    return signal * degrade.db_to_gain(level_dbfs) / max(degrade.rms(signal), 1e-20)


def _voice(job: Job, rng: np.random.Generator) -> VoiceSetting:
    """The job's talker: the first draw from its generator (held-out timbres for the card)."""
    return draw_voice(rng, heldout=job.part == "card")


def render(job: Job) -> tuple[npt.NDArray[np.float64], str, dict]:
    """(16 kHz signal, voice name, settings) of a job; all randomness from the job's seed."""
    rng = _rng(job.seed, job.part, job.index)
    voice = _voice(job, rng)
    speech = _tts_44k(job.sentence, voice)
    if job.condition == "clean":
        return (
            _normalise(resample(speech, degrade.SAMPLE_RATE, SAMPLE_RATE, RESAMPLER), CLEAN_LEVEL_DBFS),
            voice.name,
            {},
        )
    if job.condition == "degraded":
        signal, settings = degrade.degrade(speech, _BABBLE_POOL, rng, _EAR)
        return resample(signal, degrade.SAMPLE_RATE, SAMPLE_RATE, RESAMPLER), voice.name, settings
    _, noise, snr_db, audiogram = next(c for c in CARD_CONDITIONS if c[0] == job.condition)
    if audiogram is not None:
        speech = _normalise(speech, CARD_SPEECH_LEVEL_DB_SPL - degrade.FULL_SCALE_DB_SPL)
        signal = degrade.simulate_ear(
            degrade.mix(speech, "none", 0.0, [], rng), degrade.NAMED_AUDIOGRAMS[audiogram], _EAR
        )
    else:
        signal = degrade.mix(speech, noise or "none", snr_db, _BABBLE_POOL, rng)
        signal = _normalise(signal, CLEAN_LEVEL_DBFS)
    return (
        resample(signal, degrade.SAMPLE_RATE, SAMPLE_RATE, RESAMPLER),
        voice.name,
        {"condition": job.condition},
    )


def run_job(job: Job) -> tuple[str, float, str]:
    """Write the job's WAV (unless present) and return (utt_id, duration s, voice name)."""
    if job.wav.is_file():
        info = sf.info(job.wav)
        return (
            job.utt_id,
            info.frames / info.samplerate,
            _voice(job, _rng(job.seed, job.part, job.index)).name,
        )
    signal, voice, settings = render(job)
    if not np.all(np.isfinite(signal)):
        raise ValueError(f"{job.utt_id}: the rendered signal is not finite (settings {settings})")
    peak = np.max(np.abs(signal))
    if peak >= 1.0:  # 16-bit WAV: keep the shape, lose a little level (rare: loud degraded chains)
        signal = signal * (0.99 / peak)
    job.wav.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(job.wav) as tmp:
        sf.write(tmp, signal, SAMPLE_RATE, subtype="PCM_16", format="WAV")
    return job.utt_id, len(signal) / SAMPLE_RATE, voice


def plan(cfg: CorpusConfig, out: Path) -> tuple[dict[str, list[Job]], list[str], dict[str, int]]:
    """Jobs per CSV name, the babble sentences, and the sentence counts."""
    parts = split_sentences(
        wordnet_sentences(), n_test=cfg.n_card, n_valid=cfg.n_valid + N_BABBLE_POOL, seed=cfg.seed
    )
    babble_sentences = parts["valid"][cfg.n_valid :]
    jobs: dict[str, list[Job]] = {}
    for part, n in (("train", cfg.n_train), ("valid", cfg.n_valid)):
        sentences = parts[part] if part == "valid" else parts["train"]
        rows = []
        for i in range(n):
            condition = "degraded" if _rng(cfg.seed, part, i).random() < DEGRADED_FRACTION else "clean"
            rows.append(Job(part, i, sentences[i % len(sentences)], condition, cfg.seed, Path()))
        jobs[part] = [_with_wav(j, out) for j in rows]
    for name, *_ in CARD_CONDITIONS:
        jobs[f"card_{name}"] = [
            _with_wav(Job("card", i, s, name, cfg.seed, Path()), out) for i, s in enumerate(parts["test"])
        ]
    counts = {
        "train_sentences": len(parts["train"]),
        "valid_sentences": cfg.n_valid,
        "heldout_sentences": len(parts["test"]),
        "babble_sentences": len(babble_sentences),
    }
    return jobs, babble_sentences, counts


def _with_wav(job: Job, out: Path) -> Job:
    folder = job.part if job.part != "card" else f"card/{job.condition}"
    return Job(
        job.part, job.index, job.sentence, job.condition, job.seed, out / "wav" / folder / f"{job.utt_id}.wav"
    )


def _run_all(
    jobs: list[Job], babble_sentences: list[str], seed: int, n_workers: int
) -> Iterator[tuple[str, float, str]]:
    if n_workers <= 1:
        _init_worker(babble_sentences, seed)
        yield from map(run_job, jobs)
        return
    with ProcessPoolExecutor(
        n_workers,
        mp_context=get_context("spawn"),
        initializer=_init_worker,
        initargs=(babble_sentences, seed),
    ) as pool:
        yield from pool.map(run_job, jobs, chunksize=max(1, min(64, len(jobs) // (8 * n_workers))))


def build(cfg: CorpusConfig, out: Path) -> dict:
    """Make (or complete) the corpus under ``out``; return the ``corpus.json`` summary."""
    out = Path(out)
    for stale in out.glob("wav/**/.*.tmp*"):  # left by a killed run (atomic writes: never a partial WAV)
        stale.unlink()
    jobs, babble_sentences, counts = plan(cfg, out)
    all_jobs = [j for rows in jobs.values() for j in rows]
    n_workers = default_num_workers(cfg.num_workers)
    logger.info("stand-in corpus: %d utterances in %s, %d workers", len(all_jobs), out, n_workers)
    results = {}
    for k, (utt_id, duration, voice) in enumerate(_run_all(all_jobs, babble_sentences, cfg.seed, n_workers)):
        results[utt_id] = (duration, voice)
        if (k + 1) % 1000 == 0:
            logger.info("%d / %d utterances", k + 1, len(all_jobs))
    for name, rows in jobs.items():
        write_csv_atomic(
            out / f"{name}.csv",
            CSV_HEADER,
            [
                [
                    j.utt_id,
                    f"{results[j.utt_id][0]:.4f}",
                    "$data_root/" + j.wav.relative_to(out).as_posix(),
                    results[j.utt_id][1],
                    j.sentence.upper(),
                    j.condition,
                ]
                for j in rows
            ],
        )
    hours = sum(d for d, _ in results.values()) / 3600
    summary = {
        "config": cfg.__dict__,
        **counts,
        "hours": round(hours, 3),
        "n_utterances": len(results),
        "degraded_fraction": DEGRADED_FRACTION,
        "card_conditions": [c[0] for c in CARD_CONDITIONS],
        "csv_sha256": {name: _sha256(out / f"{name}.csv") for name in jobs},
    }
    write_json_atomic(out / "corpus.json", summary)
    return summary


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
