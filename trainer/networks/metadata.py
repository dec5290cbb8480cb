"""The training header (`__metadata__`) of a LoRA file, key for key and in the value forms sd-scripts writes.

WebUI/Forge's LoRA tab, Civitai's uploader and LoRA managers read these. Every value is a string: numbers and
booleans as Python prints them, unset values as "None", dicts as JSON, as sd-scripts does. The training settings
come from the arguments sd-scripts would run this config with (`export_kohya` plus sd-scripts' own defaults for
what Danlu does not have), so the two can never disagree. Danlu's own keys use the `danlu_` prefix.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from trainer.config import TrainConfig, dump_config, parse_resolution
from trainer.config.kohya import export_kohya
from trainer.config.rules_images import parse_face_crop_range
from trainer.config.sd_scripts import ARG_DEFAULTS
from trainer.networks.modelspec import modelspec

# Header keys that are sd-scripts arguments: ss_<name> is the value the run used.
ARG_KEYS = (
    "output_name", "learning_rate", "text_encoder_lr", "unet_lr", "gradient_checkpointing",
    "gradient_accumulation_steps", "lr_warmup_steps", "lr_scheduler", "network_module", "network_dim",
    "network_alpha", "network_dropout", "mixed_precision", "full_fp16", "v2", "clip_skip", "max_token_length",
    "cache_latents", "seed", "lowram", "noise_offset", "multires_noise_iterations", "multires_noise_discount",
    "adaptive_noise_scale", "zero_terminal_snr", "max_grad_norm", "caption_dropout_rate",
    "caption_dropout_every_n_epochs", "caption_tag_dropout_rate", "face_crop_aug_range", "prior_loss_weight",
    "min_snr_gamma", "scale_weight_norms", "ip_noise_gamma", "noise_offset_random_strength",
    "ip_noise_gamma_random_strength", "loss_type", "huber_schedule", "huber_scale", "huber_c", "fp8_base",
    "fp8_base_unet", "validation_seed", "validation_split", "max_validation_steps", "validate_every_n_epochs",
    "validate_every_n_steps", "resize_interpolation", "color_aug", "flip_aug", "random_crop", "shuffle_caption",
    "enable_bucket", "bucket_no_upscale", "min_bucket_reso", "max_bucket_reso", "keep_tokens",
)
RENAMED = {"ss_batch_size_per_device": "train_batch_size", "ss_debiased_estimation": "debiased_estimation_loss"}
NOT_SD_SCRIPTS = "(unknown)"  # sd-scripts' own ss_sd_scripts_commit_hash when it is not a git checkout


@dataclass
class RunFacts:
    """What the header says about a run besides its config; the session fills this in once at start."""

    session_id: int  # random, shared by every file of one run (sd-scripts: which epochs belong together)
    started_at: float
    base_model_version: str  # ss_base_model_version: sd_v1, sdxl_base_v1-0, flux1
    architecture: str  # modelspec.architecture of the base (trainer.families), e.g. stable-diffusion-v1
    implementation: str  # modelspec.implementation, e.g. diffusers
    num_train_images: int  # images x repeats
    num_reg_images: int
    batches_per_epoch: int
    epochs: int
    total_steps: int
    optimizer: str  # class path and args, trainer.engine.optim.optimizer_description
    dataset: dict[str, Any] = field(default_factory=dict)  # dataset_facts(...)
    bucket_info: dict | None = None  # None with bucketing off
    model_identity: dict[str, str] = field(default_factory=dict)  # trainer.networks.hashes
    num_processes: int = 1
    num_validation_images: int = 0  # held out or from validation_dir
    header_args: tuple[str, ...] = ()  # the family's own sd-scripts arguments, written as ss_<name> (Family.header_args)
    # network_dim, network_alpha, conv_dim, conv_alpha as trained when they came from network_weights (dim_from_weights:
    # trainer.networks.file_dims.FileDims.dims), in place of the config's; conv_* None: no convolution layers
    network_dims: dict[str, Any] = field(default_factory=dict)


def sd_scripts_args(cfg: TrainConfig) -> dict[str, Any]:
    """The arguments sd-scripts' train_network.py would run this config with."""
    return {**ARG_DEFAULTS, **export_kohya(cfg)}


def text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)


def dataset_facts(items) -> dict[str, Any]:
    """ss_tag_frequency, ss_dataset_dirs and ss_reg_dataset_dirs as sd-scripts counts them, from scanned ImageItems:
    every tag occurrence counts (lower-cased, in first-seen order), regularisation folders included."""
    from trainer.data.scan import parse_subset_name

    tags: dict[str, dict[str, int]] = {}
    dirs: dict[str, dict[str, int]] = {}
    reg_dirs: dict[str, dict[str, int]] = {}
    for item in items:
        counts = tags.setdefault(item.subset, {})
        for tag in item.caption.split(","):
            if tag.strip():
                counts[tag.strip().lower()] = counts.get(tag.strip().lower(), 0) + 1
        info = (reg_dirs if item.is_reg else dirs).setdefault(
            item.subset, {"n_repeats": parse_subset_name(item.subset)[0], "img_count": 0})
        info["img_count"] += 1
    return {"tag_frequency": tags, "dataset_dirs": dirs, "reg_dataset_dirs": reg_dirs}


