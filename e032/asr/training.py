"""The E032 ASR training loop: a SpeechBrain 1.x ``Brain`` whose hooks do what the original recipe does.

Original (SpeechBrain 0.5.9 LibriSpeech transformer recipe, ``docs/original_recipe.md`` §3.5):

* loss = ``ctc_weight`` (0.3) x CTC + 0.7 x KL divergence with label smoothing 0.1, ``batchmean``;
* SpecAugment on the normalised features in training only (and, not in the original and null in
  the recipe, a waveform augmentation before the features: ``wav_augment``, set by the demo's stand-in);
* gradient accumulation 4 and clipping 5 (here SpeechBrain 1.x's ``grad_accumulation_factor`` and
  ``max_grad_norm``, which the yaml sets from ``gradient_accumulation`` / ``gradient_clipping``);
* stage 1 (epochs <= ``stage_one_epochs``): Adam with the Noam schedule applied after every update;
  stage 2: Nesterov SGD. **Quirk kept by default**: Noam is still applied in stage 2 and overwrites the
  SGD rate (``noam_overrides_sgd_lr: false`` keeps ``lr_sgd``);
* validation: teacher-forced token accuracy (ACC) every epoch, beam-search WER every
  ``valid_search_interval`` epochs; checkpoints kept: the best ACC plus the most recent;
* test: the model is the average of all checkpoints with an ACC; the average is saved with ACC 1.1.

SpeechBrain 0.5.9 arithmetic that 1.x changed is kept by default, each with a switch (yaml keys
``fbank_floor``, ``decoder_memory_mask``, ``ctc_lengths``, ``normalizer_update``: :mod:`e032.asr.sb05`;
``carry_over_gradients``: :meth:`ASRBrain.zero_grad`).

Fixed bugs of the original: the tokenizer comes from ``self.tokenizer`` (the 2023 refactor left a global
``None`` there, which crashed at the first WER computation), and a run resumed in stage 2 restores the
SGD state instead of re-creating the optimiser.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import speechbrain as sb
import torch
from speechbrain.utils.checkpoints import METAFNAME, Checkpointer, average_checkpoints

from e032.io import atomic_path

logger = logging.getLogger(__name__)


def optimizer_kind(param_group: dict) -> str:
    """``"sgd"`` or ``"adam"`` from an optimiser param group's hyper-parameter names."""
    if "nesterov" in param_group:
        return "sgd"
    return "adam" if "betas" in param_group else "other"


def load_optimizer_state(optimizer: torch.optim.Optimizer, path: str | Path, end_of_epoch: bool) -> None:
    """Checkpoint load hook: restore ``optimizer`` unless the file holds the other stage's optimiser.

    A run stopped right after the last stage-1 epoch has Adam state on disk but continues with SGD; like
    the original, the new optimiser then starts fresh.
    """
    del end_of_epoch  # same for intra- and end-of-epoch checkpoints
    state = torch.load(path, map_location="cpu")
    saved, wanted = optimizer_kind(state["param_groups"][0]), optimizer_kind(optimizer.param_groups[0])
    if saved != wanted:
        logger.info("%s holds %s state; the %s optimiser starts fresh", path, saved, wanted)
        return
    optimizer.load_state_dict(state)


class AtomicCheckpointer(Checkpointer):
    """A SpeechBrain ``Checkpointer`` whose checkpoints appear only once they are complete.

    SpeechBrain treats a ``CKPT+*`` folder as a checkpoint as soon as its ``CKPT.yaml`` exists, and writes
    that file first: a run killed while saving (seconds for the full model and its optimiser state)
    leaves a newest "checkpoint" with missing or truncated files, and the re-run fails to recover it.
    Here ``CKPT.yaml`` is written under a temporary name and renamed into place after every parameter
    file, so an interrupted save is ignored and the re-run resumes from the previous checkpoint.
    """

    def save_checkpoint(self, meta={}, end_of_epoch=True, name=None, verbosity=logging.INFO):  # noqa: B006
        """Save like SpeechBrain, then publish the checkpoint by renaming its meta file into place."""
        self._pending_meta = None
        ckpt = super().save_checkpoint(meta=meta, end_of_epoch=end_of_epoch, name=name, verbosity=verbosity)
        if self._pending_meta is not None:  # main process only
            os.replace(self._pending_meta, self._pending_meta.with_name(METAFNAME))
            self._pending_meta = None
        # Under DDP every process must see the published checkpoint before going on: the deletion that
        # follows (save_and_keep_only) lists checkpoints on every process and broadcasts once per deleted
        # one, so a process that listed them before the rename would wait on a broadcast that never comes.
        sb.utils.distributed.ddp_barrier()
        return ckpt

    def _save_checkpoint_metafile(self, fpath, meta_to_include={}, end_of_epoch=True):  # noqa: B006
        partial = Path(fpath).with_name(METAFNAME + ".partial")
        self._pending_meta = partial
        return super()._save_checkpoint_metafile(partial, meta_to_include, end_of_epoch)


