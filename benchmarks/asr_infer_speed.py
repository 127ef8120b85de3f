"""Signals per second of E032 inference: the exact batched search at several batch sizes, side by
side with the previous path (one search per ear pair) and the original's arithmetic, in one run.

A "signal" is what infer.py computes per CPC1 signal: the two processed ears, the scene's two
references (computed once per scene) and the two similarities. Every path runs through the same
signals and its similarities are compared with those of the exact batched search at batch size 1
(``max |diff|``).

* ``batch B``: :func:`e032.inference.compute_part` with ``batch_size=B`` (what ``infer.py`` runs;
  the next batch is read and encoded, the previous one's similarities computed, in background
  threads);
* ``previous``: the path before batching across signals: per scene, the reference pair as one
  search; per signal, the processed pair as one search (equal lengths) or two; fast CTC scorer,
  decoder cache;
* ``original arithmetic``: the same with the original's per-token CTC recursion and re-decoding of
  every prefix (``ctc_scorer=reference``, ``decoder_cache=False``).

Examples
--------
Demo-size model (the shipped stand-in's weights) on the 16 kHz files of an experiment (the demo's)::

    python benchmarks/asr_infer_speed.py --asr-data demo_data/e032/cpc1_asr_data --part test \\
        --signals 48 --batch-sizes 1,2,4,8,16,32

Full-size model with random weights (EOS bias calibrated so searches end after ~60 % of the frames,
as a trained model's do), CPC1-sized timing on 400 synthetic signals, extrapolated to CPC1 dev +
test (benchmarks/gpu_infer_check.sh)::

    python benchmarks/asr_infer_speed.py --device cuda --full-size --synthetic 400 --few 12 \\
        --batch-sizes 1,32,auto --arithmetic-at 32
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

REPO = Path(__file__).resolve().parents[1]

from e032 import inference  # noqa: E402
from e032.asr.model import ASRModel, load_asr, load_hparams  # noqa: E402
from e032.inference import SignalFiles, read_manifest, read_mono  # noqa: E402
from e032.similarity import decoder_similarity, encoder_similarity  # noqa: E402
from msbg.parallel import pin_threads  # noqa: E402

CPC1_SIGNALS = 3900  # CPC1 closed track, dev (~30 % of 4863 train signals) + test (2421): ~3,900
SIGNALS_PER_SCENE = 2  # synthetic scenes (CPC1: 4863 train signals over 2428 scenes)
CPC1_SECONDS = (2.0, 7.0)  # synthetic lengths after the 2-s cut (the shared CPC1 sample: 3.9 s)
STEP_SHARE = 0.6  # full-size random weights: calibrate EOS so searches end after ~60 % of the frames


def load_model(args) -> ASRModel:
    """The demo-size stand-in (real weights), or the full-size model with random weights."""
    if not args.full_size:
        overrides = inference.read_yaml_overrides(REPO / args.overrides)
        if args.beam:
            overrides["test_beam_size"] = args.beam
        return load_asr(REPO / args.checkpoint, overrides=overrides, device=args.device)
    torch.manual_seed(0)
    sizes = inference.read_yaml_overrides(REPO / args.random_sizes) if args.random_sizes else {}
    hparams = load_hparams(REPO / "transformer_cpc1.yaml", {**sizes, "test_beam_size": args.beam or 66})
    hparams["normalize"]._load_statistics_dict(
        {"count": 1, "glob_mean": torch.zeros(80), "glob_std": torch.ones(80)}
    )
    return ASRModel(hparams, torch.device(args.device), epoch=120)


def calibrate_eos_bias(asr: ASRModel, wav: np.ndarray) -> dict:
    """Raise the EOS logit (``seq_lin``) until a search of ``wav`` ends after ~STEP_SHARE of frames.

    Random weights never favour EOS (and their CTC posteriors penalise a short hypothesis heavily),
    so without a bias every search runs to its step limit; a trained model's ends earlier.
    """
    enc = asr.encode(wav)
    target = STEP_SHARE * enc.shape[0]
    bias = asr.hparams["seq_lin"].w.bias
    eos = int(asr.hparams["eos_index"])
    base = float(bias[eos])
    low, high = 0.0, 1000.0
    for _ in range(12):  # bisection: more bias, earlier EOS
        mid = (low + high) / 2
        with torch.no_grad():
            bias[eos] = base + mid
        steps = asr.search(enc).n_steps[0]
        low, high = (mid, high) if steps > target else (low, mid)
    return {"eos_bias": mid, "steps": steps, "frames": int(enc.shape[0])}


def experiment_signals(asr_data: Path, part: str, n: int) -> list[SignalFiles]:
    """The first ``n`` signals of ``part`` from the four CSVs of an experiment's ASR data folder."""
    tables = {
        (ear, kind): read_manifest(asr_data / f"{ear}_{part}_{kind}.csv")
        for ear in ("left", "right")
        for kind in ("msbg", "ref")
    }
    ids = list(tables[("left", "msbg")])[:n]
    return [
        SignalFiles(
            s,
            *(
                tables[key][s]
                for key in (("left", "msbg"), ("right", "msbg"), ("left", "ref"), ("right", "ref"))
            ),
        )
        for s in ids
    ]


