"""Gammatone filterbank of the impaired cochlea (broadened auditory filters).

Each channel is a 4th-order gammatone made of one 2nd-order IIR section applied four times, then
time-advanced by the channel's group delay, and (from channel ``Start2PoleHP`` on) high-passed by a
2nd-order section that controls the low-frequency tails. The coefficients are data: three JSON
files designed by M. A. Stone in 2013 (filters broadened 1.5, 2 or 3 times, for MILD/NOTHING,
MODERATE and SEVERE losses), carried over from pyclarity (see ``NOTICE``).

References
----------
.. [1] B. C. J. Moore and B. R. Glasberg, "Simulation of the effects of loudness recruitment and
   threshold elevation on the intelligibility of speech in quiet and in a background of speech",
   J. Acoust. Soc. Am. 94(4), 2050-2062, 1993.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from typing import Final

import numpy as np
import numpy.typing as npt
import scipy.signal

from msbg import _kernels

#: Filterbank file per severity (pyclarity ``HL_PARAMS[...]["gtfbank_file"]``).
FILTERBANK_FILES: Final[dict[str, str]] = {
    "SEVERE": "GT4FBank_Brd3.0E_Spaced2.3E_44100Fs.json",
    "MODERATE": "GT4FBank_Brd2.0E_Spaced1.5E_44100Fs.json",
    "MILD": "GT4FBank_Brd1.5E_Spaced1.1E_44100Fs.json",
    "NOTHING": "GT4FBank_Brd1.5E_Spaced1.1E_44100Fs.json",
}


@dataclass(frozen=True, eq=False)
class Filterbank:
    """One gammatone filterbank file, as read-only arrays.

    Attributes
    ----------
    sample_rate : int
        Hz (``Fs``; always 44100).
    centre_hz : ndarray [shape=(n_channels,)]
        Channel centre frequencies (``GTn_CentFrq``).
    erb_hz : ndarray [shape=(n_channels,)]
        ERB bandwidth at each centre frequency (``ERBn_CentFrq``, despite its name).
    sos : ndarray [shape=(n_channels, n_gamma, 6)]
        Each channel's biquad repeated ``NGAMMA`` times (``GTn_nums``, ``GTn_denoms``).
    delays : ndarray of int [shape=(n_channels,)]
        Samples to advance each channel's output (``GTnDelays``).
    first_highpass : int
        0-based index of the first channel with a high-pass (``Start2PoleHP - 1``).
    highpass_sos : ndarray [shape=(n_channels - first_highpass, 6)]
        (``HP_nums``, ``HP_denoms``).
    recombination_db : float
        Gain removed when the channels are summed (``Recombination_dB``).
    """

    name: str
    sample_rate: int
    centre_hz: npt.NDArray[np.float64]
    erb_hz: npt.NDArray[np.float64]
    sos: npt.NDArray[np.float64]
    delays: npt.NDArray[np.int64]
    first_highpass: int
    highpass_sos: npt.NDArray[np.float64]
    recombination_db: float

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return len(self.centre_hz)


def _read_only(values, dtype=np.float64) -> np.ndarray:
    array = np.array(values, dtype=dtype)
    array.flags.writeable = False
    return array


@functools.lru_cache(maxsize=4)
def load_filterbank(file_name: str) -> Filterbank:
    """Load a packaged filterbank file (``msbg/data/*.json``); cached.

    Raises
    ------
    ValueError
        If the file does not describe a normalised (``a0 = 1``) 4th-order gammatone bank.
    """
    text = resources.files("msbg").joinpath("data", file_name).read_text(encoding="utf-8")
    raw = json.loads(text)
    nums = np.array(raw["GTn_nums"], dtype=np.float64)
    denoms = np.array(raw["GTn_denoms"], dtype=np.float64)
    hp_nums = np.array(raw["HP_nums"], dtype=np.float64)
    hp_denoms = np.array(raw["HP_denoms"], dtype=np.float64)
    if not (np.all(denoms[:, 0] == 1) and np.all(hp_denoms[:, 0] == 1)):
        raise ValueError(f"{file_name}: filter denominators must start with 1")
    n_gamma = int(raw["NGAMMA"])
    biquads = np.concatenate((nums, denoms), axis=1)  # (n_channels, 6)
    sos = np.repeat(biquads[:, None, :], n_gamma, axis=1)
    first_highpass = int(raw["Start2PoleHP"]) - 1
    n_channels = int(raw["NChans"])
    if len(hp_nums) != n_channels - first_highpass or nums.shape != (n_channels, 3):
        raise ValueError(f"{file_name}: inconsistent channel counts")
    return Filterbank(
        name=file_name,
        sample_rate=int(raw["Fs"]),
        centre_hz=_read_only(raw["GTn_CentFrq"]),
        erb_hz=_read_only(raw["ERBn_CentFrq"]),
        sos=_read_only(sos),
        delays=_read_only(raw["GTnDelays"], dtype=np.int64),
        first_highpass=first_highpass,
        highpass_sos=_read_only(np.concatenate((hp_nums, hp_denoms), axis=1)),
        recombination_db=float(raw["Recombination_dB"]),
    )


def filterbank_for(severity: str) -> Filterbank:
    """Return the filterbank used for a severity class (MILD and NOTHING share the 1.5-ERB bank)."""
    return load_filterbank(FILTERBANK_FILES[severity])


def gammatone_filter(signal: npt.NDArray[np.float64], bank: Filterbank) -> npt.NDArray[np.float64]:
    """Split ``signal`` into the bank's channels (pyclarity ``gammatone_filterbank``).

    Parameters
    ----------
    signal : ndarray [shape=(n_samples,)]
    bank : Filterbank

    Returns
    -------
    ndarray [shape=(n_channels, n_samples)]
        Channel signals, each advanced by its delay (zeros at the end).
    """
    n_samples = len(signal)
    channels = np.zeros((bank.n_channels, n_samples))
    # One sosfilt call per channel: scipy filters take one filter per call, and the channels'
    # filters differ. This ~20-36-iteration loop is the only structural loop of the stage.
    for ch in range(bank.n_channels):
        filtered = scipy.signal.sosfilt(
            np.array(bank.sos[ch]), signal
        )  # (copy: sosfilt needs a writable sos)
        delay = int(bank.delays[ch])
        if delay < n_samples:
            channels[ch, : n_samples - delay] = filtered[delay:]
    # High-pass sections run after the advance (they see the advanced, zero-filled signal).
    hp = bank.first_highpass
    if hp < bank.n_channels:
        channels[hp:] = _sosfilt_rows(bank.highpass_sos, channels[hp:])
    return channels


#: The kernels' channel count is rounded up to a multiple of this (one AVX-512 register of
#: float64), so that no channel runs in a scalar remainder loop.
SIMD_LANES = 8


def padded_channels(n_channels: int) -> int:
    """``n_channels`` rounded up to a multiple of :data:`SIMD_LANES`."""
    return -(-n_channels // SIMD_LANES) * SIMD_LANES


@functools.lru_cache(maxsize=8)
def _kernel_coefficients(file_name: str, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Biquads and high-passes as (6, n_out), delays as (n_out,).

    Identity high-pass where there is none; channels beyond the bank's are silent (zero
    biquad, identity high-pass, no delay), so their output is exactly zero.
    """
    bank = load_filterbank(file_name)
    n_channels = bank.n_channels
    biquad = np.zeros((6, n_out))
    biquad[:, :n_channels] = bank.sos[:, 0, :].T
    highpass = np.zeros((6, n_out))
    highpass[[0, 3], :] = 1.0  # identity biquad: y = x exactly
    highpass[:, bank.first_highpass : n_channels] = bank.highpass_sos.T
    delays = np.zeros(n_out, dtype=np.int64)
    delays[:n_channels] = bank.delays
    return biquad, highpass, delays


def gammatone_filter_time_major(signal: npt.NDArray[np.float64], bank: Filterbank) -> npt.NDArray[np.float64]:
    """As :func:`gammatone_filter`, but returns ``[shape=(n_samples, n_channels)]``.

    Uses the compiled kernel (all channels in lock-step) when numba is available; it filters
    :func:`padded_channels` lanes (the extra ones silent) and writes the bank's channels.
    """
    if not _kernels.AVAILABLE or bank.sos.shape[1] != 4:
        return np.ascontiguousarray(gammatone_filter(signal, bank).T)
    n_lanes = padded_channels(bank.n_channels)
    biquad, highpass, delays = _kernel_coefficients(bank.name, n_lanes)
    signal = np.ascontiguousarray(signal, dtype=np.float64)
    out = np.empty((len(signal), bank.n_channels))
    no_envelope = np.empty((0, bank.n_channels))  # no rows: skip the envelope pass
    cochlea_forward = _kernels.cochlea_kernels(n_lanes)[0]
    return cochlea_forward(
        signal, biquad, delays, highpass, np.zeros((6, 0)), np.zeros((2, 0)), 0, out, no_envelope
    )


def _sosfilt_rows(biquads: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Filter each row with its own biquad (loop over channels; one C call each)."""
    return np.stack(
        [scipy.signal.sosfilt(np.array(b[None, :]), row) for b, row in zip(biquads, rows, strict=True)]
    )
