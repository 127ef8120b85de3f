"""Constant tables of the MSBG model: outer/middle-ear corrections and fixed parameters.

The correction tables are data carried over unchanged from pyclarity 0.9.0
(``clarity/evaluator/msbg/msbg_utils.py``, MIT licence, see ``NOTICE``), which took them from
Michael Stone's MATLAB MSBG code. All gains are in dB and are sampled on the frequency grid
:data:`HZ` (41 points), except the ITU table, which has its own grid :data:`ITU_HZ`.

References
----------
.. [1] E. A. G. Shaw, "Transformation of sound pressure level from the free field to the eardrum
   in the horizontal plane", J. Acoust. Soc. Am. 56(6), 1848-1861, 1974.
.. [2] ITU-T Recommendation P.58, "Head and torso simulator for telephonometry", 1996/2013.
.. [3] M. A. Stone and B. C. J. Moore, "Tolerable hearing-aid delays. I.", Ear Hear. 20(3), 1999.
"""

from __future__ import annotations

from typing import Final

import numpy as np


def _frozen(values: list[float]) -> np.ndarray:
    """Return a read-only float64 array, so that a table can never be modified by accident."""
    array = np.array(values, dtype=np.float64)
    array.flags.writeable = False
    return array


# fmt: off
#: Frequency grid (Hz) of MIDEAR, FF_ED and DF_ED. (pyclarity ``HZ``)
HZ: Final = _frozen([
    0.0, 20.0, 25.0, 31.5, 40.0, 50.0, 63.0, 80.0, 100.0, 125.0, 160.0, 200.0,
    250.0, 315.0, 400.0, 500.0, 630.0, 750.0, 800.0, 1000.0, 1250.0, 1500.0,
    1600.0, 2000.0, 2500.0, 3000.0, 3150.0, 4000.0, 5000.0, 6000.0, 6300.0,
    8000.0, 9000.0, 10000.0, 11200.0, 12500.0, 14000.0, 15000.0, 16000.0,
    20000.0, 48000.0,
])

#: Middle-ear transfer (attenuation, dB) on :data:`HZ`. (pyclarity ``MIDEAR``)
MIDEAR: Final = _frozen([
    50.0, 39.6, 32.0, 25.85, 21.4, 18.5, 15.9, 14.1, 12.4, 11.0, 9.6, 8.3, 7.4,
    6.2, 4.8, 3.8, 3.3, 2.9, 2.6, 2.6, 4.5, 5.4, 6.1, 8.5, 10.4, 7.3, 7.0, 6.6,
    7.0, 9.2, 10.2, 12.2, 10.8, 10.1, 12.7, 15.0, 18.2, 23.8, 32.3, 50.0, 50.0,
])

#: Free-field (frontal) to eardrum correction (dB re 0 dB at 1 kHz), Shaw 1974 [1]_. (``FF_ED``)
FF_ED: Final = _frozen([
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.3, 0.5, 0.9, 1.4,
    1.6, 1.7, 2.5, 2.7, 2.6, 2.6, 3.2, 5.2, 6.6, 12.0, 16.8, 15.3, 15.2, 14.2,
    10.7, 7.1, 6.4, 1.8, -0.9, -1.6, 1.9, 4.9, 2.0, -2.0, 2.5, 2.5, 2.5,
])

#: Diffuse-field to eardrum correction (dB re 1 kHz), MATLAB ``corrections08.m``. (``DF_ED``)
DF_ED: Final = _frozen([
    0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.1, 0.3, 0.4, 0.5, 1.0,
    1.6, 1.7, 2.2, 2.7, 2.9, 3.8, 5.3, 6.8, 7.2, 10.2, 14.9, 14.5, 14.4,
    12.7, 10.8, 8.9, 8.7, 8.5, 6.2, 5.0, 4.5, 4.0, 3.3, 2.6, 2.0, 2.0, 2.0,
])

#: Frequency grid (Hz) of :data:`ITU_ERP_DRP`. (pyclarity ``ITU_HZ``)
ITU_HZ: Final = _frozen([
    0, 100, 125, 160, 200, 250, 315, 400, 500, 630, 800, 1000, 1250, 1600,
    2000, 2500, 3150, 4000, 5000, 6300, 8000, 10000, 20000, 48000,
])

#: Ear-reference-point to drum-reference-point correction (dB), the negative of ITU-T P.58
#: Table 14a [2]_, with two points (20 and 48 kHz) added by M. A. Stone. (``ITU_ERP_DRP``)
ITU_ERP_DRP: Final = _frozen([
    0.0, 0.0, 0.0, 0.0, 0.0, 0.3, 0.2, 0.5, 0.6, 0.7, 1.1, 1.7, 2.6, 4.2,
    6.5, 9.4, 10.3, 6.6, 3.2, 3.3, 16, 14.4, 14.4, 14.4,
])

#: Frequency grid (Hz) and emphasis (dB) of the speech-shaped calibration noise
#: (pyclarity ``GEN_NOISE_HZ``, ``EMPHASIS``; ideal SII shape rescaled to -7.5 dB/octave).
GEN_NOISE_HZ: Final = _frozen(
    [0, 100, 200, 450, 550, 707, 1000, 1414, 2000, 2828, 4000, 5656, 8000, 16e3, 32e3]
)
EMPHASIS_DB: Final = _frozen(
    [0, 0.0, 0.0, 0, -0.5, -4.5, -9.0, -13.5, -18, -22.5, -27, -31.5, -36.0, -51, -66]
) * (7.5 / 9)
EMPHASIS_DB.flags.writeable = False
# fmt: on

#: The only sample rate (Hz) the MSBG filter designs and gammatone files are made for.
MSBG_SAMPLE_RATE: Final = 44100

#: Frame length (s) of the active-level measurement. (pyclarity ``WIN_SECS``)
RMS_FRAME_S: Final = 0.01

#: Cut-off (Hz) of the final low-pass filter. (pyclarity ``UPPER_CUTOFF_HZ``)
UPPER_CUTOFF_HZ: Final = 18000.0

#: Level (dB SPL) at which the impaired loudness catches up with normal loudness (Moore &
#: Glasberg 1993). (pyclarity ``catch_up_level``)
CATCH_UP_LEVEL_DB_SPL: Final = 105.0

#: Audiogram levels above this (dB HL) make pyclarity log "impairment too severe".
SEVERE_WARNING_DB_HL: Final = 80.0

#: Lowest audiogram level accepted (dB HL): audiometers stop at -10 dB HL, so a level far below
#: is a typing error, which MSBG would turn into a gain (not in pyclarity, which accepted it).
MIN_AUDIOGRAM_DB_HL: Final = -20.0

#: Clarity audiogram frequencies (Hz).
CLARITY_AUDIOGRAM_HZ: Final = _frozen([250, 500, 1000, 2000, 3000, 4000, 6000, 8000])
