"""Validation loss: held-out images scored with fixed noise at fixed timesteps.

Nothing random is drawn at evaluation time: each image has its own noise, made from the validation seed and
the image's place in the (path-sorted) validation set, and is scored at the same points of the noise
schedule. So two evaluations of the same weights give the same number, and runs with the same seed and
validation images are comparable, whatever their batch size.
"""

from __future__ import annotations

import random
from collections import defaultdict

import torch

from trainer.data.buckets import plan_buckets
from trainer.data.loader import DanluDataset, collate_batch
from trainer.engine.build import caption_text, resolution_of, with_trigger
from trainer.engine.errors import EngineError

FRACTIONS = (0.1, 0.3, 0.5, 0.7, 0.9)  # where on the noise schedule each image is scored (0: no noise)


def validation_seed(cfg) -> int:
    v = cfg.validation
    return cfg.training.seed if v.validation_seed is None else v.validation_seed


def held_out(cfg, items: list, reporter) -> tuple[list, list]:
    """(training items, validation items): a seeded share of the training images, or the validation folder.
    Regularisation images are never held out. A held-out image leaves training with all its repeats."""
    v = cfg.validation
    if v.validation_dir.strip():
        return items, _folder_items(cfg, reporter)
    if v.validation_split <= 0:
        return items, []
    candidates = [i for i, it in enumerate(items) if not it.is_reg]
    count = max(1, round(len(candidates) * v.validation_split))
    if count >= len(candidates):
        raise EngineError(f"validation.validation_split {v.validation_split} leaves no training images "
                          f"({len(candidates)} in the dataset)",
                          "Lower validation_split, add images, or use a separate validation_dir.")
    held = set(random.Random(validation_seed(cfg)).sample(candidates, count))
    return [it for i, it in enumerate(items) if i not in held], [items[i] for i in sorted(held)]


def _folder_items(cfg, reporter) -> list:
    from trainer.data.problems import DatasetError
    from trainer.data.scan import scan_dataset
    from trainer.engine.data import report_problem

    try:
        scan = scan_dataset(cfg.validation.validation_dir, caption_extension=cfg.caption.caption_extension)
    except DatasetError as exc:
        raise EngineError(f"validation.validation_dir: {exc}",
                          "Point it at a folder laid out like the training folder (10_name sub-folders).") from None
    for problem in scan.problems:
        report_problem(reporter, problem)
    c = cfg.caption
    return with_trigger(scan.train_items, c.trigger_word, c.weighted_captions, c.caption_separator)


class Validator:
    """Scores the validation images with the run's StepRunner (same loss type and weighting as training)."""

    def __init__(self, cfg, models, runner, items: list):
        d = cfg.dataset
        items = sorted(items, key=lambda it: str(it.path))
        plan = plan_buckets(items, resolution=resolution_of(cfg), min_reso=d.min_bucket_reso,
                            max_reso=d.max_bucket_reso, step=d.bucket_reso_steps, enable_bucket=d.enable_bucket,
                            no_upscale=d.bucket_no_upscale)
        # No augmentation and the whole caption (with the run's prefix and suffix): what is scored must not change
        # between evaluations.
        self.dataset = DanluDataset(items, [plan[i] for i in range(len(items))], **caption_text(cfg.caption),
                                    alpha_mask=d.alpha_mask, mask_dir=d.conditioning_data_dir,
                                    interpolation=d.resize_interpolation)
        self.models, self.runner = models, runner
        self.batch_size, self.seed = cfg.training.train_batch_size, validation_seed(cfg)
        self.max_steps = cfg.validation.max_validation_steps
        self.timesteps = models.family.fixed_timesteps(models.noise_scheduler, FRACTIONS)
        self._batches: list | None = None  # (batch with latents, [noise per timestep]) made at first use

    def __len__(self) -> int:
        return len(self.dataset)

    def _noise(self, index: int, k: int, shape) -> torch.Tensor:
        gen = torch.Generator().manual_seed((self.seed * 1_000_003 + index * len(FRACTIONS) + k) % 2**63)
        return torch.randn(shape, generator=gen)

    def _prepare(self) -> list:
        from trainer.engine.data import encode_pixels

        by_bucket: dict = defaultdict(list)
        for i, bucket in enumerate(self.dataset.bucket_of):
            by_bucket[bucket].append(i)
        batches = []
        chunks = [indices[start:start + self.batch_size] for indices in by_bucket.values()
                  for start in range(0, len(indices), self.batch_size)]
        for chunk in chunks[:self.max_steps or len(chunks)]:  # the first ones: the same every evaluation
            batch = collate_batch([self.dataset[i] for i in chunk])
            batch["latents"] = encode_pixels(self.models.vae, batch.pop("pixel_values"))  # once, kept
            shape = batch["latents"].shape[1:]
            noises = [torch.stack([self._noise(i, k, shape) for i in chunk]) for k in range(len(FRACTIONS))]
            batches.append((batch, noises))
        return batches

    def evaluate(self) -> float:
        """The mean loss over every validation image and fixed timestep, without dropout or gradients."""
        if self._batches is None:
            self._batches = self._prepare()
        parts = [self.models.unet, *self.models.text_encoders]
        modes = [p.training for p in parts]
        for p in parts:
            p.train(False)
        total, count = 0.0, 0
        try:
            with torch.no_grad():
                for batch, noises in self._batches:
                    size = len(batch["captions"])
                    for t, noise in zip(self.timesteps, noises, strict=True):
                        steps = torch.full((size,), t, dtype=torch.long)
                        total += float(self.runner.loss(batch, noise=noise, timesteps=steps)) * size
                        count += size
        finally:
            for p, mode in zip(parts, modes, strict=True):
                p.train(mode)
        return total / count