def synthetic_signals(folder: Path, n: int, seed: int = 0) -> list[SignalFiles]:
    """``n`` signals of CPC1 lengths (noise-like 16 kHz PCM files; the content does not matter)."""
    rng = np.random.default_rng(seed)
    signals = []
    for scene in range(int(np.ceil(n / SIGNALS_PER_SCENE))):
        n_samples = int(rng.uniform(*CPC1_SECONDS) * 16000)
        files = {}
        for name in (
            "ref_l",
            "ref_r",
            *(f"p{i}_{ear}" for i in range(SIGNALS_PER_SCENE) for ear in "lr"),
        ):
            wave = 0.1 * rng.standard_normal(n_samples) * np.sin(np.arange(n_samples) * 2e-4) ** 2
            files[name] = folder / f"S{scene:04d}_{name}.wav"
            sf.write(files[name], wave, 16000, subtype="PCM_16")
        signals += [
            SignalFiles(
                f"S{scene:04d}_{i}",
                files[f"p{i}_l"],
                files[f"p{i}_r"],
                files["ref_l"],
                files["ref_r"],
            )
            for i in range(SIGNALS_PER_SCENE)
        ]
    return signals[:n]


def previous_path(asr: ASRModel, signals: list[SignalFiles]) -> dict[str, tuple[float, float]]:
    """The path before batching across signals: one search per ear pair, scene references once."""

    def pair(left, right):
        encs = asr.encode_batch([read_mono(left), read_mono(right)])
        if encs[0].shape == encs[1].shape:
            results = [asr.searcher.search(torch.stack(encs)).select(b) for b in range(2)]
        else:
            results = [asr.searcher.search(e.unsqueeze(0)) for e in encs]
        return [asr._representation(e, r) for e, r in zip(encs, results, strict=True)]

    out, refs = {}, {}
    for item in signals:
        if item.reference_key not in refs:
            refs[item.reference_key] = pair(item.left_ref, item.right_ref)
        (ref_l, ref_r), (proc_l, proc_r) = (
            refs[item.reference_key],
            pair(item.left_proc, item.right_proc),
        )
        out[item.signal] = (
            encoder_similarity(proc_l.enc, proc_r.enc, ref_l.enc, ref_r.enc),
            decoder_similarity(proc_l.dec, proc_r.dec, ref_l.dec, ref_r.dec),
        )
    return out


