"""Compiled (numba) kernels for the cochlea's recursive filters, vectorised across channels.

scipy filters take one filter per call, so a filterbank costs one pass over the signal per
channel and section. These kernels run all channels of a bank in lock-step over time, with the
channels in the innermost (contiguous) loop, which the compiler turns into SIMD code. They
compute the same recursions as ``scipy.signal.sosfilt`` / ``lfilter`` (transposed direct form
II, same operation order, no fused multiply-add), so results agree to floating-point rounding.

The cochlea runs as two fused passes over time (:func:`cochlea_kernels`): gammatone bank +
forward pass of the envelope filter, then backward envelope pass + recruitment gain + channel
sum; so the channels x samples arrays are written once and read once. Channels are padded to a
multiple of 8 SIMD lanes (silent lanes), and the lane count is a compile-time constant. The gain's
power law is :func:`power` (vectorisable, relative error < 1e-13; the only code compiled with
fused multiply-add).

Layout: time first, ``(n_samples, n_channels)``. Large arrays are allocated by numpy and passed
in: numpy's allocator uses huge pages, numba's does not, and page faults on ~100 MB of fresh
memory otherwise cost as much as the filtering. If numba is not installed (or
``MSBG_BACKEND=scipy``), :data:`AVAILABLE` is False and msbg uses its scipy code path.
"""

from __future__ import annotations

import functools
import math
import os

import numpy as np

try:  # numba is a pinned requirement, but msbg stays usable (slower) without it
    import numba
except ImportError:  # pragma: no cover - exercised only where numba is absent
    numba = None

AVAILABLE: bool = numba is not None and os.environ.get("MSBG_BACKEND", "numba") != "scipy"


def _jit(func=None, *, contract: bool = False):
    """Compile with numba (when present); ``contract`` allows fused multiply-add."""
    if func is None:
        return lambda f: _jit(f, contract=contract)
    if numba is None:
        return func
    return numba.njit(
        cache=True,
        nogil=True,
        error_model="numpy",
        boundscheck=False,
        fastmath={"contract"} if contract else False,
    )(func)


if numba is not None:
    from llvmlite import ir as _ir
    from numba.core import types as _types
    from numba.extending import intrinsic as _intrinsic

    @_intrinsic
    def _float_bits(typingctx, value):
        """The IEEE-754 bits of a float64 as an int64 (a register bit cast)."""

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], _ir.IntType(64))

        return _types.int64(_types.float64), codegen

    @_intrinsic
    def _bits_float(typingctx, value):
        """The float64 whose IEEE-754 bits are the int64 ``value``."""

        def codegen(context, builder, signature, args):
            return builder.bitcast(args[0], _ir.DoubleType())

        return _types.float64(_types.int64), codegen

else:  # pragma: no cover - exercised only where numba is absent

    def _float_bits(value):
        return int(np.float64(value).view(np.int64))

    def _bits_float(value):
        return float(np.int64(value).view(np.float64))


# Constants of :func:`power` (plain math: series coefficients and IEEE-754 bit patterns).
_SQRT_HALF_BITS = int(np.float64(math.sqrt(0.5)).view(np.int64))
_ROUND_MAGIC = 1.5 * 2.0**52  # x + this - this rounds x to an integer (|x| < 2**51)
_ROUND_MAGIC_BITS = int(np.float64(_ROUND_MAGIC).view(np.int64))
_LN2 = math.log(2.0)
_INV_LN2 = 1.0 / math.log(2.0)
# Series to double precision: the first omitted terms are < 1e-13 relative (a shorter series,
# ~1e-9, was tried: 2 % faster, but it flips 16-bit samples of the ASR data, see docs/msbg.md).
_A0, _A1, _A2, _A3, _A4, _A5, _A6, _A7 = (1.0 / (2 * j + 1) for j in range(8))  # atanh series
_E0, _E1, _E2, _E3, _E4, _E5, _E6, _E7, _E8, _E9, _E10, _E11 = (
    1.0 / math.factorial(j)
    for j in range(12)  # exp series
)


