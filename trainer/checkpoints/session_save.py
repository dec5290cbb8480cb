"""A Dreambooth run's save: the whole model as one original-layout checkpoint, with a modelspec header."""

from __future__ import annotations

import time
from pathlib import Path

from trainer.checkpoints.write import original_layout, write_checkpoint
from trainer.engine.optim import set_train_mode
from trainer.textio import inside


def checkpoint_header(session) -> dict[str, str]:
    """The LoRA header's model-spec and Danlu keys, for a base model rather than a LoRA (sd-scripts' train_db
    writes the model spec alone)."""
    from trainer.networks.metadata import training_header

    full = training_header(session.cfg, session.facts, steps=session.progress.global_step,
                           epoch=session.progress.epoch, finished_at=time.time())
    header = {k: v for k, v in full.items() if k.startswith(("modelspec.", "danlu_"))}
    header["modelspec.architecture"] = session.models.family.modelspec_architecture
    return header


def save_checkpoint(session, name: str) -> Path:
    m = session.models
    set_train_mode(session.optimizer, False)  # schedule-free optimizers: save the averaged weights
    try:
        with m.lora.saved_weights():  # the EMA average when EMA is on
            state = original_layout(m.family.name, m.unet, m.vae, m.text_encoders)
        path = write_checkpoint(inside(session.out_dir, f"{name}.safetensors"), state,
                                session.cfg.save.save_precision, checkpoint_header(session))
    finally:
        set_train_mode(session.optimizer, True)
    if str(path) not in session.outputs:
        session.outputs.append(str(path))
    session.rep.saved(step=session.progress.global_step, epoch=session.progress.epoch, path=path, kind="checkpoint")
    return path
