"""A Dreambooth run's save: the whole model as one original-layout checkpoint with a modelspec header, optionally
also as a diffusers folder, and after the final save the model card and Hub upload a LoRA gets."""

from __future__ import annotations

import time
from pathlib import Path

from trainer.checkpoints.diffusers_folder import save_diffusers_folder
from trainer.checkpoints.write import original_layout, write_checkpoint
from trainer.engine.optim import set_train_mode


def training_header(session) -> dict[str, str]:
    """The LoRA header's keys for this run, with the architecture of a base model and without the network's keys
    (ss_network_*: a full checkpoint has no adapter): what the model card reads."""
    from trainer.networks.metadata import training_header as lora_training_header

    full = lora_training_header(session.cfg, session.facts, steps=session.progress.global_step,
                                epoch=session.progress.epoch, finished_at=time.time())
    kept = {k: v for k, v in full.items() if not k.startswith("ss_network_")}
    return {**kept, "modelspec.architecture": session.models.family.modelspec_architecture}


def checkpoint_header(full: dict[str, str], cfg) -> dict[str, str]:
    """The model-spec and Danlu keys alone (sd-scripts' train_db writes the model spec alone); with
    publish.no_metadata, as a LoRA's (trainer.networks.metadata.kept_in_file)."""
    from trainer.networks.metadata import kept_in_file

    return kept_in_file(cfg, {k: v for k, v in full.items() if k.startswith(("modelspec.", "danlu_"))})


def save_checkpoint(session, name: str) -> Path:
    m, cfg = session.models, session.cfg
    header = training_header(session)
    set_train_mode(session.optimizer, False)  # schedule-free optimizers: save the averaged weights
    try:
        with m.lora.saved_weights():  # the EMA average when EMA is on
            state = original_layout(m.family.name, m.unet, m.vae, m.text_encoders)
            path = write_checkpoint(session.output_file(name), state, cfg.save.save_precision,
                                    checkpoint_header(header, cfg))
            folder = (save_diffusers_folder(m, session.diffusers_folder(name), cfg.save.save_precision)
                      if cfg.dreambooth.save_diffusers else None)
    finally:
        set_train_mode(session.optimizer, True)
    if str(path) not in session.outputs:  # the folder is announced by its own "saved" event, not listed as a file
        session.outputs.append(str(path))
    step, epoch = session.progress.global_step, session.progress.epoch
    session.rep.saved(step=step, epoch=epoch, path=path, kind="checkpoint")
    if folder:
        session.rep.saved(step=step, epoch=epoch, path=folder, kind="diffusers")
    if name == cfg.save.output_name:  # the final file (finished or stopped): card and upload, as for a LoRA
        from trainer.engine.header import hand_off
        from trainer.publish.card import CHECKPOINT

        extra = {f"{folder.name}/{p.relative_to(folder).as_posix()}": p for p in sorted(folder.rglob("*"))
                 if p.is_file()} if folder else {}
        hand_off(session, path, header, kind=CHECKPOINT, extra=extra)
    return path