@_jit(contract=True)
def power(base, exponent):  # pragma: no cover - compiled
    """``base ** exponent`` for a normal ``base > 0``, in branch-free arithmetic that the
    compiler vectorises (numpy's ``np.power`` cannot be fused into a kernel).

    ``2 ** (exponent * log2(base))``: ``log2`` from the exponent bits plus ``2 atanh(s)`` of the
    mantissa ``m`` in [sqrt(1/2), sqrt(2)) (``s = (m - 1) / (m + 1)``, series to ``s**15``), and
    ``2 ** z`` as ``2 ** round(z)`` (exponent bits) times ``exp((z - round(z)) ln 2)`` (series
    to degree 11). Relative error < 1e-13 (tested); ``z`` is clamped to +-1020 (no overflow).
    """
    bits = _float_bits(base)
    octave = (bits - _SQRT_HALF_BITS) >> 52
    mantissa = _bits_float(bits - (octave << 52))
    f = mantissa - 1.0
    s = f / (2.0 + f)
    s2 = s * s
    q = _A7
    q = q * s2 + _A6
    q = q * s2 + _A5
    q = q * s2 + _A4
    q = q * s2 + _A3
    q = q * s2 + _A2
    q = q * s2 + _A1
    q = q * s2 + _A0
    z = exponent * (octave + (2.0 * s * q) * _INV_LN2)
    z = min(max(z, -1020.0), 1020.0)
    shifted = z + _ROUND_MAGIC
    whole = shifted - _ROUND_MAGIC
    t = (z - whole) * _LN2
    e = _E11
    e = e * t + _E10
    e = e * t + _E9
    e = e * t + _E8
    e = e * t + _E7
    e = e * t + _E6
    e = e * t + _E5
    e = e * t + _E4
    e = e * t + _E3
    e = e * t + _E2
    e = e * t + _E1
    e = e * t + _E0
    return e * _bits_float((_float_bits(shifted) - _ROUND_MAGIC_BITS + 1023) << 52)