def training_header(cfg: TrainConfig, run: RunFacts, *, steps: int, epoch: int, finished_at: float | None = None,
                    thumbnail: str = "") -> dict[str, str]:
    """The whole header of a LoRA saved after `steps` optimizer steps in epoch `epoch` (sshs_* hashes are added
    by save_lora, which knows the tensor bytes)."""
    args = sd_scripts_args(cfg)
    t = cfg.training
    resolution = parse_resolution(cfg.dataset.resolution)
    facts: dict[str, Any] = {f"ss_{k}": args[k] for k in ARG_KEYS}
    if args["face_crop_aug_range"]:  # sd-scripts has parsed "lo,hi" into a tuple of floats when it writes it
        facts["ss_face_crop_aug_range"] = parse_face_crop_range(args["face_crop_aug_range"])
    facts.update({k: args[name] for k, name in RENAMED.items()})
    facts.update({f"ss_{name}": args[name] for name in run.header_args})
    facts.update({
        "ss_training_comment": cfg.publish.training_comment or None,  # what the file says of itself, as sd-scripts
        "ss_session_id": run.session_id, "ss_training_started_at": run.started_at,
        "ss_training_finished_at": finished_at if finished_at is not None else time.time(),
        "ss_steps": steps, "ss_epoch": epoch, "ss_num_epochs": run.epochs, "ss_max_train_steps": run.total_steps,
        "ss_num_train_images": run.num_train_images, "ss_num_reg_images": run.num_reg_images,
        "ss_num_validation_images": run.num_validation_images, "ss_num_batches_per_epoch": run.batches_per_epoch,
        "ss_total_batch_size": t.train_batch_size * run.num_processes * t.gradient_accumulation_steps,
        "ss_resolution": tuple(resolution), "ss_base_model_version": run.base_model_version,
        "ss_optimizer": run.optimizer, "ss_sd_scripts_commit_hash": NOT_SD_SCRIPTS,
        "ss_tag_frequency": run.dataset.get("tag_frequency", {}),
        "ss_dataset_dirs": run.dataset.get("dataset_dirs", {}),
        "ss_reg_dataset_dirs": run.dataset.get("reg_dataset_dirs", {}),
        "ss_bucket_info": json.dumps(run.bucket_info if cfg.dataset.enable_bucket else None),
        **run.model_identity,
    })
    net_args = {k.strip(): v.strip() for k, _, v in (str(a).partition("=") for a in args.get("network_args") or [])}
    if run.network_dims:
        net_args = _trained_dims(facts, net_args, run.network_dims)
    if net_args:  # sd-scripts writes the key only when network_args were given, values as the strings given
        facts["ss_network_args"] = net_args
    header = {k: text(v) for k, v in facts.items()}
    header.update(_modelspec(cfg, run, resolution, thumbnail))
    header.update(danlu_keys(cfg))
    return header


def _trained_dims(facts: dict[str, Any], net_args: dict[str, str], dims: dict[str, Any]) -> dict[str, str]:
    """ss_network_dim/ss_network_alpha and the conv_dim/conv_alpha network_args of the dims a run took from its
    file ("Dynamic" where its modules differ, as sd-scripts' resize_lora writes); the network_args without them."""
    facts["ss_network_dim"], facts["ss_network_alpha"] = dims["network_dim"], dims["network_alpha"]
    rest = {k: v for k, v in net_args.items() if k not in ("conv_dim", "conv_alpha")}
    if dims.get("conv_dim") is None:
        return rest
    return {**rest, "conv_dim": str(dims["conv_dim"]), "conv_alpha": str(dims["conv_alpha"])}


def _modelspec(cfg: TrainConfig, run: RunFacts, resolution, thumbnail: str) -> dict[str, str]:
    pub = cfg.publish
    return modelspec(
        architecture=run.architecture, implementation=run.implementation,
        title=pub.metadata_title or cfg.save.output_name, resolution=resolution,
        # every family so far predicts DDPM noise or v; a flow-matching family (Flux) writes none
        prediction_type="v" if cfg.model.v_parameterization else "epsilon", timestamp=run.started_at,
        implementation_version=f"danlu/{danlu_version()}", clip_skip=cfg.other.clip_skip,
        optional={"trigger_phrase": cfg.caption.trigger_word.strip(), "description": pub.metadata_description,
                  "author": pub.metadata_author, "license": pub.metadata_license, "tags": pub.metadata_tags,
                  "thumbnail": thumbnail})


# What loaders read (sd-scripts' SS_METADATA_MINIMUM_KEYS), which no_metadata keeps, with the model spec the user
# wrote (not the automatic thumbnail), the hashes save_lora adds and Danlu's version.
MINIMUM_KEYS = ("ss_v2", "ss_base_model_version", "ss_network_module", "ss_network_dim", "ss_network_alpha",
                "ss_network_args", "danlu_version")


def kept_in_file(cfg: TrainConfig, header: dict[str, str]) -> dict[str, str]:
    """The header a saved file holds: all of it, or with publish.no_metadata only what loaders read."""
    if not cfg.publish.no_metadata:
        return header
    return {k: v for k, v in header.items()
            if k in MINIMUM_KEYS or k.startswith("modelspec.") and k != "modelspec.thumbnail"}


def danlu_keys(cfg: TrainConfig) -> dict[str, str]:
    """Danlu's own keys: its version and the full effective config, so the file can be retrained exactly."""
    return {"danlu_version": danlu_version(), "danlu_config": dump_config(cfg)}


def danlu_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("danlu")
    except PackageNotFoundError:
        return "dev"