class ValidationHooks:
    """What a session does with validation: evaluate at the configured points, report the curve, watch it for
    over- and underfitting, and (with early_stop) keep the best weights to end the run on."""

    def __init__(self, session, items: list):
        from trainer.engine.overfit import FitWatch

        self.s = session
        self.validator = Validator(session.cfg, session.models, session.runner, items)
        self.watch = FitWatch(session.cfg.validation.overfit_patience, session.total)
        self.best_state: dict | None = None
        self.best_hidden: dict = {}
        self.early_stopped = False

    def _step_due(self) -> bool:
        n = self.s.cfg.validation.validate_every_n_steps
        return bool(n) and self.s.progress.global_step % n == 0

    def after_step(self) -> None:
        s, p = self.s, self.s.progress
        if p.batches_in_epoch == s.batches_per_epoch:  # the epoch end evaluates, knowing the saved file's name
            return
        if self._step_due() or p.global_step >= s.total:  # max_train_steps can end a run mid-epoch
            self.evaluate(None)

    def after_epoch(self, saved: str | None, last: bool) -> None:
        """`saved`: the file holding this epoch's weights, if one was written."""
        due = [self.s.progress.epoch % self.s.cfg.validation.validate_every_n_epochs == 0, last, self._step_due()]
        if any(due):
            self.evaluate(saved)

    def protected(self) -> set:
        """The file with the lowest validation loss: never pruned by save_last_n_epochs/steps."""
        from pathlib import Path

        return {Path(self.watch.best.path)} if self.watch.history and self.watch.best.path else set()

    def evaluate(self, saved: str | None) -> None:
        from trainer.engine.checkpoint import trainable_state
        from trainer.engine.optim import set_train_mode
        from trainer.engine.overfit import Evaluation

        s, p = self.s, self.s.progress
        s.read_losses()  # the training-loss average below must include every step so far
        if self.watch.history and self.watch.history[-1].step == p.global_step:  # an epoch end on a step multiple
            self.watch.history[-1].path = self.watch.history[-1].path or saved
            return
        set_train_mode(s.optimizer, False)  # schedule-free: score the averaged weights that get saved
        try:
            loss = self.validator.evaluate()
        finally:
            set_train_mode(s.optimizer, True)
        window = s.rep.loss_window
        ev = Evaluation(p.global_step, p.epoch, loss, sum(window) / len(window) if window else loss, saved)
        s.rep.validation(step=p.global_step, epoch=p.epoch, loss=loss)
        signals = self.watch.add(ev)
        if s.cfg.validation.early_stop and self.watch.best is ev:
            self.best_state = trainable_state(s.models.lora.models)
            self.best_hidden = getattr(s.models.lora, "hidden_state", dict)()  # e.g. LyCORIS max-norm scaling
        self._report(signals)

    def _report(self, signals: list[str]) -> None:
        from trainer.engine.overfit import overfit_message, underfit_message

        early = self.s.cfg.validation.early_stop
        for kind in signals:
            en, zh, hint = overfit_message(self.watch, early) if kind == "overfit" else underfit_message(self.watch)
            best = self.watch.best
            self.s.rep.warning(en, hint, fit=kind, message_zh=zh, best_path=best.path, best_epoch=best.epoch,
                               best_loss=best.loss, early_stop=early)
        self.early_stopped = early and "overfit" in signals

    def restore_best(self) -> None:
        from trainer.engine.checkpoint import load_trainable_state

        if self.best_state is not None:
            load_trainable_state(self.s.models.lora.models, self.best_state)
            if self.best_hidden:
                self.s.models.lora.load_hidden_state(self.best_hidden)