def timed(label: str, run, asr: ASRModel, n_signals: int, reference: dict | None) -> dict:
    """Run ``run()`` once; signals/s (wall and CPU) and the largest similarity difference."""
    sync = torch.cuda.synchronize if asr.device.type == "cuda" else (lambda: None)
    sync()
    wall, cpu = time.perf_counter(), time.process_time()
    sims = run()
    sync()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    common = [s for s in sims if reference is not None and s in reference]
    diff = max(
        (abs(a - b) for s in common for a, b in zip(sims[s], reference[s], strict=True)),
        default=0.0,
    )
    row = {
        "path": label,
        "signals": n_signals,
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "signals_per_s_wall": round(n_signals / wall, 3),
        "signals_per_s_cpu": round(n_signals / cpu, 3),
        "max_abs_diff_vs_batch1": float(diff),
    }
    print(json.dumps(row), flush=True)
    return {"row": row, "sims": sims}


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default="demo/standin_asr/save", help="save/ folder (demo size)")
    parser.add_argument("--overrides", default="demo/asr_demo_overrides.yaml", help="yaml of ASR sizes")
    parser.add_argument(
        "--full-size", action="store_true", help="transformer_cpc1.yaml sizes, random weights"
    )
    parser.add_argument(
        "--random-sizes",
        default=None,
        help="with --full-size: yaml of smaller sizes (a dry run of the random-weights mode)",
    )
    parser.add_argument("--asr-data", default="demo_data/e032/cpc1_asr_data", help="folder of the CSVs")
    parser.add_argument("--part", default="test")
    parser.add_argument("--signals", type=int, default=48, help="signals timed from --asr-data")
    parser.add_argument("--synthetic", type=int, default=0, help="N synthetic signals of CPC1 lengths")
    parser.add_argument("--batch-sizes", default="1,2,4,8,16,32", help="comma-separated; 'auto' allowed")
    parser.add_argument(
        "--few",
        type=int,
        default=0,
        help="signals of batch 1 (the exactness reference) and previous (0 = all)",
    )
    parser.add_argument("--original-signals", type=int, default=12, help="signals of the original's path")
    parser.add_argument(
        "--arithmetic-at",
        default="",
        help="batch size at which the other ctc_scorer/decoder_cache settings are also timed",
    )
    parser.add_argument("--skip", default="", help="comma-separated paths not run: previous,original")
    parser.add_argument("--beam", type=int, default=None, help="override test_beam_size")
    parser.add_argument("--threads", type=int, default=1, help="torch/BLAS threads of the batched runs")
    parser.add_argument(
        "--previous-threads",
        type=int,
        default=1,
        help="threads of the previous and original paths (1: their fastest, the old default)",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=None, help="also write the table as JSON here")
    args = parser.parse_args()
    pin_threads(args.threads)
    asr = load_model(args)
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        tmp_dir = Path(tmp)
        signals = (
            synthetic_signals(tmp_dir, args.synthetic)
            if args.synthetic
            else experiment_signals(REPO / args.asr_data, args.part, args.signals)
        )
        few = signals[: args.few or len(signals)]
        info = {
            "device": str(asr.device),
            "beam": asr.searcher.beam_size,
            "threads": args.threads,
            "previous_threads": args.previous_threads,
            "signals": len(signals),
            "few": len(few),
            "arithmetic": asr.searcher.arithmetic(asr.device),
            "model": (
                f"random weights, sizes {args.random_sizes or 'transformer_cpc1.yaml'}"
                if args.full_size
                else args.checkpoint
            ),
        }
        if args.full_size:
            info["calibration"] = calibrate_eos_bias(asr, read_mono(signals[0].left_ref))
        print(json.dumps(info), flush=True)
        table = time_paths(args, asr, signals, few, tmp_dir)
    if args.synthetic:
        for row in table:
            row["cpc1_dev_test_hours"] = round(CPC1_SIGNALS / row["signals_per_s_wall"] / 3600, 2)
            print(json.dumps({"path": row["path"], "cpc1_dev_test_hours": row["cpc1_dev_test_hours"]}))
    if args.out:
        Path(args.out).write_text(json.dumps({"info": info, "rows": table}, indent=1))


def time_paths(
    args, asr: ASRModel, signals: list[SignalFiles], few: list[SignalFiles], tmp_dir: Path
) -> list:
    """Every path of the table, in one process; rows of :func:`timed`."""
    inference.compute_part(asr, signals[:2], tmp_dir / "warm_enc.json", tmp_dir / "warm_dec.json")
    rows = [run_batched(asr, few, "1", tmp_dir, None)]
    reference = rows[0]["sims"]
    rows += [
        run_batched(asr, signals, size, tmp_dir, reference)
        for size in args.batch_sizes.split(",")
        if size != "1"
    ]
    if args.arithmetic_at:
        chosen = asr.searcher.ctc_scorer, asr.searcher.decoder_cache
        for scorer, cache in (("fast", False), ("reference", True), ("reference", False)):
            asr.searcher.ctc_scorer, asr.searcher.decoder_cache = scorer, cache
            rows.append(
                run_batched(
                    asr,
                    few,
                    args.arithmetic_at,
                    tmp_dir,
                    reference,
                    f" ctc_scorer={scorer} decoder_cache={cache}",
                )
            )
        asr.searcher.ctc_scorer, asr.searcher.decoder_cache = chosen
    skip = set(args.skip.split(","))
    pin_threads(args.previous_threads)
    if "previous" not in skip:
        rows.append(timed("previous", lambda: previous_path(asr, few), asr, len(few), reference))
    if "original" not in skip:
        some = signals[: args.original_signals]
        asr.searcher.ctc_scorer, asr.searcher.decoder_cache = "reference", False
        rows.append(timed("original arithmetic", lambda: previous_path(asr, some), asr, len(some), reference))
    return [r["row"] for r in rows]


def run_batched(
    asr: ASRModel, signals, size: str, tmp_dir: Path, reference: dict | None, note: str = ""
) -> dict:
    """Time :func:`e032.inference.compute_part` at one batch size (outputs in a fresh folder)."""
    out = tmp_dir / f"batch_{size}{note.replace(' ', '_')}"
    out.mkdir(exist_ok=True)
    batch_size = size if size == "auto" else int(size)
    label = f"batch {size}" + (
        f" (= {inference.resolve_batch_size(size, asr, signals)})" if size == "auto" else ""
    )
    return timed(
        label + note,
        lambda: inference.compute_part(
            asr,
            signals,
            out / "enc.json",
            out / "dec.json",
            flush_every=10**9,
            batch_size=batch_size,
        ),
        asr,
        len(signals),
        reference,
    )


if __name__ == "__main__":
    main()
