"""Speed of msbg (ours) vs pyclarity 0.9.0's MSBG per binaural signal, on one BLAS thread.

Usage::

    python benchmarks/msbg_speed.py [--seconds 5.886] [--repeats 5] [--pyclarity-repeats 2]
                                    [--pyclarity-path /tmp/pyclarity_site]

Both run in this process on the same binaural signal (both ears, each with its own level
normalisation, as the E032 recipe: ours ``msbg.listen``, pyclarity ``set_audiogram`` +
``process(column)[0]`` per ear), BLAS pinned to one thread (threadpoolctl). The signal is the
CPC1 sample S08510_L0239_E001 (2 x 5.9 s) when present, else modulated noise; each severity
class sets both ears' audiogram. Times are CPU (``time.process_time``) per binaural signal; the
minimum over repeats is reported (the machine may be shared), plus the real-time factor (CPU
time / signal duration) and the max |ours - pyclarity| / max|pyclarity| over both ears.
pyclarity is timed when importable (``pip install --no-deps --target DIR pyclarity==0.9.0``
and ``--pyclarity-path DIR``). Our stage "gammatone" includes the forward pass of the envelope
filter (fused into the same kernel); "envelope_recruitment" is the backward pass, the gain and
the channel sum. Stage times are those of the fastest repeat, summed over both ears.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import logging
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from msbg import Audiogram, Ear, listen  # noqa: E402

SAMPLE_RATE = 44100
AUDIOGRAMS = {  # one per severity class (dB HL at 250 ... 8000 Hz)
    "NOTHING": [5, 5, 5, 10, 10, 10, 15, 15],
    "MILD": [10, 15, 15, 20, 25, 30, 30, 35],
    "MODERATE": [20, 25, 30, 40, 45, 50, 55, 55],
    "SEVERE": [30, 25, 25, 50, 65, 75, 75, 90],
}
CPC1_WAV = (
    Path(__file__).resolve().parents[2]
    / "shared/cpc1_sample/clarity_CPC1_data_train/clarity_data/HA_outputs/train"
    / "S08510_L0239_E001.wav"
)


def test_signal(seconds: float | None, rng: np.random.Generator) -> np.ndarray:
    """Binaural [shape=(n, 2)]: the CPC1 sample (looped or cut to ``seconds``) if present, else
    modulated noise."""
    if CPC1_WAV.is_file():
        import soundfile as sf

        x, _ = sf.read(CPC1_WAV, dtype="float64")
        n = len(x) if seconds is None else int(seconds * SAMPLE_RATE)
        return np.stack([np.resize(x[:, ear], n) for ear in range(2)], axis=1)
    n = int((seconds or 5.886) * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    return 0.05 * rng.standard_normal((n, 2)) * (1 + np.sin(2 * np.pi * 4 * t))[:, None] / 2


def time_ours(x: np.ndarray, audiogram: Audiogram, repeats: int) -> tuple[float, dict, np.ndarray]:
    """Best CPU time (s) of msbg on the binaural ``x`` over ``repeats``, its stages and output."""
    ear = Ear()
    listen(ear, x[:SAMPLE_RATE], audiogram, audiogram)  # warm caches (designs, work arrays)
    best, best_stages, out = np.inf, {}, None
    for _ in range(repeats):
        stages: dict = {}
        start = time.process_time()
        outputs = []
        for column in range(2):  # as listen(), with stage timings
            ear.set_audiogram(audiogram)
            outputs.append(ear.process(x[:, column], timings=stages)[0])
        elapsed = time.process_time() - start
        if elapsed < best:
            best, best_stages, out = elapsed, stages, np.stack(outputs, axis=1)
    return best, best_stages, out


@contextlib.contextmanager
def pyclarity_stage_timers(stages: dict):
    """Wrap pyclarity's stage functions with CPU timers (restored afterwards)."""
    from clarity.evaluator.msbg import cochlea, msbg, smearing

    targets = [
        (smearing, "smear3", "smearing"),
        (cochlea, "gammatone_filterbank", "gammatone"),
        (cochlea, "compute_envelope", "envelope"),
        (cochlea, "recruitment", "recruitment"),
    ]
    originals = [(mod, name, getattr(mod, name)) for mod, name, _ in targets]

    def timed(func, stage):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            start = time.process_time()
            try:
                return func(*args, **kwargs)
            finally:
                stages[stage] = stages.get(stage, 0.0) + time.process_time() - start

        return wrapper

    for mod, name, stage in targets:
        setattr(mod, name, timed(getattr(mod, name), stage))
    orig_filt = msbg.Ear.src_to_cochlea_filt
    msbg.Ear.src_to_cochlea_filt = staticmethod(timed(orig_filt, "ear_filters"))
    try:
        yield
    finally:
        for mod, name, func in originals:
            setattr(mod, name, func)
        msbg.Ear.src_to_cochlea_filt = staticmethod(orig_filt)


