"""E032 inference: encoder and decoder hidden-representation similarities of processed vs clean speech.

For every dev and test signal, the four mono 16 kHz files (MSBG-processed left/right, clean reference
left/right) are read through the four CSVs of ``<exp>/cpc1_asr_data<track>/`` (joined on the ``ID``
column, never by editing paths), passed through the fine-tuned ASR (``e032.asr``), and compared
(``e032.similarity``). Outputs (signal ID -> raw similarity) go to
``<exp>/{dev,test}_{enc,dec}_similarity<track suffix>.json``.

    python infer.py path.root=/data/cpc1 [cpc1_track=open] [device=cpu] [asr_output_folder=...]

Speed-ups over the original, none of which changes a number: the references of a scene are computed
once for all its signals; the two ears of a pair are encoded as one batch (equal lengths only); results
are flushed atomically every ``flush_every`` signals and a re-run skips the signals already done.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import hydra
import numpy as np
import soundfile as sf
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

import e032.hydra_logs  # noqa: F401  (registers the resolver of hydra.run.dir)
from e032.asr.model import SAMPLE_RATE, ASRModel, Representation, load_asr
from e032.io import explain_os_errors, read_json, read_wav, write_json_atomic
from e032 import manifests
from e032.manifests import MIN_ASR_INPUT_S
from e032.records import StageRecord, Unit, check_or_write_stamp, settings_digest
from e032.similarity import decoder_similarity, encoder_similarity
from e032.threads import pin_threads
from e032.tracks import TrackPaths, resolve_track

logger = logging.getLogger(__name__)

PARTS = ("dev", "test")
EAR_KINDS = (("left", "msbg"), ("right", "msbg"), ("left", "ref"), ("right", "ref"))
# ASR yaml keys that change the similarities (ctc_scorer and decoder_cache change only the speed)
SEARCH_SETTINGS = ("test_beam_size", "ctc_weight_decode", "min_decode_ratio", "max_decode_ratio", "temperature")


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


def read_manifest(path: Path, data_root: Path) -> dict[str, Path]:
    """``ID -> wav`` of a SpeechBrain CSV (columns ``ID`` and ``wav``), in file order.

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
    tables = {(ear, kind): read_manifest(paths.asr_csv(ear, part, kind), paths.asr_data_dir)
              for ear, kind in EAR_KINDS}
    ids = list(tables[("left", "msbg")])
    for (ear, kind), table in tables.items():
        if set(table) != set(ids):
            diff = sorted(set(ids) ^ set(table))[:3]
            raise ValueError(f"{paths.asr_csv(ear, part, kind)} and {paths.asr_csv('left', part, 'msbg')} "
                             f"list different signals (e.g. {diff})")
    for (ear, kind), table in tables.items():
        for wav in dict.fromkeys(table.values()):
            check_listed_wav(wav, paths.asr_csv(ear, part, kind), paths.asr_data_dir)
    return [SignalFiles(s, tables[("left", "msbg")][s], tables[("right", "msbg")][s],
                        tables[("left", "ref")][s], tables[("right", "ref")][s]) for s in ids]


def check_listed_wav(wav: Path, csv_path: Path, data_dir: Path) -> None:
    """Check one file a CSV lists: inside ``data_dir``, present, 16 kHz mono, long enough.

    Raises
    ------
    FileNotFoundError, ValueError
        Naming the file, the CSV and what to do.
    """
    if data_dir.resolve() not in wav.resolve().parents:
        raise ValueError(f"{wav} listed in {csv_path} is outside this experiment's {data_dir} (CSVs "
                         "of a copied or moved experiment folder?): run prepare_data.py with this "
                         "path.exp_folder to rewrite the CSVs (finished files are kept)")
    if not wav.is_file():
        raise FileNotFoundError(f"{wav} listed in {csv_path} does not exist")
    info = sf.info(str(wav))
    if (info.samplerate, info.channels) != (SAMPLE_RATE, 1):
        raise ValueError(f"{wav} listed in {csv_path}: {info.channels} channel(s) at {info.samplerate} Hz, "
                         f"expected mono at {SAMPLE_RATE} Hz")
    if info.frames < MIN_ASR_INPUT_S * SAMPLE_RATE:
        raise ValueError(f"{wav} listed in {csv_path} is {info.frames / SAMPLE_RATE:.3f} s long; the ASR "
                         f"needs at least {MIN_ASR_INPUT_S} s (is its HA output shorter than trim_s?)")


def read_mono(path: Path) -> np.ndarray:
    """A mono 16 kHz file as float32 (the original's ``read_audio``)."""
    return read_wav(path, sample_rate=SAMPLE_RATE, n_channels=1)[:, 0].astype(np.float32)


def pair_representations(asr: ASRModel, left: Path, right: Path) -> list[Representation]:
    """Representations of a left/right pair (encoded as one batch when the lengths agree)."""
    return asr.represent_batch([read_mono(left), read_mono(right)])


def load_done(json_paths: Sequence[Path]) -> dict[str, list[float]]:
    """Signals already present in every output JSON (a killed run may have flushed only some)."""
    tables = [read_json(p, "similarity file") if p.is_file() else {} for p in json_paths]
    done = set(tables[0]).intersection(*map(set, tables[1:]))
    return {s: [t[s] for t in tables] for s in done}