@functools.cache
def cochlea_kernels(n_lanes: int):
    """The fused cochlea kernels ``(cochlea_forward, recruit_backward)`` compiled for
    ``n_lanes`` channels (a multiple of 8).

    The lane count is a compile-time constant of each variant, so the compiler unrolls the
    per-sample loops over lanes into a fixed number of vector instructions (measured: ~20 %
    faster for 24 lanes than a run-time count). One variant per filterbank size (24, 32, 40);
    all are cached on disk like the other kernels.
    """

    @_jit
    def cochlea_forward(
        x, biquad, delays, highpass, env_ba, env_zi, padlen, chan, fwd
    ):  # pragma: no cover - compiled
        """Gammatone channels of ``x`` [shape=(n,)] into ``chan`` [shape=(n, n_out)], and (if
        ``fwd`` has rows) the forward pass of the envelope filter into ``fwd``.

        Gammatone, per channel: the biquad ``biquad[:, c]`` (b0 b1 b2 1 a1 a2) applied 4 times in
        cascade, the result advanced by ``delays[c]`` samples (zeros at the end), then the
        high-pass ``highpass[:, c]`` (an identity biquad 1 0 0 1 0 0 for channels without one,
        which is exact). The coefficient arrays may have more channels (lanes) than ``chan`` has
        columns (padding to a multiple of the SIMD width, so no channel runs in a scalar remainder
        loop; padded lanes are silent); only the first ``n_out`` are written.

        The filters run in "raw" time ``i`` (all channels in SIMD lanes, no per-channel branch):
        the high-pass of channel ``c`` sees its cascade output for ``delays[c] <= i < n`` and
        zeros elsewhere (zero input keeps a zero state, so this equals high-passing the advanced,
        zero-filled channel). Raw rows go to a small ring buffer (in cache); each block, the rows
        complete in every channel are copied out advanced: ``chan[m, c] = raw[m + delays[c], c]``.

        Envelope (``fwd`` [shape=(n + padlen, n_out)]): while those rows are still in cache,
        ``|chan|`` is run through the first (forward) pass of ``filtfilt(b, a, |chan|, padlen)``
        (``env_ba`` (6, n_out) = b0 b1 b2 1 a1 a2, ``env_zi`` (2, n_out) the ``lfilter_zi`` steady
        state; odd extension of ``padlen`` samples at both ends). ``fwd[m]`` is the forward output
        at sample ``m``; the rows ``n ... n + padlen - 1`` hold the end extension. The start
        extension only sets the initial state (the backward pass never reads it).
        """
        n = x.shape[0]
        n_out = chan.shape[1]
        with_envelope = fwd.shape[0] > 0
        b0, b1, b2, a1, a2 = biquad[0], biquad[1], biquad[2], biquad[4], biquad[5]
        h_b0, h_b1, h_b2 = highpass[0], highpass[1], highpass[2]
        h_a1, h_a2 = highpass[4], highpass[5]
        e_b0, e_b1, e_b2 = env_ba[0], env_ba[1], env_ba[2]
        e_a1, e_a2 = env_ba[4], env_ba[5]
        block = 256  # raw rows per block
        d_max = 0
        for c in range(n_lanes):
            d_max = max(d_max, delays[c])
        ring_rows = 1  # must hold the raw rows of the last d_max + block time steps
        while ring_rows < block + d_max:
            ring_rows *= 2
        ring_mask = ring_rows - 1
        ring = np.empty((ring_rows, n_lanes))
        z = np.zeros((8, n_lanes))  # 2 states x 4 sections
        h0 = np.zeros(n_lanes)
        h1 = np.zeros(n_lanes)
        work = np.empty(n_lanes)
        ez0 = np.zeros(n_out)  # envelope filter state
        ez1 = np.zeros(n_out)
        env = np.empty(n_out)
        n_done = 0  # advanced rows already copied to chan
        n_enveloped = -1  # advanced rows through the envelope filter (-1: not started)
        for i0 in range(0, n + d_max, block):
            i1 = min(i0 + block, n + d_max)
            for i in range(i0, i1):
                xi = x[i] if i < n else 0.0
                for c in range(n_lanes):  # unrolled cascade of the 4 identical sections
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
                for c in range(n_lanes):  # high-pass of the advanced, zero-filled channel
                    v = work[c] if (i >= delays[c]) & (i < n) else 0.0
                    y = h_b0[c] * v + h0[c]
                    h0[c] = h_b1[c] * v - h_a1[c] * y + h1[c]
                    h1[c] = h_b2[c] * v - h_a2[c] * y
                    work[c] = y
                ring[i & ring_mask, :] = work
            n_ready = min(n, i1 - d_max)  # advanced rows complete in every channel
            for m in range(n_done, n_ready):
                for c in range(n_out):
                    chan[m, c] = ring[(m + delays[c]) & ring_mask, c]
            n_done = max(n_done, n_ready)
            if not with_envelope:
                continue
            if n_enveloped < 0 and n_done > padlen:  # start extension: 2 x[0] - x[padlen - k]
                for c in range(n_out):
                    first = 2.0 * abs(chan[0, c]) - abs(chan[padlen, c])
                    ez0[c] = env_zi[0, c] * first
                    ez1[c] = env_zi[1, c] * first
                for k in range(padlen):
                    for c in range(n_out):
                        v = 2.0 * abs(chan[0, c]) - abs(chan[padlen - k, c])
                        y = ez0[c] + e_b0[c] * v
                        ez0[c] = ez1[c] + v * e_b1[c] - y * e_a1[c]
                        ez1[c] = v * e_b2[c] - y * e_a2[c]
                n_enveloped = 0
            if n_enveloped >= 0:
                for m in range(n_enveloped, n_done):
                    for c in range(n_out):
                        v = abs(chan[m, c])
                        y = ez0[c] + e_b0[c] * v
                        ez0[c] = ez1[c] + v * e_b1[c] - y * e_a1[c]
                        ez1[c] = v * e_b2[c] - y * e_a2[c]
                        env[c] = y
                    fwd[m, :] = env
                n_enveloped = n_done
        if with_envelope:
            for j in range(padlen):  # end extension: 2 x[n - 1] - x[n - 2 - j]
                for c in range(n_out):
                    v = 2.0 * abs(chan[n - 1, c]) - abs(chan[n - 2 - j, c])
                    y = ez0[c] + e_b0[c] * v
                    ez0[c] = ez1[c] + v * e_b1[c] - y * e_a1[c]
                    ez1[c] = v * e_b2[c] - y * e_a2[c]
                    env[c] = y
                fwd[n + j, :] = env
        return chan

    @_jit
    def recruit_backward(
        chan, fwd, env_ba, env_zi, floor, ceiling, exponents, scale, out
    ):  # pragma: no cover - compiled
        """Backward envelope pass, recruitment gain and weighted channel sum, in one pass.

        ``fwd`` is the forward pass from :func:`cochlea_forward`; the backward pass starts from
        ``env_zi * fwd[-1]`` at the end of the extension. Each envelope sample ``e`` is capped at
        ``ceiling``, floored at ``floor`` (pyclarity's order), and becomes the gain
        ``(e / ceiling) ** exponents[c]`` (:func:`power`);
        ``out[m] = scale * sum_c chan[m, c] * gain[m, c]``. The channel sum runs in 8 partial
        sums (lanes) of every 8th channel, then pairwise: ``n_out`` must be a multiple of 8 (pad
        with silent channels).

        Time runs backwards in blocks: the gains of a block are computed row by row (the filter
        recursion), then summed row by row while the block is in cache.
        """
        n = chan.shape[0]
        n_ch = n_lanes
        n_ext = fwd.shape[0]
        e_b0, e_b1, e_b2 = env_ba[0], env_ba[1], env_ba[2]
        e_a1, e_a2 = env_ba[4], env_ba[5]
        z0 = np.empty(n_ch)
        z1 = np.empty(n_ch)
        env = np.empty(n_ch)
        for c in range(n_ch):
            z0[c] = env_zi[0, c] * fwd[n_ext - 1, c]
            z1[c] = env_zi[1, c] * fwd[n_ext - 1, c]
        for k in range(n_ext - 1, n - 1, -1):  # the end extension: state only
            for c in range(n_ch):
                v = fwd[k, c]
                y = z0[c] + e_b0[c] * v
                z0[c] = z1[c] + v * e_b1[c] - y * e_a1[c]
                z1[c] = v * e_b2[c] - y * e_a2[c]
        block = 64
        gain = np.empty((block, n_ch))
        acc = np.empty(8)
        for k1 in range(n, 0, -block):
            k0 = max(k1 - block, 0)
            for k in range(k1 - 1, k0 - 1, -1):
                for c in range(n_ch):
                    v = fwd[k, c]
                    y = z0[c] + e_b0[c] * v
                    z0[c] = z1[c] + v * e_b1[c] - y * e_a1[c]
                    z1[c] = v * e_b2[c] - y * e_a2[c]
                    if y > ceiling:
                        y = ceiling
                    if y < floor:
                        y = floor
                    env[c] = y / ceiling
                for c in range(n_ch):
                    gain[k - k0, c] = power(env[c], exponents[c])
            for k in range(k0, k1):
                t = k - k0
                for lane in range(8):
                    acc[lane] = chan[k, lane] * gain[t, lane]
                for j in range(8, n_ch, 8):
                    for lane in range(8):
                        acc[lane] += chan[k, j + lane] * gain[t, j + lane]
                even = (acc[0] + acc[4]) + (acc[2] + acc[6])
                odd = (acc[1] + acc[5]) + (acc[3] + acc[7])
                out[k] = (even + odd) * scale
        return out

    return cochlea_forward, recruit_backward


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
def smear_rescale(spectrum, magnitude, smeared_power, out):  # pragma: no cover - compiled
    """Into ``out``: bins 0..255 get magnitude ``sqrt(|p|)`` and the phase of ``spectrum``,
    turned by +90 degrees where ``p < 0``; the Nyquist bin is zeroed (pyclarity ``smear3``).

    ``spectrum`` [shape=(n_frames, >= 256)] complex128; ``magnitude`` [shape=(n_frames, 256)]
    float64; ``smeared_power`` [shape=(n_frames, 256)] float32 or float64; ``out``
    [shape=(n_frames, 257)] complex64 or complex128 (the arithmetic is float64). The phasor is
    ``X * (1 / |X|)`` (``|X| = 0`` -> 1), which is what numpy's complex / real division computes.
    """
    n_frames, n_bins = magnitude.shape
    for k in range(n_frames):
        for b in range(n_bins):
            mag = magnitude[k, b]
            inv = 1.0 / (mag + (1.0 if mag == 0 else 0.0))
            p = np.float64(smeared_power[k, b])
            root = np.sqrt(abs(p))
            x = spectrum[k, b]
            re = root * (x.real * inv)
            im = root * (x.imag * inv)
            if p < 0:
                out[k, b] = complex(-im, re)
            else:
                out[k, b] = complex(re, im)
        out[k, n_bins] = 0.0
    return out
