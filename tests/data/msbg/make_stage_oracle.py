"""Regenerate ``stage_oracle.npz``: per-stage outputs of pyclarity 0.9.0's MSBG (the oracle).

Run once with pyclarity importable (it is NOT a dependency of this project)::

    pip install --no-deps --target /tmp/pyclarity_site pyclarity==0.9.0
    PYTHONPATH=/tmp/pyclarity_site python tests/data/msbg/make_stage_oracle.py
"""

from pathlib import Path

import numpy as np
from clarity.evaluator.msbg import cochlea, msbg, msbg_utils, smearing
from clarity.utils.audiogram import Audiogram

OUT = Path(__file__).with_name("stage_oracle.npz")
SMEAR_ROWS = np.array([0, 1, 2, 64, 127, 128, 129, 200, 254, 255])


def main() -> None:
    data = {}
    impulse = np.zeros(1015)
    impulse[0] = 1.0
    for src_pos in ("ff", "df", "ITU"):
        correction = msbg.Ear.get_src_correction(src_pos)
        for backward in (False, True):
            key = f"taps_{src_pos}_{'backward' if backward else 'forward'}"
            data[key] = msbg.Ear.src_to_cochlea_filt(impulse, correction, 44100, backward)
    data["smear_rows"] = SMEAR_ROWS
    for name, (rl, ru) in (("severe", (4.0, 2.0)), ("moderate", (2.4, 1.6)), ("mild", (1.6, 1.1))):
        data[f"smear_matrix_{name}_rows"] = smearing.make_smear_mat3(rl, ru, 44100.0)[SMEAR_ROWS]
    rng = np.random.default_rng(20240601)
    signal = rng.standard_normal(1000) * 0.1
    data["smear_input"] = signal
    data["smear_mild_output"] = smearing.smear3(smearing.make_smear_mat3(1.6, 1.1, 44100.0), signal)
    # Gammatone, envelope and the whole cochlea (MODERATE, 28 channels) on a tone burst in noise.
    n = 1024
    t = np.arange(n) / 44100
    x = 0.05 * np.sin(2 * np.pi * 1000 * t) * np.hanning(n) + 0.01 * rng.standard_normal(n)
    audiogram = Audiogram(levels=np.array([20, 25, 30, 40, 45, 50, 55, 55]))
    coch = cochlea.Cochlea(audiogram=audiogram)
    params = coch.gtfbank_params
    gt = cochlea.gammatone_filterbank(
        x.copy(),
        params["NGAMMA"],
        cochlea.FilterBank(np.array(params["GTn_nums"]), np.array(params["GTn_denoms"])),
        np.array(params["GTnDelays"]),
        params["Start2PoleHP"],
        cochlea.FilterBank(np.array(params["HP_nums"]), np.array(params["HP_denoms"])),
    )
    data["cochlea_input"] = x
    data["cochlea_levels"] = audiogram.levels
    data["gammatone_moderate"] = gt
    data["envelope_moderate"] = cochlea.compute_envelope(
        gt, np.array(params["ERBn_CentFrq"]), 44100.0
    )
    data["cochlea_moderate_output"] = coch.simulate(x.copy(), 120.0)
    # Active-level measurement on a signal with pauses.
    speech_like = np.concatenate(
        [
            np.zeros(5000),
            0.1 * rng.standard_normal(20000),
            np.zeros(9000),
            0.02 * rng.standard_normal(10000),
        ]
    )
    rms, idx, _, _ = msbg_utils.measure_rms(speech_like, 44100, -12)
    data["rms_input"] = speech_like
    data["rms_value"] = np.array(rms)
    data["rms_n_kept"] = np.array(len(idx))
    np.savez_compressed(OUT, **data)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