def compute_part(asr: ASRModel, signals: Sequence[SignalFiles], enc_json: Path, dec_json: Path,
                 flush_every: int = 20, dtw: str = "fastdtw", progress: bool = False,
                 on_signal: Callable[[str], None] | None = None,
                 record: StageRecord | None = None) -> dict[str, tuple[float, float]]:
    """Similarities of all ``signals``, resuming from and flushing to ``enc_json`` / ``dec_json``.

    Signals are processed scene by scene (grouped by their reference files), so each scene's reference
    representations are computed once. The JSON files list the signals in ``signals`` order. With a
    ``record``, a signal is done only if its four files, the ASR checkpoint files and the settings
    are those its similarities were computed from (else it is recomputed); the record is flushed
    with the JSONs.

    Returns
    -------
    dict
        ``signal -> (enc_similarity, dec_similarity)``.
    """
    if flush_every < 1:
        raise ValueError(f"flush_every must be >= 1, got {flush_every}")
    results = {s: (v[0], v[1]) for s, v in load_done([enc_json, dec_json]).items()}
    checkpoint = tuple(asr.checkpoint.files) if asr.checkpoint is not None else ()
    params = {"settings": settings_digest(similarity_settings(asr, dtw))}
    units = {s.signal: Unit(s.signal, s.files + checkpoint, params, ()) for s in signals}
    stale = {u.key for u in record.stale(units.values())} if record is not None else set()
    todo = [s for s in signals if s.signal not in results or s.signal in stale]
    logger.info("%s: %d signals, %d already done", enc_json.name, len(signals), len(signals) - len(todo))
    groups: dict[tuple[str, str], list[SignalFiles]] = {}
    for item in todo:
        groups.setdefault(item.reference_key, []).append(item)

    def flush() -> None:
        ordered = [s.signal for s in signals if s.signal in results]
        write_json_atomic(enc_json, {s: results[s][0] for s in ordered})
        write_json_atomic(dec_json, {s: results[s][1] for s in ordered})
        if record is not None:
            record.flush()

    bar = tqdm(total=len(todo), desc=enc_json.stem, disable=not progress)
    since_flush = 0
    for group in groups.values():
        ref_l, ref_r = pair_representations(asr, group[0].left_ref, group[0].right_ref)
        for item in group:
            results[item.signal] = signal_similarities(asr, item, ref_l, ref_r, dtw)
            if record is not None:
                record.done(units[item.signal])
            if on_signal is not None:
                on_signal(item.signal)
            since_flush += 1
            bar.update()
            if since_flush >= flush_every:
                flush()
                since_flush = 0
    bar.close()
    flush()
    return {s.signal: results[s.signal] for s in signals}


def signal_similarities(asr: ASRModel, item: SignalFiles, ref_l: Representation, ref_r: Representation,
                        dtw: str) -> tuple[float, float]:
    """Encoder and decoder similarity of one signal, given its scene's reference representations."""
    try:
        proc_l, proc_r = pair_representations(asr, item.left_proc, item.right_proc)
        enc = encoder_similarity(proc_l.enc, proc_r.enc, ref_l.enc, ref_r.enc)
        dec = decoder_similarity(proc_l.dec, proc_r.dec, ref_l.dec, ref_r.dec, method=dtw)
    except Exception as err:
        err.add_note(f"while computing the similarities of signal {item.signal} from {item.left_proc}, "
                     f"{item.right_proc}, {item.left_ref}, {item.right_ref}")
        raise
    logger.debug("%s: enc %.6f dec %.6f", item.signal, enc, dec)
    return enc, dec


def similarity_settings(asr: ASRModel, dtw: str) -> dict:
    """The settings that change the similarities (not the device, nor the speed-only variants)."""
    return {"dtw": dtw, "decoder_representation": asr.decoder_representation,
            **{key: asr.hparams[key] for key in SEARCH_SETTINGS}}


def asr_from_config(cfg: DictConfig, paths: TrackPaths) -> ASRModel:
    """Load the ASR named by the config (folder, yaml, overrides, device, decoder representation)."""
    folder = cfg.get("asr_output_folder") or paths.exp_folder / f"asr{paths.suffix}"
    overrides: dict = {}
    if cfg.get("asr_overrides_file"):
        overrides.update(read_yaml_overrides(repo_path(cfg.asr_overrides_file)))
    if cfg.get("asr_overrides"):  # an empty mapping is falsy: nothing to add
        overrides.update(OmegaConf.to_container(cfg.asr_overrides, resolve=True))
    return load_asr(Path(folder).expanduser(), yaml_path=repo_path(cfg.asr_config), overrides=overrides,
                    device=cfg.get("device"), decoder_representation=cfg.get("decoder_representation"))


def repo_path(name: str) -> Path:
    """``name`` as given if absolute, else relative to this script's folder (not the current directory)."""
    path = Path(str(name)).expanduser()
    return path if path.is_absolute() else Path(__file__).resolve().parent / path


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
    check_or_write_stamp(stamp, similarity_settings(asr, dtw),
                         f"delete {files[0]}, {files[1]} and {stamp} to recompute them")
    with StageRecord(paths.exp_folder, f"{part}_similarity{paths.suffix}", flush_s=float("inf")) as record:
        compute_part(asr, signal_table(paths, part), *files, flush_every=int(cfg.flush_every), dtw=dtw,
                     progress=bool(cfg.get("progress", True)), record=record)


@hydra.main(version_base=None, config_path=".", config_name="config")
@explain_os_errors
def main(cfg: DictConfig) -> None:
    """Compute the dev and test similarity files of the configured track."""
    if int(cfg.get("infer_threads", 1)) > 0:
        pin_threads(int(cfg.infer_threads))
    paths = resolve_track(cfg)
    with torch.no_grad():  # a context, not a global switch: callers (tests, notebooks) keep autograd
        asr = asr_from_config(cfg, paths)
        logger.info("ASR on %s, decoder representation %s", asr.device, asr.decoder_representation)
        for part in PARTS:
            infer_part(cfg, paths, asr, part)


if __name__ == "__main__":
    main()
