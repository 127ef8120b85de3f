"""Speed of E032 inference (infer.py's per-signal work) and the share of time in the beam search.

A "signal" is what infer.py computes per CPC1 signal: the two processed ears (encoder as one batch,
one beam search each), the scene's two references (computed once per scene: counted with weight
``1 / signals_per_scene``) and the two similarities. CPU time (``time.process_time``) and wall time are
reported; the machine may be shared, so CPU time is the steadier number.

Examples
--------
Tiny oracle model on the oracle inputs::

    python benchmarks/asr_infer_speed.py --checkpoint tests/data/asr_reference/tiny_ckpt/save \\
        --overrides '{"d_model": 32, "nhead": 4, "num_encoder_layers": 2, "num_decoder_layers": 2,
                      "d_ffn": 64, "cnn_channels": [8, 16, 16], "transformer_input_size": 320,
                      "output_neurons": 100}'

Demo-size model (its save/ folder and demo/asr_demo_overrides.yaml), 16 kHz WAVs of a folder::

    python benchmarks/asr_infer_speed.py --checkpoint <exp>/asr --overrides demo/asr_demo_overrides.yaml \\
        --wav-dir <exp>/cpc1_asr_data/test_left_msbg
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from e032.asr.model import load_asr  # noqa: E402
from e032.similarity import decoder_similarity, encoder_similarity  # noqa: E402
from e032.threads import pin_threads  # noqa: E402

ORACLE = Path(__file__).resolve().parents[1] / "tests" / "data" / "asr_reference" / "oracle"


def load_overrides(text: str | None) -> dict:
    """A JSON dict or the path of a flat yaml file."""
    if not text:
        return {}
    if text.strip().startswith("{"):
        return json.loads(text)
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(text), resolve=True)


def load_waves(wav_dir: str | None, n: int) -> list[np.ndarray]:
    """``n`` waveforms: from ``wav_dir`` (sorted) or the oracle inputs."""
    if wav_dir:
        import soundfile as sf

        files = sorted(Path(wav_dir).glob("*.wav"))[:n]
        return [sf.read(f, dtype="float32")[0] for f in files]
    names = sorted(ORACLE.glob("in*.npz"))
    return [np.load(names[i % len(names)])["wav"] for i in range(n)]


def time_signals(asr, waves: list[np.ndarray], signals_per_scene: float) -> dict:
    """Time encoder, search and similarity over pairs of waves (ear pairs = equal-length copies)."""
    cpu = {"encoder": 0.0, "search": 0.0, "similarity": 0.0}
    wall_start, cpu_start = time.perf_counter(), time.process_time()
    reps = []
    for wav in waves:
        t = time.process_time()
        other_ear = 0.8 * wav + 0.01 * np.random.default_rng(0).standard_normal(len(wav)).astype(np.float32)
        encs = asr.encode_batch([wav, other_ear])  # two "ears" of equal length
        cpu["encoder"] += time.process_time() - t
        t = time.process_time()
        result = asr.searcher.search(torch.stack(encs))  # both ears in one search, as represent_batch
        decs = [d.cpu() for d in result.dec_out]
        cpu["search"] += time.process_time() - t
        reps.append(([e.cpu() for e in encs], decs))
    for (enc_p, dec_p), (enc_r, dec_r) in zip(reps, reps[1:] + reps[:1], strict=True):
        t = time.process_time()
        encoder_similarity(enc_p[0], enc_p[1], enc_r[0], enc_r[1])
        decoder_similarity(dec_p[0], dec_p[1], dec_r[0], dec_r[1])
        cpu["similarity"] += time.process_time() - t
    total_cpu, total_wall = time.process_time() - cpu_start, time.perf_counter() - wall_start
    n = len(waves)
    # per signal: 1 processed pair + 1/signals_per_scene reference pair + 1 similarity
    pair_cpu = (cpu["encoder"] + cpu["search"]) / n
    per_signal_cpu = pair_cpu * (1 + 1 / signals_per_scene) + cpu["similarity"] / n
    per_signal_wall = total_wall / n * per_signal_cpu / max(total_cpu / n, 1e-12)
    return {"pairs": n, "cpu_s": total_cpu, "wall_s": total_wall, **{f"cpu_{k}_s": v for k, v in cpu.items()},
            "search_share": cpu["search"] / max(sum(cpu.values()), 1e-12),
            "signals_per_s_cpu": 1 / per_signal_cpu, "signals_per_s_wall": 1 / per_signal_wall,
            "seconds_of_audio": float(sum(len(w) for w in waves) / 16000)}


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, help="save/ folder (or HF asr.ckpt folder)")
    parser.add_argument("--overrides", default=None, help="JSON dict or yaml file of ASR overrides")
    parser.add_argument("--wav-dir", default=None, help="folder of 16 kHz mono WAVs (default: oracle inputs)")
    parser.add_argument("--n", type=int, default=6, help="number of ear pairs timed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--beam", type=int, default=None, help="override test_beam_size")
    parser.add_argument("--signals-per-scene", type=float, default=2.0)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-decoder-cache", action="store_true", help="re-decode every prefix (original)")
    parser.add_argument("--ctc-scorer", default="fast", choices=["fast", "reference"])
    args = parser.parse_args()
    pin_threads(args.threads)
    torch.set_num_threads(args.threads)
    overrides = load_overrides(args.overrides)
    if args.beam:
        overrides["test_beam_size"] = args.beam
    asr = load_asr(args.checkpoint, overrides=overrides, device=args.device)
    asr.searcher.decoder_cache = not args.no_decoder_cache
    asr.searcher.ctc_scorer = args.ctc_scorer
    waves = load_waves(args.wav_dir, args.n)
    time_signals(asr, waves[:1], args.signals_per_scene)  # warm-up
    runs = [time_signals(asr, waves, args.signals_per_scene) for _ in range(args.repeats)]
    best = min(runs, key=lambda r: r["cpu_s"])
    best.update(threads=args.threads, device=str(asr.device), beam=asr.searcher.beam_size,
                decoder_cache=asr.searcher.decoder_cache, ctc_scorer=asr.searcher.ctc_scorer)
    print(json.dumps(best, indent=1))


if __name__ == "__main__":
    main()
