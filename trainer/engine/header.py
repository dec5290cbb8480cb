"""What a run says about itself: the facts behind each LoRA's header, and the one start summary.

Kept apart from the session so the loop stays about training; the session calls these three functions.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path


def run_facts(session):
    """The header facts of a run, gathered once after setup (the base model is hashed here, once)."""
    from trainer.engine.optim import optimizer_description
    from trainer.networks.hashes import base_model_identity, vae_identity
    from trainer.networks.metadata import RunFacts

    cfg, data = session.cfg, session.data
    o = cfg.optimizer
    if Path(cfg.model.base_model).is_file():  # a multi-GB file takes a few seconds to hash
        session.rep.status("hashing the base model for the LoRA header (as A1111 shows it)")
    return RunFacts(
        session_id=random.SystemRandom().randint(0, 2**32), started_at=session.started_at,
        base_model_version=session.models.family.base_model_version,
        architecture=session.models.family.modelspec_architecture,
        implementation=session.models.family.modelspec_implementation, header_args=session.models.family.header_args,
        num_train_images=data.num_train_images,
        num_reg_images=data.num_reg_images, batches_per_epoch=session.batches_per_epoch, epochs=session.epochs,
        total_steps=session.total, optimizer=optimizer_description(o.optimizer_type, o.optimizer_args),
        dataset=data.dataset_facts, bucket_info=data.bucket_info,
        model_identity={**base_model_identity(cfg.model.base_model), **vae_identity(cfg.model.vae)},
        num_processes=session.acc.num_processes,
        num_validation_images=len(session.data.validation_items),
        network_dims=session.models.file_dims.dims() if session.models.file_dims is not None else {},
    )


def lora_header(session) -> dict[str, str]:
    """The header of the LoRA saved now; the newest preview image becomes its thumbnail."""
    from trainer.networks.metadata import training_header
    from trainer.networks.modelspec import thumbnail_data_url

    sample = latest_sample(session.run_dir)
    return training_header(session.cfg, session.facts, steps=session.progress.global_step,
                           epoch=session.progress.epoch, finished_at=time.time(),
                           thumbnail=thumbnail_data_url(sample) if sample else "")


def latest_sample(run_dir: Path) -> Path | None:
    samples = sorted((run_dir / "samples").glob("*.png"), key=lambda p: (p.stat().st_mtime, p.name))
    return samples[-1] if samples else None


def start_summary(session) -> dict:
    """Device, precision, attention kernel, adapter modules per part, trainable parameters and step counts, as
    sd-scripts prints them at start."""
    models, prec = session.models, session.prec
    processors = {type(p).__name__ for p in models.unet.attn_processors.values()}
    lora = models.lora
    return {
        "device": prec.device,
        "precision": f"mixed {prec.mixed}, weights {_dtype(prec.weight_dtype)}, adapter {_dtype(prec.adapter_dtype)}, "
                     f"VAE {_dtype(prec.vae_dtype)}",
        "attention": ("SDPA on" if processors == {"AttnProcessor2_0"} else "SDPA off") + f" ({', '.join(sorted(processors))})",
        "modules": lora.module_counts(),
        "module_kind": "trained" if session.cfg.model.training_type == "dreambooth" else "adapter",
        "trainable_params": sum(p.numel() for p in lora.parameters()),
        "steps_per_epoch": session.per_epoch,
        "total_steps": session.total,
        "epochs": session.epochs,
    }


def _dtype(dtype) -> str:
    return str(dtype).removeprefix("torch.")


def card_file(path: Path) -> Path:
    """The model card written beside a final save."""
    return path.with_suffix(".md")


def hand_off(session, path: Path, built: dict[str, str], kind: str = "LoRA", extra: dict | None = None) -> None:
    """After the final save: the model card next to the file, and (with a Hub repository set) the files the upload
    sends, kept in session.hub_files for trainer.engine.hub_sync once the save is complete. The card reads the file's own
    header (sshs hashes included) over `built`, the header made for it (all a .ckpt/.pt file has; a checkpoint's
file keeps only the model spec).
    `extra`: more files to upload, by their path in the repository (a Dreambooth diffusers folder)."""
    from trainer.networks.save import is_pickle
    from trainer.publish.card import Sample, model_card
    from trainer.publish.upload import Target
    from trainer.textio import atomic_write_text

    cfg, rep = session.cfg, session.rep
    header = {**built, **({} if is_pickle(path) else file_header(path))}
    samples = latest_samples(session.run_dir)
    if cfg.publish.model_card:
        card = card_file(path)
        links = [Sample(os.path.relpath(p, path.parent).replace(os.sep, "/"), prompt) for p, prompt in samples]
        atomic_write_text(card, model_card(header, path.name, links, kind))
        rep.saved(step=session.progress.global_step, epoch=session.progress.epoch, path=card, kind="card")
    if not Target.of(cfg.publish).repo_id:
        return
    files = {path.name: path, "README.md": model_card(
        header, path.name, [Sample(f"samples/{p.name}", prompt) for p, prompt in samples], kind).encode("utf-8")}
    files.update({f"samples/{p.name}": p for p, _ in samples})
    files.update(extra or {})
    session.hub_files = files  # sent once the save is complete, its state included (trainer.engine.hub_sync)


def latest_samples(run_dir: Path) -> list[tuple[Path, str]]:
    """The newest round of preview images (those of the last step that made any) with their prompts."""
    from trainer.events import read_events

    shown = [e for e in read_events(run_dir)[0] if e.get("type") == "sample" and Path(e["path"]).is_file()]
    last = max((e["step"] for e in shown), default=None)
    return [(Path(e["path"]), e.get("prompt", "")) for e in shown if e["step"] == last]


def file_header(path: Path) -> dict[str, str]:
    """A safetensors file's header metadata, as written."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})
