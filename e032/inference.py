"""Stage 3 of E032: encoder and decoder similarities of processed vs clean speech, per signal.

For every dev and test signal, the four mono 16 kHz files (MSBG-processed left/right, clean
reference left/right) are read through the four CSVs of ``<exp>/cpc1_asr_data<track>/`` (joined on
the ``ID`` column, never by editing paths), passed through the fine-tuned ASR (:mod:`e032.asr`) and
compared (:mod:`e032.similarity`). Outputs (signal ID -> raw similarity) go to
``<exp>/{dev,test}_{enc,dec}_similarity<track suffix>.json``; ``infer.py`` is the script.

Speed-ups over the original, none of which changes a number beyond float rounding (< 1e-5 on the
representations, exact decisions):

* the references of a scene are computed once for all its signals;
* batches of whole scenes (``infer_batch_size`` utterances, longest first) go through one exact
  batched beam search (:meth:`e032.asr.model.ASRModel.search_many`); each pair of ears is encoded
  as one batch when the lengths agree;
* the files of the next batch are read and encoded by a background thread while the current one is
  searched, and the similarities of the previous one are computed by another;
* results are flushed atomically every ``flush_every`` signals and a re-run skips the signals done.

Batches are planned from all signals of a part (done or not) and a batch with work left is
recomputed whole, so the numbers of a signal do not depend on what an interrupted run had finished:
a killed and resumed run writes the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import numpy as np
import soundfile as sf
import torch
from omegaconf import DictConfig, OmegaConf

from e032 import manifests
from e032.asr.model import SAMPLE_RATE, ASRModel, Representation, load_asr
from e032.io import read_json, read_wav, write_json_atomic
from e032.manifests import MIN_ASR_INPUT_S
from e032.records import StageRecord, Unit, check_or_write_stamp, settings_digest
from e032.similarity import decoder_similarity, encoder_similarity
from e032.tracks import TrackPaths
from msbg.parallel import TextProgress

logger = logging.getLogger(__name__)

REPO_ROOT: Final = Path(__file__).resolve().parents[1]
PARTS: Final = ("dev", "test")
EAR_KINDS: Final = (("left", "msbg"), ("right", "msbg"), ("left", "ref"), ("right", "ref"))
# ASR yaml keys that change the similarities (ctc_scorer, decoder_cache and the batch size change
# only the speed, and the numbers by float rounding)
SEARCH_SETTINGS: Final = (
    "test_beam_size",
    "ctc_weight_decode",
    "min_decode_ratio",
    "max_decode_ratio",
    "temperature",
)
# infer_batch_size=auto: utterances per search on a CPU (benchmarks/asr_infer_speed.py: the
# demo-size model's signals/s grows little beyond it on 2 cores; docs/asr_infer.md, "Measured")
CPU_AUTO_BATCH_SIZE: Final = 16
# on CUDA: the share of the device memory the search may plan for, and the largest batch
CUDA_MEMORY_SHARE: Final = 0.5
CUDA_MAX_AUTO_BATCH_SIZE: Final = 256
FRAME_SAMPLES: Final = 640  # 16 kHz samples per encoder frame (10-ms hop, CNN stride 4: 40 ms)
BatchSize = int | Literal["auto"]


@dataclass(frozen=True)
class SignalFiles:
    """The four 16 kHz files of one signal."""

    signal: str
    left_proc: Path
    right_proc: Path
    left_ref: Path
    right_ref: Path

    @property
    def files(self) -> tuple[Path, Path, Path, Path]:
        """The four files (the inputs of the signal's record unit)."""
        return self.left_proc, self.right_proc, self.left_ref, self.right_ref

    @property
    def reference_key(self) -> tuple[str, str]:
        """Signals sharing this key share their reference representations (one scene)."""
        return str(self.left_ref), str(self.right_ref)


# ============================================================================ signal lists
def read_manifest(path: Path, data_root: Path) -> dict[str, Path]:
    """``ID -> wav`` of a SpeechBrain CSV (``$data_root`` = ``data_root``), in file order.

    Raises
    ------
    FileNotFoundError
        If the CSV is missing.
    ValueError
        If a column is missing or an ID repeats.
    """
    if not path.is_file():
        raise FileNotFoundError(f"ASR data CSV not found: {path} (run prepare_data.py first)")
    return {row.id: row.wav for row in manifests.read_manifest(path, data_root, what="ASR data CSV")}


def signal_table(paths: TrackPaths, part: str) -> list[SignalFiles]:
    """Join the four CSVs of ``part`` on ``ID`` (order of the left MSBG CSV) and check every file.

    Raises
    ------
    ValueError
        If the CSVs do not list the same IDs, or a listed file lies outside this experiment's
        ASR data folder (CSVs of a copied or moved experiment folder), is not 16 kHz mono or is
        too short for the ASR.
    FileNotFoundError
        Naming the first listed file that does not exist and the CSV listing it.
    """
    tables = {
        (ear, kind): read_manifest(paths.asr_csv(ear, part, kind), paths.asr_data_dir)
        for ear, kind in EAR_KINDS
    }
    ids = list(tables[("left", "msbg")])
    for (ear, kind), table in tables.items():
        if set(table) != set(ids):
            diff = sorted(set(ids) ^ set(table))[:3]
            raise ValueError(
                f"{paths.asr_csv(ear, part, kind)} and {paths.asr_csv('left', part, 'msbg')} "
                f"list different signals (e.g. {diff})"
            )
    for (ear, kind), table in tables.items():
        for wav in dict.fromkeys(table.values()):
            check_listed_wav(wav, paths.asr_csv(ear, part, kind), paths.asr_data_dir)
    return [
        SignalFiles(
            s,
            tables[("left", "msbg")][s],
            tables[("right", "msbg")][s],
            tables[("left", "ref")][s],
            tables[("right", "ref")][s],
        )
        for s in ids
    ]


def check_listed_wav(wav: Path, csv_path: Path, data_dir: Path) -> None:
    """Check one file a CSV lists: inside ``data_dir``, present, 16 kHz mono, long enough.

    Raises
    ------
    FileNotFoundError, ValueError
        Naming the file, the CSV and what to do.
    """
    if data_dir.resolve() not in wav.resolve().parents:
        raise ValueError(
            f"{wav} listed in {csv_path} is outside this experiment's {data_dir} (CSVs "
            "of a copied or moved experiment folder?): run prepare_data.py with this "
            "path.exp_folder to rewrite the CSVs (finished files are kept)"
        )
    if not wav.is_file():
        raise FileNotFoundError(f"{wav} listed in {csv_path} does not exist")
    info = sf.info(str(wav))
    if (info.samplerate, info.channels) != (SAMPLE_RATE, 1):
        raise ValueError(
            f"{wav} listed in {csv_path}: {info.channels} channel(s) at {info.samplerate} Hz, "
            f"expected mono at {SAMPLE_RATE} Hz"
        )
    if info.frames < MIN_ASR_INPUT_S * SAMPLE_RATE:
        raise ValueError(
            f"{wav} listed in {csv_path} is {info.frames / SAMPLE_RATE:.3f} s long; the ASR "
            f"needs at least {MIN_ASR_INPUT_S} s (is its HA output shorter than trim_s?)"
        )


def read_mono(path: Path) -> np.ndarray:
    """A mono 16 kHz file as float32 ``[n_samples]`` (the original's ``read_audio``)."""
    return read_wav(path, sample_rate=SAMPLE_RATE, n_channels=1)[:, 0].astype(np.float32)


# ============================================================================ batches
Scene = list[SignalFiles]  # signals sharing their reference files, in signal order
Batch = list[Scene]


def plan_batches(signals: Sequence[SignalFiles], batch_size: int) -> list[Batch]:
    """Scenes of ``signals``, longest first, packed into batches of about ``batch_size`` utterances.

    A scene brings its two references and two ears per signal. Scenes are never split (their
    references are computed once); a scene larger than ``batch_size`` forms a batch of its own (its
    searches still run ``batch_size`` utterances at a time). Ties keep the signal order.

    Parameters
    ----------
    signals : sequence of SignalFiles
        All signals of a part (done or not: the plan must not depend on what is done).
    batch_size : int
        Utterances per beam search, >= 1.

    Returns
    -------
    list of Batch
        Each batch a list of scenes, each scene a list of signals.
    """
    scenes: dict[tuple[str, str], Scene] = {}
    for item in signals:
        scenes.setdefault(item.reference_key, []).append(item)
    length = {key: sf.info(str(scene[0].left_ref)).frames for key, scene in scenes.items()}
    batches: list[Batch] = []
    used = batch_size  # utterances in the last batch (start a new one first)
    for key in sorted(scenes, key=lambda k: -length[k]):
        size = 2 + 2 * len(scenes[key])
        if used + size > batch_size:
            batches.append([])
            used = 0
        batches[-1].append(scenes[key])
        used += size
    return batches


def batch_pairs(batch: Batch) -> list[tuple[Path, Path]]:
    """The ear pairs of a batch: per scene its references, then each signal's processed ears."""
    pairs = []
    for scene in batch:
        pairs.append((scene[0].left_ref, scene[0].right_ref))
        pairs.extend((item.left_proc, item.right_proc) for item in scene)
    return pairs


def encode_batch_files(asr: ASRModel, batch: Batch) -> dict[Path, torch.Tensor]:
    """Encoder outputs ``[T, d_model]`` of every file of a batch (the background thread's work).

    Each ear pair is read and encoded as one batch (equal lengths) or one file at a time, as the
    pair alone would be, so the numbers do not depend on the rest of the batch.
    """
    encs: dict[Path, torch.Tensor] = {}
    for left, right in dict.fromkeys(batch_pairs(batch)):
        for path, enc in zip(
            (left, right), asr.encode_batch([read_mono(left), read_mono(right)]), strict=True
        ):
            encs.setdefault(path, enc)
    return encs


class BatchRepresentations:
    """Representations of every file of a batch, computed by exact batched searches.

    Parameters
    ----------
    asr : ASRModel
        The ASR.
    encs : dict
        ``path -> [T, d_model]`` encoder outputs (:func:`encode_batch_files`), in a fixed order: it
        decides the searches' batches, hence their float rounding.
    batch_size : int
        Utterances per beam search (longest first).
    """

    def __init__(self, asr: ASRModel, encs: dict[Path, torch.Tensor], batch_size: int):
        files = list(encs)
        reps = asr.represent_encoded([encs[p] for p in files], batch_size=batch_size)
        self.representations: dict[Path, Representation] = dict(zip(files, reps, strict=True))

    def pair(self, left: Path, right: Path) -> list[Representation]:
        """The representations of ``left`` and ``right``."""
        return [self.representations[left], self.representations[right]]


def pair_representations(source: BatchRepresentations, left: Path, right: Path) -> list[Representation]:
    """Representations of a left/right pair, from its batch."""
    return source.pair(left, right)


def resolve_batch_size(batch_size: BatchSize, asr: ASRModel, signals: Sequence[SignalFiles]) -> int:
    """``batch_size`` as an integer: ``auto`` = :data:`CPU_AUTO_BATCH_SIZE` on CPU, else by memory.

    On CUDA, ``auto`` divides :data:`CUDA_MEMORY_SHARE` of the device's total memory (not the free
    memory, so that the plan, hence the rounding, is the same on every run) by the estimated search
    memory of the longest reference of ``signals`` (:func:`search_bytes_per_utterance`).

    Raises
    ------
    ValueError
        If ``batch_size`` is neither ``auto`` nor a positive integer.
    """
    if str(batch_size) != "auto":
        if isinstance(batch_size, bool) or not str(batch_size).isdigit() or int(batch_size) < 1:
            raise ValueError(f"infer_batch_size must be 'auto' or an integer >= 1, got {batch_size!r}")
        return int(batch_size)
    if asr.device.type != "cuda":
        return CPU_AUTO_BATCH_SIZE
    longest = max((sf.info(str(s.left_ref)).frames for s in signals), default=SAMPLE_RATE)
    per_utterance = search_bytes_per_utterance(asr, longest // FRAME_SAMPLES + 1)
    total = torch.cuda.get_device_properties(asr.device).total_memory
    return int(min(max(CUDA_MEMORY_SHARE * total // per_utterance, 1), CUDA_MAX_AUTO_BATCH_SIZE))


def search_bytes_per_utterance(asr: ASRModel, n_frames: int) -> int:
    """Estimated peak memory (bytes) of one utterance of ``n_frames`` encoder frames in the search.

    Counts the largest tensors, twice where a step concatenates into a new one: the decoder caches
    ``[layers, 2, beam, steps, d_model]`` float32 and its outputs along the prefix (without the
    cache: the re-decoded prefixes' feed-forward activations and the encoder output per beam), and
    the CTC scorer's posteriors (fast: ``[frames, vocab]`` float64 and per-step ``[beam, vocab]``
    float64 sums; reference: ``[frames, 2, beam, vocab]`` float32 forward variables per step).
    """
    hp = asr.hparams
    beam, d_model, vocab = asr.searcher.beam_size, int(hp["d_model"]), int(hp["output_neurons"])
    steps = max(1, int(n_frames * asr.searcher.max_decode_ratio))
    scorer, cache = asr.searcher.arithmetic(asr.device)
    decoder = 2 * (2 * int(hp["num_decoder_layers"]) + 1) * beam * steps * d_model * 4
    if not cache:
        decoder += 2 * beam * steps * int(hp["d_ffn"]) * 4 + beam * n_frames * d_model * 4
    ctc = 2 * n_frames * vocab * 8 + 6 * beam * vocab * 8
    if scorer == "reference":
        ctc += 3 * n_frames * 2 * beam * vocab * 4
    return decoder + ctc


# ============================================================================ one part
def load_done(json_paths: Sequence[Path]) -> dict[str, list[float]]:
    """Signals already present in every output JSON (a killed run may have flushed only some)."""
    tables = [read_json(p, "similarity file") if p.is_file() else {} for p in json_paths]
    done = set(tables[0]).intersection(*map(set, tables[1:]))
    return {s: [t[s] for t in tables] for s in done}


def compute_part(
    asr: ASRModel,
    signals: Sequence[SignalFiles],
    enc_json: Path,
    dec_json: Path,
    flush_every: int = 20,
    dtw: str = "fastdtw",
    progress: bool = False,
    on_signal: Callable[[str], None] | None = None,
    record: StageRecord | None = None,
    batch_size: BatchSize = "auto",
) -> dict[str, tuple[float, float]]:
    """Similarities of all ``signals``, resuming from and flushing to ``enc_json`` / ``dec_json``.

    Signals are processed in batches of whole scenes (:func:`plan_batches`), so each scene's
    reference representations are computed once; the next batch is read and encoded, and the
    previous batch's similarities computed, in background threads while a batch is searched. The
    JSON files list the signals in ``signals`` order. With a ``record``, a signal is done only if
    its four files, the ASR checkpoint files and the settings are those its similarities were
    computed from (else it is recomputed); the record is flushed with the JSONs.

    Returns
    -------
    dict
        ``signal -> (enc_similarity, dec_similarity)``.

    Raises
    ------
    ValueError
        If ``flush_every`` < 1 or ``batch_size`` is invalid.
    """
    if flush_every < 1:
        raise ValueError(f"flush_every must be >= 1, got {flush_every}")
    results = {s: (v[0], v[1]) for s, v in load_done([enc_json, dec_json]).items()}
    checkpoint = tuple(asr.checkpoint.files) if asr.checkpoint is not None else ()
    params = {"settings": settings_digest(similarity_settings(asr, dtw))}
    units = {s.signal: Unit(s.signal, s.files + checkpoint, params, ()) for s in signals}
    stale = {u.key for u in record.stale(units.values())} if record is not None else set()
    todo = {s.signal for s in signals if s.signal not in results or s.signal in stale}
    logger.info("%s: %d signals, %d already done", enc_json.name, len(signals), len(signals) - len(todo))
    size = resolve_batch_size(batch_size, asr, signals)
    batches = [b for b in plan_batches(signals, size) if any(s.signal in todo for sc in b for s in sc)]

    def flush() -> None:
        ordered = [s.signal for s in signals if s.signal in results]
        write_json_atomic(enc_json, {s: results[s][0] for s in ordered})
        write_json_atomic(dec_json, {s: results[s][1] for s in ordered})
        if record is not None:
            record.flush()

    report = TextProgress(enc_json.stem, unit="signals") if progress else (lambda done, total: None)
    report(0, len(todo))
    n_stored = 0
    since_flush = 0

    def store(done: list[tuple[SignalFiles, tuple[float, float]]]) -> None:
        nonlocal since_flush, n_stored
        for item, sims in done:
            results[item.signal] = sims
            if record is not None:
                record.done(units[item.signal])
            if on_signal is not None:
                on_signal(item.signal)
            since_flush += 1
            n_stored += 1
            report(n_stored, len(todo))
            if since_flush >= flush_every:
                flush()
                since_flush = 0

    # the similarities of a batch (pure-Python DTW) are computed while the next batch is searched
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="infer-similarity") as worker:
        pending: Future | None = None
        for batch, reps in represent_batches(asr, batches, size):
            current = worker.submit(batch_similarities, reps, batch, todo, dtw)
            if pending is not None:
                store(pending.result())
            pending = current
        if pending is not None:
            store(pending.result())
    flush()
    return {s.signal: results[s.signal] for s in signals}


def batch_similarities(
    reps: BatchRepresentations, batch: Batch, todo: set[str], dtw: str
) -> list[tuple[SignalFiles, tuple[float, float]]]:
    """``(signal, (enc, dec) similarities)`` of the signals of ``batch`` in ``todo``, in order."""
    done = []
    for scene in batch:
        items = [item for item in scene if item.signal in todo]
        if items:
            ref_l, ref_r = pair_representations(reps, scene[0].left_ref, scene[0].right_ref)
            done += [(item, signal_similarities(reps, item, ref_l, ref_r, dtw)) for item in items]
    return done


def represent_batches(asr: ASRModel, batches: Sequence[Batch], batch_size: int):
    """Yield ``(batch, BatchRepresentations)``; a background thread reads and encodes the next one.

    Raises
    ------
    Exception
        Any error of a batch, with a note naming its signals.
    """
    if not batches:
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="infer-read") as reader:
        pending: Future = reader.submit(encode_batch_files, asr, batches[0])
        for index, batch in enumerate(batches):
            try:
                encs = pending.result()
                if index + 1 < len(batches):
                    pending = reader.submit(encode_batch_files, asr, batches[index + 1])
                reps = BatchRepresentations(asr, encs, batch_size)
            except Exception as err:
                names = [item.signal for scene in batch for item in scene]
                err.add_note(f"while computing the representations of the batch of signals {names}")
                raise
            yield batch, reps


def signal_similarities(
    source: BatchRepresentations,
    item: SignalFiles,
    ref_l: Representation,
    ref_r: Representation,
    dtw: str,
) -> tuple[float, float]:
    """Encoder and decoder similarity of one signal, given its scene's reference representations."""
    try:
        proc_l, proc_r = pair_representations(source, item.left_proc, item.right_proc)
        enc = encoder_similarity(proc_l.enc, proc_r.enc, ref_l.enc, ref_r.enc)
        dec = decoder_similarity(proc_l.dec, proc_r.dec, ref_l.dec, ref_r.dec, method=dtw)
    except Exception as err:
        err.add_note(
            f"while computing the similarities of signal {item.signal} from {item.left_proc}, "
            f"{item.right_proc}, {item.left_ref}, {item.right_ref}"
        )
        raise
    logger.debug("%s: enc %.6f dec %.6f", item.signal, enc, dec)
    return enc, dec


def similarity_settings(asr: ASRModel, dtw: str) -> dict:
    """The settings that change the similarities (not the device, nor the speed-only variants)."""
    return {
        "dtw": dtw,
        "decoder_representation": asr.decoder_representation,
        **{key: asr.hparams[key] for key in SEARCH_SETTINGS},
    }


# ============================================================================ configuration
def asr_from_config(cfg: DictConfig, paths: TrackPaths) -> ASRModel:
    """Load the ASR the config names (folder, yaml, overrides, device, decoder representation)."""
    folder = Path(str(cfg.asr_output_folder)).expanduser() if cfg.asr_output_folder else paths.asr_dir
    overrides: dict = {}
    if cfg.asr_overrides_file:
        overrides.update(read_yaml_overrides(repo_path(cfg.asr_overrides_file)))
    if cfg.asr_overrides:  # an empty mapping is falsy: nothing to add
        overrides.update(OmegaConf.to_container(cfg.asr_overrides, resolve=True))
    return load_asr(
        folder,
        yaml_path=repo_path(cfg.asr_config),
        overrides=overrides,
        device=cfg.device,
        decoder_representation=cfg.decoder_representation,
    )


def repo_path(name: str) -> Path:
    """``name`` as given if absolute, else relative to the repository (not the current folder)."""
    path = Path(str(name)).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def read_yaml_overrides(path: Path) -> dict:
    """A flat yaml file of ASR overrides (e.g. ``demo/asr_demo_overrides.yaml``)."""
    if not path.is_file():
        raise FileNotFoundError(f"ASR overrides file not found: {path}")
    loaded = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    if not isinstance(loaded, dict):
        raise ValueError(f"{path}: expected a mapping of yaml keys to values")
    return loaded


def infer_part(cfg: DictConfig, paths: TrackPaths, asr: ASRModel, part: str) -> None:
    """Compute (or resume) one part's similarity files, refusing to mix settings."""
    files = [paths.similarity_json(part, rep) for rep in ("enc", "dec")]
    dtw = str(cfg.dtw)
    stamp = paths.exp_folder / f"{part}_similarity_settings{paths.suffix}.json"
    check_or_write_stamp(
        stamp,
        similarity_settings(asr, dtw),
        f"delete {files[0]}, {files[1]} and {stamp} to recompute them",
    )
    with StageRecord(paths.exp_folder, f"{part}_similarity{paths.suffix}", flush_s=float("inf")) as record:
        compute_part(
            asr,
            signal_table(paths, part),
            *files,
            flush_every=int(cfg.flush_every),
            dtw=dtw,
            progress=bool(cfg.progress),
            record=record,
            batch_size=cfg.infer_batch_size,
        )
