"""Sizes of the tiny ASR of the oracle sets (``tests/data/asr_reference/tiny_config.json``), as
overrides of ``transformer_cpc1.yaml``: one place for the tests that build it."""

TINY_ASR_SIZES = {
    "d_model": 32,
    "nhead": 4,
    "num_encoder_layers": 2,
    "num_decoder_layers": 2,
    "d_ffn": 64,
    "cnn_channels": [8, 16, 16],
    "transformer_input_size": 320,
    "output_neurons": 100,
}
