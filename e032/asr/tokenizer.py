"""The SentencePiece tokenizer of the E032 ASR: load a given model file, or train one on the transcripts.

The original recipe takes the LibriSpeech unigram model (5000 pieces, upper-case text) from the
pretrained LibriSpeech release (``tokenizer.ckpt``, a plain SentencePiece model file). When no file is
given (the demo, which pre-trains its own small model), a unigram model is trained on the ``wrd`` column
of the training CSV, with the special ids of the LibriSpeech tokenizer: ``unk = 0`` (shared with the
CTC blank and the padding index), ``bos = 1``, ``eos = 2``.

Training is deterministic: the transcripts are written in CSV order, one thread, no sentence sampling
or shuffling, so the same CSV gives a byte-identical model file.
"""

from __future__ import annotations

import io
import logging
import os
from pathlib import Path

import sentencepiece as spm

from e032.io import atomic_path
from e032.manifests import read_manifest

logger = logging.getLogger(__name__)


def check_vocab_size(tokenizer: spm.SentencePieceProcessor, output_neurons: int, source: str) -> None:
    """Raise if the tokenizer's vocabulary does not match the model's output layer.

    Raises
    ------
    ValueError
        If ``tokenizer.get_piece_size() != output_neurons``.
    """
    n_pieces = tokenizer.get_piece_size()
    if n_pieces != output_neurons:
        raise ValueError(
            f"tokenizer {source} has a vocabulary of {n_pieces} pieces but the model has "
            f"output_neurons={output_neurons}; use the tokenizer the model was trained with, or set "
            f"output_neurons={n_pieces}"
        )


def read_transcripts(csv_path: str | os.PathLike) -> list[str]:
    """The ``wrd`` column of a SpeechBrain CSV, in file order.

    Raises
    ------
    FileNotFoundError
        If the CSV does not exist.
    ValueError
        If it has no ``wrd`` column or no rows.
    """
    rows = read_manifest(csv_path, required=("wrd",), what="training CSV")
    return [row.columns["wrd"] for row in rows]


def train_unigram(
    texts: list[str],
    model_file: str | os.PathLike,
    vocab_size: int,
    character_coverage: float = 1.0,
    special_ids: tuple[int, int, int] = (0, 1, 2),
) -> Path:
    """Train a unigram SentencePiece model on ``texts`` and write it atomically to ``model_file``.

    Parameters
    ----------
    texts : list of str
        Transcripts, one utterance each.
    model_file : path-like
        Destination ``.model`` file.
    vocab_size : int
        Number of pieces (= the model's ``output_neurons``).
    character_coverage : float
        Fraction of characters covered by the model (1.0 for the small English alphabet).
    special_ids : (int, int, int)
        Ids of unk (= CTC blank = padding in the recipe), bos and eos; the yaml's
        ``unk_index``, ``bos_index``, ``eos_index``.

    Returns
    -------
    Path
        ``model_file``.

    Raises
    ------
    ValueError
        If SentencePiece cannot build ``vocab_size`` pieces from the text (too little text).
    """
    model_file = Path(model_file)
    model_bytes = io.BytesIO()  # in-memory I/O keeps temporary paths out of the model's trainer spec
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts),
            model_writer=model_bytes,
            vocab_size=vocab_size,
            model_type="unigram",
            character_coverage=character_coverage,
            unk_id=special_ids[0],
            bos_id=special_ids[1],
            eos_id=special_ids[2],
            pad_id=-1,
            num_threads=1,
            input_sentence_size=0,
            shuffle_input_sentence=False,
            minloglevel=2,
        )
    except RuntimeError as err:
        raise ValueError(
            f"cannot train a {vocab_size}-piece unigram tokenizer on {len(texts)} transcripts: {err}"
            " (lower output_neurons or give more text)"
        ) from None
    with atomic_path(model_file) as out:
        out.write_bytes(model_bytes.getvalue())
    logger.info(
        "trained a %d-piece unigram tokenizer on %d transcripts -> %s", vocab_size, len(texts), model_file
    )
    return model_file


def prepare_tokenizer(
    tokenizer: spm.SentencePieceProcessor,
    tokenizer_file: str | os.PathLike | None,
    train_csv: str | os.PathLike,
    output_neurons: int,
    trained_file: str | os.PathLike,
    special_ids: tuple[int, int, int] = (0, 1, 2),
) -> Path:
    """Load ``tokenizer_file`` into ``tokenizer``, or train one on ``train_csv`` (and load that).

    A model trained earlier into ``trained_file`` (a resumed run) is reused rather than retrained.

    Parameters
    ----------
    tokenizer : sentencepiece.SentencePieceProcessor
        The yaml's ``tokenizer`` object; it is loaded in place.
    tokenizer_file : path-like or None
        A SentencePiece model file (e.g. the LibriSpeech ``tokenizer.ckpt``); None = train one.
    train_csv : path-like
        Training CSV whose ``wrd`` column is used for training.
    output_neurons : int
        The model's vocabulary size.
    trained_file : path-like
        Where a trained model is written.
    special_ids : (int, int, int)
        unk, bos and eos ids of a trained model.

    Returns
    -------
    Path
        The model file that was loaded.

    Raises
    ------
    FileNotFoundError
        If ``tokenizer_file`` is given but does not exist.
    ValueError
        If the tokenizer's vocabulary size differs from ``output_neurons``.
    """
    if tokenizer_file is not None:
        path = Path(tokenizer_file).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"tokenizer_file not found: {path} (expected a SentencePiece model file)")
    else:
        path = Path(trained_file)
        if not path.is_file():
            train_unigram(read_transcripts(train_csv), path, output_neurons, special_ids=special_ids)
    tokenizer.load(str(path))
    check_vocab_size(tokenizer, output_neurons, str(path))
    return path
