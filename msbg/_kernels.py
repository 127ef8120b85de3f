"""Compiled (numba) kernels for the cochlea's recursive filters, vectorised across channels.

scipy filters take one filter per call, so a filterbank costs one pass over the signal per
channel and section. These kernels run all channels of a bank in lock-step over time, with the
channels in the innermost (contiguous) loop, which the compiler turns into SIMD code. They
compute the same recursions as ``scipy.signal.sosfilt`` / ``lfilter`` (transposed direct form
II, same operation order, no fused multiply-add), so results agree to floating-point rounding.

Layout: time first, ``(n_samples, n_channels)``. Large arrays are allocated by numpy and passed
in: numpy's allocator uses huge pages, numba's does not, and page faults on ~100 MB of fresh
memory otherwise cost as much as the filtering. If numba is not installed (or
``MSBG_BACKEND=scipy``), :data:`AVAILABLE` is False and msbg uses its scipy code path.
"""

from __future__ import annotations

import os

import numpy as np

try:  # numba is a pinned requirement, but msbg stays usable (slower) without it
    import numba
except ImportError:  # pragma: no cover - exercised only where numba is absent
    numba = None

AVAILABLE: bool = numba is not None and os.environ.get("MSBG_BACKEND", "numba") != "scipy"


def _jit(func):
    if numba is None:
        return func
    return numba.njit(cache=True, nogil=True, error_model="numpy", boundscheck=False)(func)


@_jit
def gammatone4_nc(x, biquad, delays, highpass, out):  # pragma: no cover - compiled
    """All gammatone channels of ``x`` [shape=(n,)] into ``out`` [shape=(n, n_channels)].

    Per channel: the biquad ``biquad[:, c]`` (b0 b1 b2 1 a1 a2) applied 4 times in cascade,
    the result advanced by ``delays[c]`` samples (zeros at the end), then the high-pass
    ``highpass[:, c]`` (an identity biquad 1 0 0 1 0 0 for channels without one, which is
    exact). The advance and high-pass run in the same time loop: the high-pass of advanced
    sample ``m`` is computed at time ``m + delay``; the zero tail is filtered at the end.
    """
    n = x.shape[0]
    n_channels = biquad.shape[1]
    b0, b1, b2, a1, a2 = biquad[0], biquad[1], biquad[2], biquad[4], biquad[5]
    h_b0, h_b1, h_b2 = highpass[0], highpass[1], highpass[2]
    h_a1, h_a2 = highpass[4], highpass[5]
    z = np.zeros((8, n_channels))  # 2 states x 4 sections
    h = np.zeros((2, n_channels))
    work = np.empty(n_channels)
    for i in range(n):
        xi = x[i]
        for c in range(n_channels):  # unrolled cascade of the 4 identical sections
            v = xi
            y = b0[c] * v + z[0, c]
            z[0, c] = b1[c] * v - a1[c] * y + z[1, c]
            z[1, c] = b2[c] * v - a2[c] * y
            v = y
            y = b0[c] * v + z[2, c]
            z[2, c] = b1[c] * v - a1[c] * y + z[3, c]
            z[3, c] = b2[c] * v - a2[c] * y
            v = y
            y = b0[c] * v + z[4, c]
            z[4, c] = b1[c] * v - a1[c] * y + z[5, c]
            z[5, c] = b2[c] * v - a2[c] * y
            v = y
            y = b0[c] * v + z[6, c]
            z[6, c] = b1[c] * v - a1[c] * y + z[7, c]
            z[7, c] = b2[c] * v - a2[c] * y
            work[c] = y
        for c in range(n_channels):
            m = i - delays[c]
            if m >= 0:
                v = work[c]
                y = h_b0[c] * v + h[0, c]
                h[0, c] = h_b1[c] * v - h_a1[c] * y + h[1, c]
                h[1, c] = h_b2[c] * v - h_a2[c] * y
                out[m, c] = y
    for c in range(n_channels):  # the zero-filled tail of each advanced channel
        for m in range(max(n - delays[c], 0), n):
            y = h[0, c]
            h[0, c] = h[1, c] - h_a1[c] * y
            h[1, c] = -h_a2[c] * y
            out[m, c] = y
    return out


