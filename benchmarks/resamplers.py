"""soxr HQ against resampy kaiser_best (the 2022 run's librosa 0.9 default) on the real CPC1 sample.

    python benchmarks/resamplers.py [--sample tests/data/cpc1_sample] [--repeats 3]

For the MSBG output and the reference of the real signal, after resampling to 16 kHz and the 2-s cut,
prints per ear: the largest absolute difference, the SNR of the difference (energy of the kaiser_best
signal over that of soxr HQ minus kaiser_best), the difference's energy in three bands relative to the
kaiser_best signal's, the share of 16-bit samples that change, and the CPU time of one call of each
resampler (both ears, 1 thread). See docs/prepare_data.md "Resampler".
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]

from e032.resample import resample, trim_start  # noqa: E402

SIGNAL = "S08510_L0239_E001"
FILES = {
    "MSBG output": f"expected_msbg/{SIGNAL}_HL-output.wav",
    "reference": "clarity_CPC1_data_train/clarity_data/scenes/S08510_target_anechoic.wav",
}
BANDS_HZ = (("< 7 kHz", 0, 7000), ("7-7.6 kHz", 7000, 7600), ("7.6-8 kHz", 7600, 8001))
SAMPLE_RATE = 16000
TRIM_S = 2.0


def cpu_time_s(function, repeats: int) -> tuple[np.ndarray, float]:
    """Result and the smallest CPU time of ``repeats`` calls (after one warm-up call: numba compiles)."""
    result, best = function(), float("inf")
    for _ in range(repeats):
        start = time.process_time()
        function()
        best = min(best, time.process_time() - start)
    return result, best


def band_db(difference: np.ndarray, reference: np.ndarray, low_hz: float, high_hz: float) -> np.ndarray:
    """Energy of ``difference`` relative to ``reference`` in [low_hz, high_hz), dB, per channel."""
    freqs = np.fft.rfftfreq(len(reference), 1 / SAMPLE_RATE)
    band = (freqs >= low_hz) & (freqs < high_hz)

    def power(x):
        return np.sum(np.abs(np.fft.rfft(x, axis=0)[band]) ** 2, axis=0)

    return 10 * np.log10(power(difference) / power(reference))


def row(name: str, path: Path, repeats: int) -> str:
    """One table row per ear."""
    signal, rate = sf.read(path)
    kaiser, t_kaiser = cpu_time_s(lambda: resample(signal, rate, SAMPLE_RATE, "kaiser_best"), repeats)
    soxr_hq, t_soxr = cpu_time_s(lambda: resample(signal, rate, SAMPLE_RATE, "soxr_hq"), repeats)
    kaiser, soxr_hq = trim_start(kaiser, TRIM_S, SAMPLE_RATE), trim_start(soxr_hq, TRIM_S, SAMPLE_RATE)
    diff = soxr_hq - kaiser
    snr = 10 * np.log10(np.sum(kaiser**2, axis=0) / np.sum(diff**2, axis=0))
    bands = [band_db(diff, kaiser, low, high) for _, low, high in BANDS_HZ]
    pcm = lambda x: np.clip(np.round(x * 32768), -32768, 32767)  # noqa: E731
    changed = 100 * np.mean(pcm(soxr_hq) != pcm(kaiser), axis=0)
    lines = []
    for ear, c in (("left", 0), ("right", 1)):
        cells = [f"{np.abs(diff[:, c]).max():.3g}", f"{snr[c]:.1f} dB"] + [f"{b[c]:+.1f} dB" for b in bands]
        lines.append(
            f"| {name}, {ear} | "
            + " | ".join(cells)
            + f" | {changed[c]:.1f} % |"
            + (f" {1e3 * t_soxr:.0f} / {1e3 * t_kaiser:.0f} ms |" if c == 0 else " |")
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Print the comparison table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=Path, default=REPO / "tests" / "data" / "cpc1_sample")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    bands = " | ".join(label for label, _, _ in BANDS_HZ)
    print(
        f"| signal, ear | max abs diff | SNR of difference | {bands} | 16-bit samples changed "
        "| CPU per call, soxr HQ / kaiser_best (both ears) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, relative in FILES.items():
        print(row(name, args.sample / relative, args.repeats))


if __name__ == "__main__":
    main()
