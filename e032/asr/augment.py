"""Waveform augmentation for the demo's stand-in ASR: random level and additive noise.

Not part of the original recipe (``transformer_cpc1.yaml`` keeps it off: ``wav_augment_prob: 0``). The real
recipe starts from a LibriSpeech model; the demo's stand-in is pre-trained on clean TTS speech only and
then does not recognise the noisy mini-CPC1 speech, so its decoder states say little about
intelligibility. With this module switched on during pre-training (``DEMO_WAV_AUGMENT=1 make demo``,
README "Results"), each utterance, with probability ``prob``, is scaled by a random gain and, with
probability ``noise_prob``, mixed with noise at a random SNR. Noise kinds, equally likely:

* **speech-shaped noise**: Gaussian noise with the long-term magnitude spectrum of the batch;
* **babble**: the sum of ``n_babble_talkers`` other utterances of the batch, circularly shifted.

The SNR is the ratio of the utterance's mean power to the noise's over the utterance's valid (unpadded)
samples. Random numbers come from torch's global generator (seeded by the recipe) unless a
``generator`` is given.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

#: power floor that keeps silent utterances from dividing by zero (digital full scale = 1)
POWER_FLOOR = 1e-12


def valid_mask(wav_lens: torch.Tensor, n_samples: int) -> torch.Tensor:
    """[batch, time] float mask of the valid samples of relative lengths ``wav_lens``."""
    lengths = torch.round(wav_lens * n_samples).long().clamp(1, n_samples)
    return (torch.arange(n_samples, device=wav_lens.device)[None, :] < lengths[:, None]).float()


def mean_power(wavs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean square over the valid samples, per utterance ([batch])."""
    return (wavs.square() * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1.0)


def speech_shaped_noise(wavs: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Gaussian noise, one row per utterance, with the batch's long-term magnitude spectrum."""
    spectrum = torch.fft.rfft(wavs * mask, dim=1).abs().mean(dim=0)
    white = torch.randn(wavs.shape, generator=generator, device=wavs.device, dtype=wavs.dtype)
    return torch.fft.irfft(torch.fft.rfft(white, dim=1) * spectrum, n=wavs.shape[1], dim=1)


def babble(wavs: torch.Tensor, mask: torch.Tensor, n_talkers: int, generator: torch.Generator | None) -> torch.Tensor:
    """For each utterance, the sum of ``n_talkers`` other utterances of the batch, circularly shifted."""
    batch, n_samples = wavs.shape
    out = torch.zeros_like(wavs)
    if batch < 2:
        return out
    masked = wavs * mask
    for _ in range(n_talkers):
        other = int(torch.randint(1, batch, (1,), generator=generator))
        shift = int(torch.randint(0, n_samples, (1,), generator=generator))
        out += torch.roll(torch.roll(masked, other, dims=0), shift, dims=1)
    return out


class LevelAndNoise(torch.nn.Module):
    """Random gain (dB) and additive noise at a random SNR (dB), per utterance.

    Arguments
    ---------
    prob : float
        Probability that an utterance is augmented at all (0 = the module is the identity).
    gain_db : (low, high)
        Uniform range of the gain applied to the augmented utterance (speech and noise together).
    snr_db : (low, high)
        Uniform range of the speech-to-noise ratio.
    noise_prob : float
        Probability that an augmented utterance gets noise (otherwise only the gain).
    n_babble_talkers : int
        Utterances summed into one babble.
    """

    def __init__(self, prob: float = 1.0, gain_db: Sequence[float] = (-10.0, 10.0),
                 snr_db: Sequence[float] = (0.0, 25.0), noise_prob: float = 0.5, n_babble_talkers: int = 3):
        super().__init__()
        for name, value in (("prob", prob), ("noise_prob", noise_prob)):
            if not 0.0 <= float(value) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        for name, pair in (("gain_db", gain_db), ("snr_db", snr_db)):
            if len(pair) != 2 or float(pair[0]) > float(pair[1]):
                raise ValueError(f"{name} must be a (low, high) pair with low <= high, got {pair}")
        if int(n_babble_talkers) < 1:
            raise ValueError(f"n_babble_talkers must be >= 1, got {n_babble_talkers}")
        self.prob = float(prob)
        self.gain_db = (float(gain_db[0]), float(gain_db[1]))
        self.snr_db = (float(snr_db[0]), float(snr_db[1]))
        self.noise_prob = float(noise_prob)
        self.n_babble_talkers = int(n_babble_talkers)

    def forward(self, wavs: torch.Tensor, wav_lens: torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """Augmented copy of ``wavs`` ([batch, time]); padding stays zero."""
        if self.prob == 0.0:
            return wavs
        batch, n_samples = wavs.shape

        def draw() -> torch.Tensor:
            return torch.rand(batch, generator=generator, device=wavs.device, dtype=wavs.dtype)

        mask = valid_mask(wav_lens, n_samples)
        augmented = draw() < self.prob
        noisy = augmented & (draw() < self.noise_prob)
        use_babble = draw() < 0.5
        snr_db = self.snr_db[0] + (self.snr_db[1] - self.snr_db[0]) * draw()
        gain_db = self.gain_db[0] + (self.gain_db[1] - self.gain_db[0]) * draw()

        noise = torch.where(use_babble[:, None], babble(wavs, mask, self.n_babble_talkers, generator),
                            speech_shaped_noise(wavs, mask, generator)) * mask
        noise_scale = torch.sqrt(mean_power(wavs, mask) / mean_power(noise, mask).clamp_min(POWER_FLOOR)
                                 * 10.0 ** (-snr_db / 10.0))
        mixed = wavs + torch.where(noisy, noise_scale, torch.zeros_like(noise_scale))[:, None] * noise
        gain = torch.where(augmented, 10.0 ** (gain_db / 20.0), torch.ones_like(gain_db))
        return mixed * gain[:, None] * mask
