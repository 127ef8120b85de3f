"""On-the-fly waveform augmentation of the stand-in's training batches (16 kHz, torch).

Applied to every training batch on top of the offline degradations (:mod:`demo.standin.degrade`), so
that each epoch hears every sentence in new conditions. Per utterance, independently:

* with probability ``noise_prob``, additive noise at a uniform SNR in ``snr_db``: speech-shaped (the
  batch's long-term spectrum), babble (other utterances of the batch), pink or white, equally likely;
* with probability ``tilt_prob``, a spectral tilt of uniform slope in ``tilt_db_per_octave`` around
  1 kHz (a crude hearing-aid or microphone response);
* with probability ``clip_prob``, peak clipping at ``clip_x_rms`` times the RMS;
* always, a gain uniform in ``gain_db`` (the fbank's 80 dB floor and the global normaliser make the
  features level-dependent, and the recipe's signals span tens of dB).

Random numbers come from torch's global generator, which the recipe seeds.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

SAMPLE_RATE = 16000  # Hz, the ASR's rate
TILT_PIVOT_HZ = 1000.0
POWER_FLOOR = 1e-12  # keeps silent utterances from dividing by zero (digital full scale = 1)


def valid_mask(wav_lens: torch.Tensor, n_samples: int) -> torch.Tensor:
    """[batch, time] float mask of the valid samples of relative lengths ``wav_lens`` [batch]."""
    lengths = torch.round(wav_lens * n_samples).long().clamp(1, n_samples)
    return (torch.arange(n_samples, device=wav_lens.device)[None, :] < lengths[:, None]).to(torch.float32)


def mean_power(wavs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean square over the valid samples, per utterance ([batch])."""
    return (wavs.square() * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)


def speech_shaped_noise(wavs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Gaussian noise, one row per utterance, shaped by the batch's long-term magnitude spectrum."""
    spectrum = torch.fft.rfft(wavs * mask, dim=1).abs().mean(dim=0)
    white = torch.randn(wavs.shape, device=wavs.device, dtype=wavs.dtype)
    return torch.fft.irfft(torch.fft.rfft(white, dim=1) * spectrum, n=wavs.shape[1], dim=1)


def babble(wavs: torch.Tensor, mask: torch.Tensor, n_talkers: int) -> torch.Tensor:
    """Per utterance, the sum of ``n_talkers`` other utterances of the batch, circularly shifted in time."""
    batch, n_samples = wavs.shape
    out = torch.zeros_like(wavs)
    if batch < 2:
        return out
    masked = wavs * mask
    for _ in range(n_talkers):
        other = int(torch.randint(1, batch, (1,)))  # a row offset: never the utterance itself
        shift = int(torch.randint(0, n_samples, (1,)))
        out += torch.roll(torch.roll(masked, other, dims=0), shift, dims=1)
    return out


def _uniform(low: float, high: float, n: int, like: torch.Tensor) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, device=like.device, dtype=like.dtype)


def coloured_noise(shape: torch.Size, exponent: float, like: torch.Tensor) -> torch.Tensor:
    """Gaussian noise with power spectrum ``1/f**exponent`` (0 = white, 1 = pink), one row per utterance."""
    white = torch.randn(shape, device=like.device, dtype=like.dtype)
    if exponent == 0:
        return white
    spectrum = torch.fft.rfft(white, dim=1)
    freqs = torch.arange(spectrum.shape[1], device=like.device, dtype=like.dtype).clamp_min(1.0)
    return torch.fft.irfft(spectrum / freqs ** (exponent / 2), n=shape[1], dim=1)


def tilt(wavs: torch.Tensor, slope_db_per_octave: torch.Tensor) -> torch.Tensor:
    """Each row filtered by a gain of ``slope`` dB per octave about :data:`TILT_PIVOT_HZ` (zero phase)."""
    n_samples = wavs.shape[1]
    freqs = torch.fft.rfftfreq(n_samples, 1.0 / SAMPLE_RATE).to(wavs).clamp_min(50.0)
    gain_db = slope_db_per_octave[:, None] * torch.log2(freqs / TILT_PIVOT_HZ)[None, :]
    return torch.fft.irfft(torch.fft.rfft(wavs, dim=1) * 10.0 ** (gain_db / 20.0), n=n_samples, dim=1)


class StandinAugment(torch.nn.Module):
    """Random noise, tilt, clipping and gain per utterance (module docstring); padding stays zero."""

    def __init__(
        self,
        noise_prob: float = 0.5,
        snr_db: Sequence[float] = (-5.0, 25.0),
        tilt_prob: float = 0.3,
        tilt_db_per_octave: Sequence[float] = (-6.0, 6.0),
        clip_prob: float = 0.1,
        clip_x_rms: Sequence[float] = (1.0, 3.0),
        gain_db: Sequence[float] = (-20.0, 10.0),
        n_babble_talkers: int = 4,
    ):
        super().__init__()
        for name, value in (("noise_prob", noise_prob), ("tilt_prob", tilt_prob), ("clip_prob", clip_prob)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        self.noise_prob, self.tilt_prob, self.clip_prob = (
            float(noise_prob),
            float(tilt_prob),
            float(clip_prob),
        )
        self.snr_db, self.tilt_db_per_octave = tuple(snr_db), tuple(tilt_db_per_octave)
        self.clip_x_rms, self.gain_db = tuple(clip_x_rms), tuple(gain_db)
        self.n_babble_talkers = int(n_babble_talkers)

    def forward(self, wavs: torch.Tensor, wav_lens: torch.Tensor) -> torch.Tensor:
        """Augmented copy of ``wavs`` [batch, time] (relative lengths ``wav_lens`` [batch])."""
        batch, n_samples = wavs.shape
        mask = valid_mask(wav_lens, n_samples)
        wavs = wavs * mask
        power = mean_power(wavs, mask)
        kinds = torch.randint(0, 4, (batch,), device=wavs.device)
        candidates = torch.stack(
            [
                speech_shaped_noise(wavs, mask),
                babble(wavs, mask, self.n_babble_talkers),
                coloured_noise(wavs.shape, 1.0, wavs),
                coloured_noise(wavs.shape, 0.0, wavs),
            ]
        )
        noise = candidates[kinds, torch.arange(batch)] * mask
        snr_db = _uniform(*self.snr_db, batch, wavs)
        scale = torch.sqrt(power / mean_power(noise, mask).clamp_min(POWER_FLOOR) * 10.0 ** (-snr_db / 10.0))
        noisy = torch.rand(batch, device=wavs.device) < self.noise_prob
        wavs = wavs + torch.where(noisy, scale, torch.zeros_like(scale))[:, None] * noise
        tilted = torch.rand(batch, device=wavs.device) < self.tilt_prob
        slopes = torch.where(
            tilted, _uniform(*self.tilt_db_per_octave, batch, wavs), torch.zeros(batch).to(wavs)
        )
        wavs = torch.where(tilted[:, None], tilt(wavs, slopes), wavs) * mask
        limit = _uniform(*self.clip_x_rms, batch, wavs) * mean_power(wavs, mask).sqrt()
        clipped = torch.rand(batch, device=wavs.device) < self.clip_prob
        wavs = torch.where(
            clipped[:, None], torch.maximum(torch.minimum(wavs, limit[:, None]), -limit[:, None]), wavs
        )
        gain = 10.0 ** (_uniform(*self.gain_db, batch, wavs) / 20.0)
        return wavs * gain[:, None] * mask
