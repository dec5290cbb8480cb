"""What kohya sd-scripts' train_network.py does with the options a config file leaves out.

ARG_DEFAULTS holds the argument defaults as sd-scripts defines them (`library/train_util.py` and
`train_network.py`, read 2026-02): the value of an option a command line or `--config_file` omits. `store_true`
flags default to False; None means "not set", which sd-scripts reads as off, except where NONE_MEANS says what it
does instead. An imported flat sd-scripts / SD-Trainer TOML gets these, not Danlu's own defaults, so it trains what
sd-scripts would train; the LoRA header (trainer.networks.metadata) writes them for settings Danlu lacks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

ARG_DEFAULTS: dict[str, Any] = {
    # model
    "pretrained_model_name_or_path": None, "vae": None, "v2": False, "v_parameterization": False,
    # dataset
    "train_data_dir": None, "reg_data_dir": None, "prior_loss_weight": 1.0, "enable_bucket": False,
    "min_bucket_reso": 256, "max_bucket_reso": 1024, "bucket_reso_steps": 64, "bucket_no_upscale": False,
    "caption_extension": ".caption", "shuffle_caption": False, "weighted_captions": False, "keep_tokens": 0,
    "keep_tokens_separator": "", "max_token_length": None, "caption_dropout_rate": 0.0,
    "caption_prefix": None, "caption_suffix": None, "caption_separator": ",", "secondary_separator": None,
    "token_warmup_min": 1, "token_warmup_step": 0,
    "caption_dropout_every_n_epochs": 0, "caption_tag_dropout_rate": 0.0, "enable_wildcard": False, "color_aug": False, "flip_aug": False,
    "random_crop": False, "alpha_mask": False, "conditioning_data_dir": None, "face_crop_aug_range": None, "resize_interpolation": None,
    # saving
    "output_name": None, "output_dir": None, "save_model_as": "safetensors", "save_precision": None,
    "save_every_n_epochs": None, "save_every_n_steps": None, "save_last_n_epochs": None, "save_last_n_steps": None,
    "save_state": False, "save_last_n_epochs_state": None, "save_last_n_steps_state": None,
    "save_state_on_train_end": False, "resume": None, "training_comment": None, "no_metadata": False,
    "save_n_epoch_ratio": None,
    # training
    "max_train_steps": 1600, "max_train_epochs": None, "train_batch_size": 1, "gradient_checkpointing": False,
    "gradient_accumulation_steps": 1, "network_train_unet_only": False, "network_train_text_encoder_only": False,
    "max_grad_norm": 1.0, "seed": None, "clip_skip": None,
    "initial_step": None, "initial_epoch": None, "skip_until_initial_step": False,
    # optimizer and schedule
    "optimizer_type": "", "optimizer_args": None, "learning_rate": 2e-6, "unet_lr": None, "text_encoder_lr": None,
    "lr_scheduler": "constant", "lr_warmup_steps": 0, "lr_scheduler_num_cycles": 1, "lr_scheduler_power": 1.0,
    "lr_decay_steps": 0, "lr_scheduler_min_lr_ratio": None, "lr_scheduler_timescale": None,
    "loss_type": "l2", "huber_schedule": "snr", "huber_c": 0.1, "huber_scale": 1.0, "min_snr_gamma": None,
    "debiased_estimation_loss": False, "scale_v_pred_loss_like_noise_pred": False, "v_pred_like_loss": None,
    "scale_weight_norms": None,
    # network
    "network_module": None, "network_dim": None, "network_alpha": 1.0, "network_dropout": None,
    "network_weights": None, "dim_from_weights": False, "network_args": None, "base_weights": None,
    "base_weights_multiplier": None,
    # noise
    "noise_offset": None, "noise_offset_random_strength": False, "multires_noise_iterations": None,
    "multires_noise_discount": 0.3, "adaptive_noise_scale": None, "ip_noise_gamma": None,
    "ip_noise_gamma_random_strength": False, "zero_terminal_snr": False,
    # samples and logging
    "sample_sampler": "ddim", "sample_at_first": False, "sample_every_n_epochs": None, "sample_every_n_steps": None, "log_with": None, "log_config": False,
    "log_prefix": None, "log_tracker_name": None, "logging_dir": None,
    # speed and memory
    "mixed_precision": "no", "full_fp16": False, "full_bf16": False, "fp8_base": False, "fp8_base_unet": False,
    "no_half_vae": False, "lowram": False, "cache_latents": False, "cache_latents_to_disk": False,
    "cache_text_encoder_outputs": False, "cache_text_encoder_outputs_to_disk": False,
    "max_data_loader_n_workers": 8, "persistent_data_loader_workers": False, "vae_batch_size": 1, "sdpa": False,
    "xformers": False, "text_encoder_batch_size": None, "ddp_timeout": None, "ddp_gradient_as_bucket_view": False, "ddp_static_graph": False,
    # Flux (flux_train_network.py, library/flux_train_utils.py)
    "timestep_sampling": "sigma", "sigmoid_scale": 1.0, "model_prediction_type": "sigma_scaled",
    "discrete_flow_shift": 3.0, "guidance_scale": 3.5, "t5xxl_max_token_length": None, "apply_t5_attn_mask": False,
    "weighting_scheme": "uniform", "logit_mean": 0.0, "logit_std": 1.0, "mode_scale": 1.29, "model_type": "flux",
    # validation
    "validation_seed": None, "validation_split": 0.0, "validate_every_n_steps": None, "validate_every_n_epochs": None,
    "max_validation_steps": None,
    # model-spec header and Hugging Face Hub upload
    "metadata_title": None, "metadata_author": None, "metadata_description": None, "metadata_license": None,
    "metadata_tags": None, "huggingface_repo_id": None, "save_state_to_huggingface": False, "huggingface_repo_type": None,
    "huggingface_path_in_repo": None, "huggingface_repo_visibility": None,
}
# What sd-scripts does when these are None (or "" for optimizer_type), in Danlu's terms.
NONE_MEANS: dict[str, Any] = {
    "max_token_length": 75, "clip_skip": 1, "network_dim": 4,  # networks.lora's own default rank
    "network_module": "networks.lora",  # required by train_network.py; the LoRA it means
    "optimizer_type": "AdamW", "output_name": "last",  # train_util.DEFAULT_LAST_OUTPUT_NAME
    "huggingface_repo_type": "model", "huggingface_repo_visibility": "private",  # huggingface_util.upload
    "validate_every_n_epochs": 1,  # train_network.py validates at every epoch end when it is unset
    "t5xxl_max_token_length": 512,  # Flux.1-dev's (sd-scripts uses 256 for schnell)
    "resize_interpolation": "auto",  # area where a picture shrinks, lanczos where it grows (library/utils.py)
}
# sd-scripts values with another name in Danlu, by sd-scripts key ("uniform and none are the same behavior").
VALUE_ALIASES: dict[str, dict[Any, Any]] = {"weighting_scheme": {"uniform": "none"},
                                            "resize_interpolation": {"linear": "bilinear", "cubic": "bicubic"}}
# sd-scripts' sample prompt defaults (a prompt line without --s/--l/--w/--h), by Danlu's sampling field names.
PROMPT_DEFAULTS = {"sample_steps": 30, "sample_cfg": 7.5, "sample_width": 512, "sample_height": 512}
# Left at Danlu's value: unset in sd-scripts means "use max_train_steps", which the fill sets instead.
NOT_FILLED = frozenset({"max_train_epochs"})
OFF_BY_KIND = {"int": 0, "float": 0.0, "str": "", "bool": False, "list_str": [], "list_float": []}


@dataclass(frozen=True)
class Filled:
    """One setting an imported file left out, and the value sd-scripts uses for it."""

    path: str  # group.name
    value: Any
    why: str = ""

    def text(self) -> str:
        return f"{self.path} = {self.value!r} (sd-scripts' default{': ' + self.why if self.why else ''})"


def unalias(p, raw: Any) -> Any:
    """An sd-scripts value of parameter `p` (a ParamInfo) under Danlu's name for it (VALUE_ALIASES), else as is."""
    return VALUE_ALIASES.get(p.kohya_key, {}).get(raw, raw) if isinstance(raw, str) else raw


