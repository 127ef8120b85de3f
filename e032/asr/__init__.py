"""E032's SpeechBrain transformer ASR: checkpoint loading, model API and the joint CTC/attention beam search.

* :mod:`e032.asr.checkpoint`: find and load SpeechBrain 0.5.x / 1.x ``save/`` folders and the Hugging Face
  768-d release files (key renames, averaging, normaliser statistics).
* :mod:`e032.asr.model`: build the modules from ``transformer_cpc1.yaml`` and extract the encoder and decoder
  representations (:func:`e032.asr.model.load_asr`).
* :mod:`e032.asr.beam_search`: our port of SpeechBrain 0.5.x's ``S2STransformerBeamSearch`` with the
  full-vocabulary CTC prefix scorer, returning the decoder states the original recipe uses.
"""
