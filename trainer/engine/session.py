"""One training run from start to end: build, (resume,) loop over epochs, save, preview, stop."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from accelerate import Accelerator, DataLoaderConfiguration
from accelerate.utils import set_seed
from torch.utils.data import DataLoader

from trainer.config import TrainConfig
from trainer.data.loader import collate_batch
from trainer.earlier_files import EarlierOutputs
from trainer.engine import checkpoint as ckpt
from trainer.engine import distributed, header, hub_sync, loop, speed, start
from trainer.engine.build import build_optimizer, load_models, module_fingerprint
from trainer.engine.class_images import ensure_class_images
from trainer.engine.data import build_data, fixed_captions
from trainer.engine.distributed import ShardedBatches, ShardedDataset, collate_sharded
from trainer.engine.errors import EngineError, StopRequested
from trainer.engine.full import stop_text_encoder_if_due
from trainer.engine.host_memory import keep_freed_blocks
from trainer.engine.loop import StepRunner, lrs_of, optimizer_steps_per_epoch, total_steps
from trainer.engine.optim import set_train_mode
from trainer.engine.precision import pick_device, resolve_precision
from trainer.engine.readback import LossReadback
from trainer.engine.sampler import generate_samples
from trainer.engine.validation import ValidationHooks
from trainer.events import stop_requested
from trainer.run_outputs import epoch_name, out_dir_of, step_name
from trainer.textio import inside

OFFLOAD_DEVICE = "cpu"  # where frozen text encoders go once their outputs are cached


def release_text_encoders(text_encoders: list) -> None:
    for te in text_encoders:
        te.to(OFFLOAD_DEVICE)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def peak_vram_gb() -> float | None:
    """Peak GPU memory this process allocated, in GiB (what the memory estimate is checked against)."""
    return torch.cuda.max_memory_allocated() / 2**30 if torch.cuda.is_available() else None


def _allow_fp16_gradients(accelerator, prec) -> None:
    """full_fp16 keeps the adapter (and so its gradients) in fp16, which torch's GradScaler refuses to unscale
    by default; unscaling fp16 gradients in place is what full_fp16 means."""
    scaler = getattr(accelerator, "scaler", None)
    if scaler is None or prec.adapter_dtype != torch.float16:
        return
    unscale = scaler._unscale_grads_
    scaler._unscale_grads_ = lambda optimizer, inv_scale, found_inf, allow_fp16: unscale(
        optimizer, inv_scale, found_inf, True)


class Session:
    def __init__(self, cfg: TrainConfig, run_dir: Path, reporter, model_cache: Path, stop_flag):
        self.cfg, self.run_dir, self.rep, self.model_cache = cfg, run_dir, reporter, model_cache
        self.stop_flag = stop_flag  # callable: True once SIGINT/SIGTERM arrived
        self.out_dir = out_dir_of(cfg, run_dir)
        self.outputs: list[str] = []
        self.written: dict[str, list[Path]] = {"epoch": [], "step": []}  # this run's intermediate saves
        self.written_states: dict[str, list[Path]] = {"epoch": [], "step": []}  # and their state folders
        self.earlier = EarlierOutputs(reporter.warning)  # an earlier run's files under this run's names
        self.started_at = time.time()
        self.progress = ckpt.Progress()  # replaced in setup(): a later start (initial_step) or a resumed state
        self.val = None  # ValidationHooks once setup() found validation images
        self.hub_files: dict | None = None  # what the final save's hand-off gives the Hub upload (hub_sync)

    # --- setup -------------------------------------------------------------------------------------------
    def setup(self) -> None:
        cfg, s = self.cfg, self.cfg.speed
        set_seed(cfg.training.seed)
        from trainer.families import get_family

        # A family whose VAE overflows in half precision (SDXL) keeps it in fp32, as no_half_vae would.
        no_half_vae = s.no_half_vae or get_family(cfg.model.family).vae_fp32
        self.prec = resolve_precision(s.mixed_precision, full_fp16=s.full_fp16, full_bf16=s.full_bf16,
                                      no_half_vae=no_half_vae, device=pick_device(), warn=self.rep.warning)
        kept = keep_freed_blocks(self.prec.device)  # before the model loads: every block after it counts
        if kept:
            self.rep.status(kept)
        # First: under accelerate launch it joins the process group and picks this process's GPU. Batches are
        # global and split across processes (trainer/engine/distributed.py), so the scheduler steps once a step.
        self.acc = Accelerator(mixed_precision=self.prec.mixed, cpu=self.prec.device == "cpu",
                               dataloader_config=DataLoaderConfiguration(split_batches=True),
                               kwargs_handlers=distributed.ddp_handlers(s))
        self.is_main = self.acc.is_main_process
        if self.acc.num_processes > 1:
            self.host_group = distributed.host_group()  # stop requests agree without waiting for the GPU
        speed.apply_backend_flags(s, self.prec.device, self.rep.warning)
        if s.gpus != self.acc.num_processes and not s.accelerate_config:
            self.rep.warning(f"speed.gpus is {s.gpus}, but this run has {self.acc.num_processes} process(es)",
                             f"Start it from the Runs page, or with accelerate launch --num_processes {s.gpus} "
                             "(README: Several GPUs).")
        for folder in {self.out_dir, *([Path(cfg.save.resume).parent] if cfg.save.resume else [])} if self.is_main else ():
            for note in ckpt.recover_interrupted_saves(folder):  # a kill during the last run's save
                self.rep.warning(note)
        self._raise_if_stop()
        self.rep.status("loading the base model")
        self.models = load_models(cfg, self.prec, self.model_cache, self.rep.status, self.rep.warning)
        self._raise_if_stop()
        reg = ensure_class_images(cfg, self.models, self.model_cache.parent, self.rep, self._stop_here)
        if reg is not None and not cfg.dataset.reg_data_dir:  # generated into the workspace: train with them
            cfg.dataset.reg_data_dir = str(reg)
        with self.acc.main_process_first():  # one process fills a disk cache, the others then read it
            self.data = build_data(cfg, self.models, self.rep, stop=self._stop_here, world=self.acc.num_processes)
        self._raise_if_stop()
        speed.apply_to_models(self.models, s, cfg.model.family, self.model_cache.parent, vae_in_loop=not self.data.cached)
        self.collate = collate_batch
        if self.acc.num_processes > 1:  # each process trains its rows of every global batch
            self.data.sampler = ShardedBatches(self.data.sampler, self.acc.process_index, self.acc.num_processes)
            self.data.dataset, self.collate = ShardedDataset(self.data.dataset), collate_sharded
        ga = cfg.training.gradient_accumulation_steps
        self.batches_per_epoch = len(self.data.sampler)  # skip_batches is 0 until a resume sets it
        self.per_epoch = optimizer_steps_per_epoch(self.batches_per_epoch, ga)
        self.total, self.epochs = total_steps(cfg, self.per_epoch)
        self.progress = start.start_progress(cfg, self.per_epoch, self.total)  # a resume below replaces it
        self.optimizer, self.scheduler, self.lr_names = build_optimizer(cfg, self.models, self.total)
        start.advance_schedule(self.scheduler, self.progress.global_step)
        if self.progress.global_step:
            self.rep.status(start.describe(self.progress))
        self.optimizer, self.scheduler = self.acc.prepare(self.optimizer, self.scheduler)
        _allow_fp16_gradients(self.acc, self.prec)
        self.runner = StepRunner(cfg, self.models, self.acc, self.optimizer, self.scheduler,
                                 self.models.lora.parameters(), self._text_cache())
        multi = self.acc.num_processes > 1
        self.losses = LossReadback(s.loss_read_every_n_steps, (lambda t: self.acc.reduce(t, "mean")) if multi else None)
        if cfg.dreambooth.fused_backward_pass:
            from trainer.engine.fused_backward import FusedBackward

            if self.acc.num_processes > 1:  # the rules catch speed.gpus; this catches a hand-made launch
                raise EngineError("dreambooth.fused_backward_pass needs one process: each gradient is applied "
                                  "before processes could average it", "Launch one process, or turn it off.")
            self.runner.fused = FusedBackward(self.optimizer, cfg.training.max_grad_norm)
        global_batch = cfg.training.train_batch_size * self.acc.num_processes  # images an optimizer batch
        if cfg.save.resume:
            self.progress = ckpt.load_state(Path(cfg.save.resume), models=self.models.lora.models,
                                            optimizer=self.optimizer, scheduler=self.scheduler)
            if hasattr(self.models.lora, "load_extra_state"):  # Dreambooth EMA weights, LyCORIS max-norm scalars
                self.models.lora.load_extra_state(ckpt.load_extra(Path(cfg.save.resume)))
            self.rep.status(f"resumed from {cfg.save.resume} at step {self.progress.global_step}")
            self.rep.restore_loss_window(self.progress.loss_window)
            self._warn_if_other_batch(global_batch)
        self.progress.global_batch = global_batch
        start.align_step_keys(self.data.sampler, self.progress, self.per_epoch, ga)
        self.facts = header.run_facts(self)
        self.val = ValidationHooks(self, self.data.validation_items) if self.data.validation_items else None
        if self.runner.text_cache is not None and not self.models.train_text_encoder:
            self._cache_text_outputs()

    def _cache_text_outputs(self) -> None:
        """Encode every caption now, then move the frozen text encoders off the GPU (T5-XXL alone is ~9 GB in
        bf16): training reads the cache. A caption the cache lacks after all is encoded where they are."""
        train_set = getattr(self.data.dataset, "dataset", self.data.dataset)  # under ShardedDataset when multi-GPU
        datasets = [train_set, *([self.val.validator.dataset] if self.val else [])]
        captions = list(dict.fromkeys(c for d in datasets for c in fixed_captions(d)))

        def progress(done: int, total: int) -> None:
            self.rep.status(f"caching text-encoder outputs {done}/{total}", done / max(total, 1))
            self._raise_if_stop()

        batch = self.cfg.speed.text_encoder_batch_size or self.cfg.training.train_batch_size
        self.runner.fill_text_cache(captions, batch, progress)
        release_text_encoders(self.models.text_encoders)
        self.rep.status(f"text-encoder outputs cached ({len(captions)} captions): the text encoders left the GPU")

    def _warn_if_other_batch(self, global_batch: int) -> None:
        """The saved position counts batches of the saved run's size: with another train_batch_size x processes
        the rest of that epoch is not the data the saved run would have trained."""
        saved = self.progress.global_batch
        if saved and saved != global_batch and self.progress.batches_in_epoch:
            self.rep.warning(
                f"save.resume: the state was saved with {saved} images a batch (train_batch_size x processes), "
                f"this run has {global_batch}; the rest of epoch {self.progress.epoch + 1} is not what the saved "
                "run would have trained", "Resume with the same train_batch_size and number of GPUs to continue "
                "exactly.")

    def _text_cache(self):
        """Cached text-encoder outputs (the rules allow them only for a frozen encoder and fixed captions)."""
        from trainer.data.tensor_cache import TensorCache

        s = self.cfg.speed
        if not (s.cache_text_encoder_outputs or s.cache_text_encoder_outputs_to_disk):
            return None
        # Outputs depend on the encoders and on how the family calls them (clip_skip, chunking): all in the key.
        m = self.models
        fingerprint = "|".join([*(module_fingerprint(te) for te in m.text_encoders), m.family.text_cache_key(self.cfg)])
        if s.cache_text_encoder_outputs_to_disk:
            return TensorCache("disk", fingerprint, self.model_cache.parent / "text-encoder-cache")
        return TensorCache("memory", fingerprint)

    # --- saving ------------------------------------------------------------------------------------------
    def output_file(self, name: str) -> Path:
        """Where the save `name` goes, in the format save.save_model_as names."""
        return inside(self.out_dir, f"{name}.{self.cfg.save.save_model_as}")

    def state_folder(self, name: str) -> Path:
        return inside(self.out_dir, f"{name}{ckpt.STATE_SUFFIX}")

    def diffusers_folder(self, name: str) -> Path:
        """A Dreambooth save's diffusers folder, beside its file."""
        return inside(self.out_dir, f"{name}{ckpt.DIFFUSERS_SUFFIX}")

    def save_lora(self, name: str) -> Path:
        from trainer.networks.metadata import kept_in_file
        from trainer.networks.save import save_lora

        cfg = self.cfg
        set_train_mode(self.optimizer, False)
        meta = header.lora_header(self)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        path = save_lora(self.output_file(name), self.models.lora.kohya_state_dict(self.models.family.name),
                         kept_in_file(cfg, meta), cfg.save.save_precision)  # the card still reads all of meta
        set_train_mode(self.optimizer, True)
        if str(path) not in self.outputs:
            self.outputs.append(str(path))
        self.rep.saved(step=self.progress.global_step, epoch=self.progress.epoch, path=path, kind="lora")
        if name == cfg.save.output_name:  # the final file (finished or stopped), not an epoch/step save
            header.hand_off(self, path, meta)
        return path

    def save_state(self, name: str) -> Path:
        self.progress.loss_window = self.rep.loss_window
        folder = ckpt.save_state(self.state_folder(name), models=self.models.lora.models,
                                 optimizer=self.optimizer, scheduler=self.scheduler, progress=self.progress,
                                 extra=getattr(self.models.lora, "extra_state", dict)())
        self.rep.saved(step=self.progress.global_step, epoch=self.progress.epoch, path=folder, kind="state")
        return folder

    def save_paths(self, name: str, with_state: bool) -> list[Path]:
        """Every file and folder the save `name` writes."""
        cfg, file = self.cfg, self.output_file(name)
        paths = [file]
        if name == cfg.save.output_name and cfg.publish.model_card:
            paths.append(header.card_file(file))
        if cfg.model.training_type == "dreambooth" and cfg.dreambooth.save_diffusers:
            paths.append(self.diffusers_folder(name))
        if with_state:
            paths.append(self.state_folder(name))
        return paths

    def save(self, name: str, with_state: bool) -> None:
        self.read_losses()  # never save weights of a step whose loss blew up
        if not self.is_main:  # several processes: one writes the files
            return
        self.earlier.make_room(self.save_paths(name, with_state))
        if self.cfg.model.training_type == "dreambooth":
            from trainer.checkpoints.session_save import save_checkpoint

            save_checkpoint(self, name)
        else:
            self.save_lora(name)
        state = self.save_state(name) if with_state else None
        hub_sync.after_save(self, name, state)

    # --- the loop ----------------------------------------------------------------------------------------
    def run(self) -> str:
        """Train until done or stopped. Returns "finished" or "stopped"."""
        try:
            self.setup()
        except StopRequested:  # asked before start, while loading or caching: nothing trained, nothing to save
            return "stopped"
        cfg, p = self.cfg, self.progress
        if self._stop_wanted():
            return "stopped"
        self.rep.started(total_steps=self.total, epochs=self.epochs, steps_per_epoch=self.per_epoch,
                         images=self.data.num_train_images, device=self.prec.device, family=cfg.model.family,
                         start_step=p.global_step, summary=header.start_summary(self))
        set_train_mode(self.optimizer, True)  # schedule-free optimizers; a no-op for the others
        if cfg.sampling.sample_at_first:
            self.sample()
        while p.epoch < self.epochs and p.global_step < self.total and not self._early_stopped():
            # Checked before each epoch too: a stop asked during the epoch-end sample or save ends here.
            if self._stop_wanted() or self._run_epoch() == "stopped":
                self.save(cfg.save.output_name, with_state=True)
                return "stopped"
        if self._early_stopped():  # the final file gets the weights with the lowest validation loss
            self.val.restore_best()
            self.save(cfg.save.output_name, with_state=False)
            return "finished"
        self.save(cfg.save.output_name, with_state=cfg.save.save_state or cfg.save.save_state_on_train_end)
        return "finished"

    def _loader(self) -> DataLoader:
        """One loader for the run (so persistent workers persist); the sampler moves to the current epoch."""
        self.data.sampler.set_epoch(self.progress.epoch, self.progress.batches_in_epoch)
        seed = self.cfg.training.seed + self.progress.epoch
        if getattr(self, "_data_loader", None) is None:
            # A loader draws its base seed from its own generator, else from the global RNG, which would shift
            # the noise stream and make a resumed run differ from an uninterrupted one.
            self._data_loader = DataLoader(
                self.data.dataset, batch_sampler=self.data.sampler, collate_fn=self.collate,
                generator=torch.Generator().manual_seed(seed), **speed.loader_options(self.cfg.speed, self.prec.device))
        self._data_loader.generator.manual_seed(seed)
        return self._data_loader

    def _run_epoch(self) -> str | None:
        p = self.progress
        ga = self.cfg.training.gradient_accumulation_steps
        for batch in self._loader():
            stop_text_encoder_if_due(self.models, self.cfg, p.global_step)
            done = p.batches_in_epoch + 1
            result = self.runner.step(batch, p.global_step, sync=done % ga == 0 or done == self.batches_per_epoch)
            p.batches_in_epoch = done
            self.losses.add(p.global_step + 1, result.loss, result.grad_norms)
            if not result.synced:
                continue
            p.global_step += 1
            getattr(self.models.lora, "after_optimizer_step", lambda: None)()  # Dreambooth's EMA
            self.losses.finish_step(step=p.global_step, total=self.total, epoch=p.epoch + 1, epochs=self.epochs,
                                    lrs=lrs_of(self.optimizer, self.lr_names), vram_gb=peak_vram_gb(),
                                    max_norm=result.max_norm, at=time.time())
            if self.losses.due:
                self.read_losses()
            self._after_step()
            if self._stop_wanted():
                return "stopped"
            if self._early_stopped():
                return None
            if p.global_step >= self.total:
                # Ended mid-epoch (max_train_steps): the position stays inside this epoch, so a resume from
                # the state saved now continues with the very next batch.
                return None if p.batches_in_epoch < self.batches_per_epoch else self._end_epoch()
        return self._end_epoch()

    def read_losses(self) -> None:
        """Report the steps whose losses are still on the device (checking them for a blow-up)."""
        for report in self.losses.read():
            norms = dict(zip(self.lr_names, report.pop("grad_norms"), strict=False))
            self.rep.progress(**report, grad_norms=norms)

    def _end_epoch(self) -> None:
        self.read_losses()
        self.progress.epoch += 1
        self.progress.batches_in_epoch = 0
        self._after_epoch()

    def _save_kept(self, name: str, kind: str, keep: int, keep_states: int) -> None:
        """Save, then delete this run's oldest saves of `kind` beyond `keep`, and its oldest states of `kind` beyond
        `keep_states` (0: `keep`); never files of other runs."""
        self.save(name, with_state=self.cfg.save.save_state)
        self.written[kind].append(self.output_file(name))
        if self.cfg.save.save_state:
            self.written_states[kind].append(self.state_folder(name))
        if not self.is_main:
            return
        protected = self.val.protected() if self.val else set()
        for old in ckpt.prune(self.written[kind], keep, protected=protected):
            self.outputs = [o for o in self.outputs if o != str(old)]
        ckpt.prune_states(self.written_states[kind], keep_states or keep, protected=protected)

    def _early_stopped(self) -> bool:
        return self.val is not None and self.val.early_stopped

    def _stop_here(self) -> bool:
        """This process's own view (for callbacks that run in one process only, e.g. while caching)."""
        return self.stop_flag() or stop_requested(self.run_dir)

    def _stop_wanted(self) -> bool:
        """Asked anywhere, seen everywhere: all processes stop at the same step."""
        wanted = self._stop_here()
        if self.acc.num_processes > 1:  # every step: over the CPU, so the GPU's queued steps are not waited for
            wanted = distributed.any_process(wanted, self.host_group)
        return wanted

    def _raise_if_stop(self) -> None:
        if self._stop_wanted():
            raise StopRequested

    def _after_step(self) -> None:
        s, sm, step = self.cfg.save, self.cfg.sampling, self.progress.global_step
        if s.save_every_n_steps and step % s.save_every_n_steps == 0 and step < self.total:
            keep, keep_states = (max(1, n // s.save_every_n_steps) if n else 0  # saves in the last n steps
                                 for n in (s.save_last_n_steps, s.save_last_n_steps_state))
            self._save_kept(step_name(s.output_name, step), "step", keep, keep_states)
        if sm.sample_every_n_steps and step % sm.sample_every_n_steps == 0:
            self.sample()
        if self.val:
            self.val.after_step()

    def _after_epoch(self) -> None:
        s, sm, epoch = self.cfg.save, self.cfg.sampling, self.progress.epoch
        last = epoch >= self.epochs or self.progress.global_step >= self.total
        saved = None
        every = loop.epoch_save_interval(s, self.epochs)
        if every and epoch % every == 0 and not last:
            self._save_kept(epoch_name(s.output_name, epoch), "epoch", s.save_last_n_epochs, s.save_last_n_epochs_state)
            saved = self.written["epoch"][-1]
        if self.val:  # after the save, so the evaluation knows the file holding these weights
            final = self.output_file(s.output_name)
            self.val.after_epoch(str(saved) if saved else str(final) if last else None, last)
        if sm.sample_every_n_epochs and (epoch % sm.sample_every_n_epochs == 0 or last):
            self.sample()

    def sample(self) -> None:
        self.read_losses()
        if not self.is_main:
            return
        set_train_mode(self.optimizer, False)  # schedule-free: preview the averaged weights that get saved
        try:
            generate_samples(self.cfg, self.models, step=self.progress.global_step, epoch=self.progress.epoch,
                             out_dir=self.run_dir / "samples", reporter=self.rep)
        except (ValueError, RuntimeError) as exc:  # a bad prompt must not end a long run
            self.rep.warning(f"preview images failed: {exc}", "Check sampling.sample_prompts.")
        finally:
            set_train_mode(self.optimizer, True)
            torch.cuda.empty_cache() if torch.cuda.is_available() else None