def danlu_value(p, raw: Any) -> Any:
    """An sd-scripts default in Danlu's form for parameter `p` (a ParamInfo)."""
    raw = unalias(p, raw)
    if raw is None or (raw == "" and p.name in NONE_MEANS):
        if p.name in NONE_MEANS:
            return NONE_MEANS[p.name]
        return None if p.optional else OFF_BY_KIND[p.kind]
    return raw


def _derived(values: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    """Defaults that depend on other options (sd-scripts computes them at start)."""
    out: dict[str, tuple[Any, str]] = {}
    if "max_train_epochs" in values:  # sd-scripts: max_train_epochs, when given, overrides max_train_steps
        out["max_train_steps"] = (0, "max_train_epochs is set, so the epoch count decides")
    else:
        out["max_train_steps"] = (ARG_DEFAULTS["max_train_steps"], "")
    out["log_with"] = ("tensorboard", "logging_dir is set") if values.get("logging_dir") else ("none", "no logging")
    half = "fp16" if values.get("full_fp16") else "bf16" if values.get("full_bf16") else "float"
    out["save_precision"] = (half, "the dtype the LoRA was trained in")
    out["seed"] = (random.randint(0, 2**32 - 1), "sd-scripts draws a random seed; this one is kept in the config")
    return out


def fill_defaults(values: dict[str, Any], params: dict[str, Any], family: str) -> list[Filled]:
    """Add sd-scripts' value for every option `values` (Danlu names) lacks; returns what was added.

    `params` maps Danlu names to ParamInfo. Planned (not yet implemented) parameters and those of other
    families are left at Danlu's default, since setting them would be an error.
    """
    filled: list[Filled] = []
    derived = _derived(values)
    for name, p in params.items():
        if name in values or name in NOT_FILLED or p.planned or family not in p.families:
            continue
        if name in derived:
            value, why = derived[name]
        elif name in PROMPT_DEFAULTS:
            value, why = PROMPT_DEFAULTS[name], "a prompt line without its own option"
        elif p.kohya_key in ARG_DEFAULTS:
            value, why = danlu_value(p, ARG_DEFAULTS[p.kohya_key]), ""
        else:
            continue
        values[name] = value
        filled.append(Filled(p.path, value, why))
    if values.get("max_train_steps") and "max_train_epochs" in values:
        values["max_train_steps"] = 0  # the file sets both: sd-scripts trains for the epochs
        filled.append(Filled(params["max_train_steps"].path, 0, "max_train_epochs overrides it in sd-scripts"))
    return filled