def time_pyclarity(x: np.ndarray, levels: list, repeats: int) -> tuple[float, dict, np.ndarray]:
    """Best CPU time (s) of pyclarity on the binaural ``x`` over ``repeats``, stages, output."""
    from clarity.evaluator.msbg.msbg import Ear as PEar
    from clarity.utils.audiogram import Audiogram as PAudiogram

    ear = PEar(src_pos="ff", sample_rate=SAMPLE_RATE, equiv_0db_spl=100, ahr=20)
    audiogram = PAudiogram(
        levels=np.array(levels),
        frequencies=np.array([250, 500, 1000, 2000, 3000, 4000, 6000, 8000]),
    )
    best, best_stages, out = np.inf, {}, None
    for _ in range(repeats):
        stages: dict = {}
        outputs = []
        with pyclarity_stage_timers(stages):
            start = time.process_time()
            for column in range(2):
                set_start = time.process_time()
                ear.set_audiogram(audiogram)
                stages["set_audiogram"] = stages.get("set_audiogram", 0.0) + (time.process_time() - set_start)
                outputs.append(ear.process(x[:, column])[0])
            elapsed = time.process_time() - start
        if elapsed < best:
            best, best_stages, out = elapsed, stages, np.stack(outputs, axis=1)
    return best, best_stages, out


def main() -> None:
    """Parse arguments, time both implementations per severity, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--seconds", type=float, default=None, help="signal length (s; default: the CPC1 sample)"
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pyclarity-repeats", type=int, default=2)
    parser.add_argument("--pyclarity-path", default="/tmp/pyclarity_site")
    parser.add_argument("--severities", nargs="+", default=list(AUDIOGRAMS))
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # pyclarity logs a warning above 80 dB HL
    warnings.simplefilter("ignore", UserWarning)
    if args.pyclarity_repeats < 1 or args.repeats < 1:
        parser.error("--repeats and --pyclarity-repeats must be >= 1")
    if args.pyclarity_path:
        sys.path.append(args.pyclarity_path)
    try:
        import clarity.evaluator.msbg.msbg  # noqa: F401

        have_pyclarity = True
    except ImportError:
        have_pyclarity = False
        print("pyclarity not importable: timing ours only")
    x = test_signal(args.seconds, np.random.default_rng(0))
    seconds = len(x) / SAMPLE_RATE
    print(
        f"signal: binaural 2 x {seconds:.3f} s at 44.1 kHz, BLAS threads = 1, "
        f"CPU time per binaural signal (min over repeats: ours {args.repeats}, "
        f"pyclarity {args.pyclarity_repeats})"
    )
    stage_names = ["level", "ear_filters", "smearing", "gammatone", "envelope_recruitment"]
    with threadpool_limits(1):
        start = time.process_time()
        Ear().set_audiogram(Audiogram(AUDIOGRAMS["SEVERE"]))
        print(
            f"ours: first set_audiogram (SEVERE, builds smearing matrix) "
            f"{time.process_time() - start:.3f} s"
        )
        for severity in args.severities:
            levels = AUDIOGRAMS[severity]
            ours_s, ours_stages, ours_out = time_ours(x, Audiogram(levels), args.repeats)
            line = f"{severity:9s} ours {ours_s:6.3f} s (RTF {ours_s / seconds:.3f})"
            stage_txt = " ".join(f"{k}={ours_stages.get(k, 0):.3f}" for k in stage_names)
            if have_pyclarity:
                py_s, py_stages, py_out = time_pyclarity(x, levels, args.pyclarity_repeats)
                py_stages["envelope_recruitment"] = py_stages.pop("envelope", 0.0) + py_stages.pop(
                    "recruitment", 0.0
                )
                dev = np.abs(ours_out - py_out).max() / np.abs(py_out).max()
                line += (
                    f" | pyclarity {py_s:6.3f} s (RTF {py_s / seconds:.3f})"
                    f" | speed-up x{py_s / ours_s:5.1f} | max |diff|/peak {dev:.1e}"
                )
                py_txt = " ".join(f"{k}={py_stages.get(k, 0):.3f}" for k in stage_names[1:])
                py_txt += f" set_audiogram={py_stages.get('set_audiogram', 0):.3f}"
            print(line, flush=True)
            print(f"    ours stages (s): {stage_txt}")
            if have_pyclarity:
                print(f"    pyclarity stages (s): {py_txt}", flush=True)


if __name__ == "__main__":
    main()