class ASRBrain(sb.Brain):
    """E032 fine-tuning (and, in the demo, pre-training) of the joint CTC/attention transformer.

    Expects the keys of ``transformer_cpc1.yaml`` in ``hparams`` and the modules ``CNN``,
    ``Transformer``, ``seq_lin``, ``ctc_lin`` and ``normalize``. Set :attr:`tokenizer` before
    validating or testing.
    """

    tokenizer = None

    # ------------------------------------------------------------------ forward and loss
    def compute_forward(self, batch, stage):
        """Waveforms -> (CTC log-probs, decoder log-probs, relative lengths, hypotheses or None)."""
        batch = batch.to(self.device)
        wavs, wav_lens = batch.sig
        tokens_bos, _ = batch.tokens_bos
        if stage == sb.Stage.TRAIN and self.hparams.wav_augment is not None:  # null in the recipe
            wavs = self.hparams.wav_augment(wavs, wav_lens)
        feats = self.hparams.train_features(wavs)  # Fbank with the batch-wide dB floor of 0.5.9 (fbank_floor)
        feats = self.modules.normalize(feats, wav_lens, epoch=self.hparams.epoch_counter.current)
        if stage == sb.Stage.TRAIN and self.hparams.fea_augment is not None:
            feats, _ = self.hparams.fea_augment(feats, wav_lens)
        src = self.modules.CNN(feats)
        enc_out, dec_out = self.modules.Transformer(src, tokens_bos, wav_lens, pad_idx=self.hparams.pad_index)
        p_ctc = self.hparams.log_softmax(self.modules.ctc_lin(enc_out))
        p_seq = self.hparams.log_softmax(self.modules.seq_lin(dec_out))
        hyps = None
        if stage == sb.Stage.VALID and self._search_this_epoch():
            hyps = self.hparams.valid_search(enc_out.detach(), wav_lens)
        elif stage == sb.Stage.TEST:
            hyps = self.hparams.test_search(enc_out.detach(), wav_lens)
        return p_ctc, p_seq, wav_lens, hyps

    def compute_objectives(self, predictions, batch, stage):
        """0.3 CTC + 0.7 label-smoothed KL; in validation/test also ACC and (when searched) WER."""
        p_ctc, p_seq, wav_lens, hyps = predictions
        tokens_eos, tokens_eos_lens = batch.tokens_eos
        tokens, tokens_lens = batch.tokens
        loss_seq = self.hparams.seq_cost(p_seq, tokens_eos, length=tokens_eos_lens)
        loss_ctc = self.hparams.ctc_cost(p_ctc, tokens, wav_lens, tokens_lens)
        loss = self.hparams.ctc_weight * loss_ctc + (1 - self.hparams.ctc_weight) * loss_seq
        if stage != sb.Stage.TRAIN:
            if hyps is not None:
                if self.tokenizer is None:
                    raise RuntimeError("ASRBrain.tokenizer is not set: it is needed to compute the WER")
                predicted = [self.tokenizer.decode_ids(seq).split(" ") for seq in hypothesis_ids(hyps)]
                targets = [wrd.split(" ") for wrd in batch.wrd]
                self.wer_metric.append(batch.id, predicted, targets)
            self.acc_metric.append(p_seq, tokens_eos, tokens_eos_lens)
        return loss

    def _search_this_epoch(self) -> bool:
        return self.hparams.epoch_counter.current % self.hparams.valid_search_interval == 0

    # ------------------------------------------------------------------ stages
    def on_stage_start(self, stage, epoch=None):
        """New metrics for validation/test; switch Adam -> SGD at the first stage-2 epoch."""
        if stage == sb.Stage.TRAIN and epoch is not None and epoch > self.hparams.stage_one_epochs:
            self._use_sgd()
        if stage != sb.Stage.TRAIN:
            self.acc_metric = self.hparams.acc_computer()
            self.wer_metric = self.hparams.error_rate_computer()

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Log; after validation keep best-ACC + latest checkpoint; after test save the average."""
        stats = {"loss": stage_loss}
        if stage == sb.Stage.TRAIN:
            self.train_stats = stats
            return
        stats["ACC"] = self.acc_metric.summarize()
        if stage == sb.Stage.TEST or self._search_this_epoch():
            stats["WER"] = self.wer_metric.summarize("error_rate")
        if stage == sb.Stage.VALID:
            meta = {
                "epoch": epoch,
                "lr": self.optimizer.param_groups[0]["lr"],
                "steps": self.hparams.noam_annealing.n_steps,
                "optimizer": type(self.optimizer).__name__,
            }
            # log_stats is main-process-only and broadcasts: every process calls it
            self.hparams.train_logger.log_stats(
                stats_meta=meta, train_stats=getattr(self, "train_stats", None), valid_stats=stats
            )
            self.checkpointer.save_and_keep_only(
                meta={"ACC": stats["ACC"], "epoch": epoch},
                max_keys=["ACC"],
                num_to_keep=self.hparams.num_checkpoints_to_keep,
            )
        else:
            self.hparams.train_logger.log_stats(
                stats_meta={"Epoch loaded": self.hparams.epoch_counter.current}, test_stats=stats
            )
            if sb.utils.distributed.if_main_process():
                with atomic_path(self.hparams.wer_file) as tmp, open(tmp, "w", encoding="utf-8") as f:
                    self.wer_metric.write_stats(f)
            # ACC 1.1 outranks every epoch, so only the averaged model survives (as the original);
            # "averaged_checkpoints" marks the final model (train_asr.py skips a finished experiment)
            self.checkpointer.save_and_keep_only(
                meta={"ACC": 1.1, "epoch": epoch, "averaged_checkpoints": self.n_averaged},
                max_keys=["ACC"],
                num_to_keep=1,
            )
        self.last_stats = stats

    # ------------------------------------------------------------------ optimisers
    def init_optimizers(self):
        """Create the optimiser of the stage the next epoch belongs to, before the checkpoint is recovered.

        The original always created Adam and re-created SGD on the first stage-2 batch after a resume,
        throwing away the SGD momentum it had just restored.
        """
        if self._next_epoch() > self.hparams.stage_one_epochs:
            self.opt_class = self.hparams.SGD
        super().init_optimizers()
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable(
                "optimizer", self.optimizer, custom_load_hook=load_optimizer_state, optional_load=True
            )

    def _next_epoch(self) -> int:
        """The epoch that ``fit`` runs next, read from the checkpoint that will be recovered."""
        ckpt = self.checkpointer.find_checkpoint() if self.checkpointer is not None else None
        if ckpt is None or "counter" not in ckpt.paramfiles:
            return self.hparams.epoch_counter.current + 1
        saved = int(Path(ckpt.paramfiles["counter"]).read_text().strip())
        return saved + 1 if ckpt.meta.get("end-of-epoch", True) else saved

    def _use_sgd(self) -> None:
        if isinstance(self.optimizer, torch.optim.SGD):
            return
        logger.info("stage 2: switching from %s to SGD", type(self.optimizer).__name__)
        self.opt_class = self.hparams.SGD
        self.optimizer = self.hparams.SGD(self.modules.parameters())
        self.optimizers_dict = {"opt_class": self.optimizer}
        self.checkpointer.add_recoverable(
            "optimizer", self.optimizer, custom_load_hook=load_optimizer_state, optional_load=True
        )

    def zero_grad(self, set_to_none=False):
        """Clear the gradients at an epoch's start and end (SpeechBrain 1.x), unless ``carry_over_gradients``.

        SpeechBrain 0.5.9 reset its micro-batch counter at the end of an epoch without clearing the
        gradients, so a partial accumulation joined the first update of the next epoch (across the
        Adam -> SGD switch too); ``carry_over_gradients: true`` keeps that. The optimiser still clears
        them after every update.
        """
        if not self.hparams.carry_over_gradients:
            super().zero_grad(set_to_none=set_to_none)

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        """Noam after every update (also on SGD in stage 2 unless ``noam_overrides_sgd_lr`` is false)."""
        if not should_step:
            return
        stage_two = isinstance(self.optimizer, torch.optim.SGD)
        if not stage_two or self.hparams.noam_overrides_sgd_lr:
            self.hparams.noam_annealing(self.optimizer)

    # ------------------------------------------------------------------ multi-process
    def _wrap_distributed(self):
        """DDP on CPU (gloo) without SyncBatchNorm, which has no CPU implementation.

        SpeechBrain converts every BatchNorm to SyncBatchNorm under DDP; on GPUs that is kept. On CPU
        each process keeps its own BatchNorm running statistics (rank 0's are checkpointed).
        """
        if not (self.distributed_launch and self.device == "cpu"):
            super()._wrap_distributed()
            return
        for name, module in self.modules.items():
            if any(p.requires_grad for p in module.parameters()):
                self.modules[name] = torch.nn.parallel.DistributedDataParallel(
                    module, find_unused_parameters=self.find_unused_parameters
                )

    # ------------------------------------------------------------------ evaluation
    def on_evaluate_start(self, max_key=None, min_key=None):
        """Recover the latest checkpoint, then load the average of the checkpoints that have ``max_key``."""
        super().on_evaluate_start()
        ckpts = self.checkpointer.find_checkpoints(max_key=max_key, min_key=min_key)
        if not ckpts:
            raise FileNotFoundError(
                f"no checkpoint with {max_key or min_key} in {self.checkpointer.checkpoints_dir}"
            )
        state = average_checkpoints(ckpts, recoverable_name="model")
        self.hparams.model.load_state_dict(state, strict=True)
        self.hparams.model.eval()
        self.n_averaged = len(ckpts)
        logger.info("evaluating the average of %d checkpoint(s)", len(ckpts))


def hypothesis_ids(hyps) -> list[list[int]]:
    """Token-id lists from a searcher's output (a ``(hyps, ...)`` tuple, tensors or lists)."""
    if isinstance(hyps, tuple):
        hyps = hyps[0]
    return [[int(t) for t in seq] for seq in hyps]
