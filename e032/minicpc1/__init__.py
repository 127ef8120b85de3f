"""Embedded mini-CPC1: a small synthetic dataset in the exact layout and schema of Clarity CPC1.

Generated offline and deterministically (same seed -> byte-identical files) from Debian TTS voices
(espeak-ng, flite). It is the default input of ``make demo`` and of the tests; it stands in for the
real CPC1 archives that users bring themselves. See docs/mini_cpc1.md.

Modules, in pipeline order:

* :mod:`~e032.minicpc1.sentences`: a fixed bank of ordinary sentences and its partition;
* :mod:`~e032.minicpc1.tts`: espeak-ng / flite voices;
* :mod:`~e032.minicpc1.listeners`: synthetic audiograms around the real CPC1 panel;
* :mod:`~e032.minicpc1.scenes`: binaural target + interferer scenes (2 s lead, 1 s tail);
* :mod:`~e032.minicpc1.hearing_aids`: the ``E###`` systems;
* :mod:`~e032.minicpc1.listener_model`: the synthetic listener that makes the labels;
* :mod:`~e032.minicpc1.presets`, :mod:`~e032.minicpc1.generator`: sizes and the writer;
* :mod:`~e032.minicpc1.layouts`: the same data in the CPC2 or CPC3 layout (32 kHz 16-bit).

Glossary: ``signal`` = ``<scene>_<listener>_<system>``; ``p`` = the listener model's probability
that a word is heard; ``index`` = its SII-like band-audibility index; ``ceiling`` = Pearson
correlation between 100 p and ``correctness`` (the best a predictor of p can do).
"""

from e032.minicpc1.generator import generate
from e032.minicpc1.layouts import LAYOUTS, generate_layout
from e032.minicpc1.presets import PRESETS, MiniCPC1Config

__all__ = ["LAYOUTS", "PRESETS", "MiniCPC1Config", "generate", "generate_layout"]