@_jit
def envelope_nc(channels, ba, zi, padlen, floor, ceiling, buf):  # pragma: no cover - compiled
    """Zero-phase low-passed |channels| (n, n_channels), as ``filtfilt(b, a, |x|, padlen)``.

    ``buf`` [shape=(n + 2 padlen, n_channels)] is the work array; the result is its middle.

    If ``ceiling > 0`` the result is clipped to ``[floor, ceiling]`` and divided by ``ceiling``
    on the way out (the first steps of the recruitment gain), saving two passes over memory.

    ``ba``: (6, n_channels) = b0 b1 b2 1 a1 a2 per channel; ``zi``: (2, n_channels), the
    ``lfilter_zi`` steady state. Odd extension of ``padlen`` samples at both ends, forward pass
    from ``zi * first``, backward pass from ``zi * last``.
    """
    n, n_channels = channels.shape
    n_ext = n + 2 * padlen
    for k in range(padlen):  # 2 x[0] - x[padlen - k]
        for c in range(n_channels):
            buf[k, c] = 2.0 * abs(channels[0, c]) - abs(channels[padlen - k, c])
    for k in range(n):
        for c in range(n_channels):
            buf[k + padlen, c] = abs(channels[k, c])
    for k in range(n + padlen, n_ext):  # 2 x[-1] - x[-2 - (k - n - padlen)]
        m = n - 2 - (k - n - padlen)
        for c in range(n_channels):
            buf[k, c] = 2.0 * abs(channels[n - 1, c]) - abs(channels[m, c])
    b0, b1, b2, a1, a2 = ba[0], ba[1], ba[2], ba[4], ba[5]
    z0 = np.empty(n_channels)
    z1 = np.empty(n_channels)
    work = np.empty(n_channels)
    for c in range(n_channels):  # forward pass, from the steady state of the first value
        z0[c] = zi[0, c] * buf[0, c]
        z1[c] = zi[1, c] * buf[0, c]
    for k in range(n_ext):
        for c in range(n_channels):
            v = buf[k, c]
            y = z0[c] + b0[c] * v
            z0[c] = z1[c] + v * b1[c] - y * a1[c]
            z1[c] = v * b2[c] - y * a2[c]
            work[c] = y
        buf[k, :] = work
    for c in range(n_channels):  # backward pass, from the steady state of the last value
        z0[c] = zi[0, c] * buf[n_ext - 1, c]
        z1[c] = zi[1, c] * buf[n_ext - 1, c]
    clip = ceiling > 0
    for k in range(n_ext - 1, -1, -1):
        for c in range(n_channels):
            v = buf[k, c]
            y = z0[c] + b0[c] * v
            z0[c] = z1[c] + v * b1[c] - y * a1[c]
            z1[c] = v * b2[c] - y * a2[c]
            if clip:  # pyclarity's order: cap at the ceiling, then floor
                if y > ceiling:
                    y = ceiling
                if y < floor:
                    y = floor
                y = y / ceiling
            work[c] = y
        buf[k, :] = work
    return buf[padlen : n + padlen]


@_jit
def weighted_channel_sum(channels, gains, out):  # pragma: no cover - compiled
    """``out = sum_c channels[:, c] * gains[:, c]`` [shape=(n,)], channels added in order."""
    n, n_channels = channels.shape
    for i in range(n):
        acc = 0.0
        for c in range(n_channels):
            acc += channels[i, c] * gains[i, c]
        out[i] = acc
    return out


@_jit
def smear_rescale(spectrum, magnitude, smeared_power):  # pragma: no cover - compiled
    """In place: bins 0..255 of ``spectrum`` get magnitude ``sqrt(|p|)`` and their own phase,
    turned by +90 degrees where ``p < 0``; the Nyquist bin is zeroed (pyclarity ``smear3``).

    ``spectrum`` [shape=(n_frames, 257)] complex; ``magnitude``, ``smeared_power``
    [shape=(n_frames, 256)]. The phasor is ``X * (1 / |X|)`` (``|X| = 0`` -> 1), which is what
    numpy's complex / real division computes.
    """
    n_frames, n_bins = magnitude.shape
    for k in range(n_frames):
        for b in range(n_bins):
            mag = magnitude[k, b]
            inv = 1.0 / (mag + (1.0 if mag == 0 else 0.0))
            p = smeared_power[k, b]
            root = np.sqrt(abs(p))
            x = spectrum[k, b]
            re = root * (x.real * inv)
            im = root * (x.imag * inv)
            if p < 0:
                spectrum[k, b] = complex(-im, re)
            else:
                spectrum[k, b] = complex(re, im)
        spectrum[k, n_bins] = 0.0
    return spectrum
