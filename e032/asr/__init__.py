"""E032's SpeechBrain transformer ASR: checkpoint loading, model API and the joint CTC/attention beam search.

* :mod:`e032.asr.checkpoint`: find and load SpeechBrain 0.5.x / 1.x ``save/`` folders and the Hugging Face
  768-d release files (key renames, averaging, normaliser statistics).
* :mod:`e032.asr.model`: build the modules from ``transformer_cpc1.yaml`` and extract the encoder and decoder
  representations (:func:`e032.asr.model.load_asr`).
* :mod:`e032.asr.beam_search`: our port of SpeechBrain 0.5.x's ``S2STransformerBeamSearch`` with the
  full-vocabulary CTC prefix scorer, returning the decoder states the original recipe uses.
* :mod:`e032.asr.training`: the fine-tuning ``Brain``; :mod:`e032.asr.sb05`: SpeechBrain 0.5.9's training
  arithmetic (batch-wide Fbank floor, decoder without memory mask, truncated CTC lengths, 0.5.9
  normaliser update), each with a switch back to 1.1.2; :mod:`e032.asr.train_oracle`: the check of the
  training loop against the training-step oracle of the original code.
"""
