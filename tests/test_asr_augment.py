"""The demo's optional waveform augmentation (e032/asr/augment.py): levels, SNRs, padding, off switch."""

from __future__ import annotations

import pytest
import torch

from e032.asr.augment import LevelAndNoise, mean_power, valid_mask


def speech_like_batch(batch: int = 6, n_samples: int = 16000) -> tuple[torch.Tensor, torch.Tensor]:
    """Amplitude-modulated tones of different lengths (zero padded)."""
    gen = torch.Generator().manual_seed(0)
    t = torch.arange(n_samples) / 16000.0
    lengths = torch.linspace(0.5, 1.0, batch)
    rows = []
    for i in range(batch):
        x = 0.08 * torch.sin(2 * torch.pi * (150.0 + 40.0 * i) * t) * (1 + 0.5 * torch.sin(2 * torch.pi * 4 * t))
        x = x + 0.01 * torch.randn(n_samples, generator=gen)
        x[int(round(float(lengths[i]) * n_samples)):] = 0.0
        rows.append(x)
    return torch.stack(rows), lengths


def test_prob_zero_is_the_identity_and_draws_no_random_numbers():
    wavs, lens = speech_like_batch()
    state = torch.get_rng_state()
    assert LevelAndNoise(prob=0.0)(wavs, lens) is wavs
    assert torch.equal(torch.get_rng_state(), state)  # the recipe's default run is unchanged


def test_gain_only_scales_each_utterance_within_the_range():
    wavs, lens = speech_like_batch()
    out = LevelAndNoise(prob=1.0, gain_db=(-20.0, -10.0), noise_prob=0.0)(
        wavs, lens, generator=torch.Generator().manual_seed(1))
    mask = valid_mask(lens, wavs.shape[1])
    gain_db = 10 * torch.log10(mean_power(out, mask) / mean_power(wavs, mask))
    assert torch.all(gain_db >= -20.0 - 1e-4) and torch.all(gain_db <= -10.0 + 1e-4)
    assert gain_db.std() > 0.5  # drawn per utterance, not one gain for the batch
    ratio = out[0, :100] / wavs[0, :100]  # a pure gain: the waveform's shape is unchanged
    torch.testing.assert_close(ratio, ratio[0].expand(100), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 12.0])
def test_noise_is_added_at_the_drawn_snr_and_padding_stays_zero(snr_db):
    wavs, lens = speech_like_batch()
    aug = LevelAndNoise(prob=1.0, gain_db=(0.0, 0.0), snr_db=(snr_db, snr_db), noise_prob=1.0)
    out = aug(wavs, lens, generator=torch.Generator().manual_seed(2))
    mask = valid_mask(lens, wavs.shape[1])
    measured = 10 * torch.log10(mean_power(wavs, mask) / mean_power(out - wavs, mask))
    torch.testing.assert_close(measured, torch.full_like(measured, snr_db), atol=1e-3, rtol=0)
    assert torch.all(out[mask == 0] == 0)


def test_same_seed_same_batch_and_both_noise_kinds_occur():
    wavs, lens = speech_like_batch(batch=16)
    aug = LevelAndNoise(prob=1.0, gain_db=(0.0, 0.0), snr_db=(0.0, 0.0), noise_prob=1.0)
    a = aug(wavs, lens, generator=torch.Generator().manual_seed(3))
    b = aug(wavs, lens, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    # babble is made of the batch's tones, speech-shaped noise is broadband: their spectral flatness
    # differs by orders of magnitude, and a 16-utterance batch has both
    spectrum = torch.fft.rfft(a - wavs, dim=1).abs().square() + 1e-20
    flatness = torch.exp(torch.log(spectrum).mean(dim=1)) / spectrum.mean(dim=1)
    assert flatness.max() / flatness.min() > 10.0


@pytest.mark.parametrize("kwargs", [dict(prob=1.5), dict(noise_prob=-0.1), dict(gain_db=(5.0, -5.0)),
                                    dict(snr_db=(1.0,)), dict(n_babble_talkers=0)])
def test_bad_settings_are_clear_errors(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        LevelAndNoise(**kwargs)
