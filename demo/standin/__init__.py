"""The demo's pre-trained stand-in for SpeechBrain's LibriSpeech transformer (``make standin``).

The real E032 recipe fine-tunes a transformer that SpeechBrain trained on 960 h of LibriSpeech. The
demo cannot download it, so it ships a small model of the same family (``transformer_cpc1.yaml`` with
``demo/asr_demo_overrides.yaml``) trained by this package on offline text-to-speech:

* :mod:`demo.standin.texts` -- general English sentences (the example sentences of WordNet 3.0);
* :mod:`demo.standin.voices` -- a space of espeak-ng and flite talkers (dialect, timbre, rate, pitch),
  with held-out timbres for testing;
* :mod:`demo.standin.degrade` -- offline degradations: noise, hearing-aid-like processing and MSBG
  hearing-loss simulation with random audiograms;
* :mod:`demo.standin.augment` -- on-the-fly waveform augmentation during training;
* :mod:`demo.standin.corpus` -- the corpus builder (resumable, deterministic for a seed);
* :mod:`demo.standin.card` -- the model card (WER per condition, sha256, sizes).

Nothing here is part of the recipe: ``train_asr.py`` trains the model through a hook that only this
package uses. See ``docs/standin_asr.md``.
"""
