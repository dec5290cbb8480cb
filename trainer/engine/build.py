"""Building a run's pieces from its config: models with LoRA adapters, the dataset, the optimizer."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch

from trainer.config import TrainConfig, parse_resolution
from trainer.config.groups_optim import rates_of
from trainer.data.captions import has_tag, trigger_first
from trainer.engine.errors import EngineError
from trainer.engine.optim import OptimizerArgError, make_optimizer, make_scheduler
from trainer.engine.precision import Precision
from trainer.networks.inject import TEXT_ENCODER_NAMES


@dataclass
class Models:
    family: object  # trainer.families.base.Family
    unet: torch.nn.Module
    vae: torch.nn.Module
    text_encoders: list  # the family's order: [CLIP-L] for SD1.x, [CLIP-L, bigG] for SDXL
    tokenizers: list
    noise_scheduler: object
    lora: object  # a network from trainer.networks.factory (LoraSet, LycorisSet)
    train_unet: bool
    train_text_encoder: bool
    block_swap: object = None  # trainer.engine.block_swap.BlockSwap when flux.blocks_to_swap is set
    file_dims: object = None  # trainer.networks.file_dims.FileDims of network_weights with dim_from_weights


def load_models(cfg: TrainConfig, prec: Precision, cache_dir: Path, status, warn) -> Models:
    from trainer.families import get_family

    m, family = cfg.model, get_family(cfg.model.family).for_config(cfg)
    try:
        parts = family.load(m, cache_dir, status, **_load_dtypes(family, m, prec))
    except (FileNotFoundError, ValueError) as exc:
        raise EngineError(str(exc), "Check model.base_model and model.vae.") from None
    if not family.flow_matching:
        parts.noise_scheduler = _prediction_scheduler(parts.noise_scheduler, m.v_parameterization, warn,
                                                      zero_terminal_snr=cfg.noise.zero_terminal_snr)
    t = cfg.training
    train_unet, train_te = not t.network_train_text_encoder_only, not t.network_train_unet_only
    full = None
    if m.training_type == "dreambooth":  # the parts themselves train: no adapters
        from trainer.engine.full import full_set, start_ema, trains_text_encoder

        if cfg.network.scale_weight_norms:
            raise EngineError("network.scale_weight_norms bounds LoRA/LyCORIS layers; a dreambooth run has none",
                              "Set network.scale_weight_norms to 0.")
        full = full_set(parts.unet, parts.text_encoders, cfg, train_unet, train_te)
        train_unet, train_te = "unet" in full.models, trains_text_encoder(full)
    try:
        swapped = family.swapped_blocks(parts.unet)
    except ValueError as exc:
        raise EngineError(str(exc), "Lower flux.blocks_to_swap.") from None
    # An fp8 or block-swapped denoiser is made ready in CPU memory and moved once its adapters exist: moving it
    # to the GPU whole first is the peak those options are there to avoid.
    later = cfg.speed.fp8_base or bool(swapped)
    for module in (parts.unet, *parts.text_encoders):
        # Trained parts go straight to the training dtype: a detour through fp16 would round their weights.
        trained = full is not None and any(module is x for x in full.models.values())
        module.to(None if later and module is parts.unet else prec.device,
                  dtype=prec.adapter_dtype if trained else prec.weight_dtype)
    parts.vae.to(prec.device, dtype=torch.float32 if family.vae_fp32 else prec.vae_dtype)
    if cfg.speed.fp8_base:  # before the adapters exist, so only the frozen base layers are stored in fp8
        from trainer.engine.fp8 import store_in_fp8

        store_in_fp8(parts.unet, prec.weight_dtype)
    parts.vae.requires_grad_(False)
    lora, file_dims = (full, None) if full is not None else _add_lora(cfg, parts, family, train_unet, train_te, warn,
                                                                      status)
    train_te = train_te and bool(lora.text_encoder_params())  # networks.oft has none (the check said so)
    for p in lora.parameters():
        p.data = p.data.to(prec.adapter_dtype)
    block_swap = None
    if swapped:
        from trainer.engine.block_swap import BlockSwap

        block_swap = BlockSwap(swapped, prec.device, lambda: parts.unet.is_gradient_checkpointing).install(parts.unet)
        status(f"blocks_to_swap: {len(swapped)} transformer blocks wait in CPU memory between uses")
    elif later:
        parts.unet.to(prec.device)
    if full is not None:
        start_ema(full, cfg)
    if t.gradient_checkpointing:
        parts.unet.enable_gradient_checkpointing()
        if train_te:
            for te in parts.text_encoders:
                # transformers 5 renamed it (the old name warns, and goes in v6); 4.x has only the old name.
                (getattr(te, "activation_checkpointing_enable", None) or te.gradient_checkpointing_enable)()
    from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

    # sdpa off means the plain matmul-softmax attention (for debugging or old GPUs), not diffusers' default.
    if not family.flow_matching:  # Flux keeps its own (sdpa) attention processors
        parts.unet.set_attn_processor(AttnProcessor2_0() if cfg.speed.sdpa else AttnProcessor())
    parts.unet.train(train_unet)
    for te in parts.text_encoders:
        te.train(train_te)
    return Models(family, parts.unet, parts.vae, parts.text_encoders, parts.tokenizers, parts.noise_scheduler, lora,
                  train_unet, train_te, block_swap, file_dims)


def _load_dtypes(family, m, prec: Precision) -> dict:
    """The dtypes a family that can read its weights straight into them gets: what the casts below would give.
    A dreambooth run trains some parts in adapter_dtype and keeps others in weight_dtype, so it reads float32
    unless the two agree (reading in one and casting to the other would round the weights twice)."""
    if not family.loads_in_run_dtype:
        return {}
    dtype = prec.weight_dtype
    if m.training_type == "dreambooth" and prec.adapter_dtype != prec.weight_dtype:
        dtype = torch.float32
    return {"dtype": dtype, "vae_dtype": torch.float32 if family.vae_fp32 else prec.vae_dtype}


def _add_lora(cfg: TrainConfig, parts, family, train_unet: bool, train_te: bool, warn, status):
    """The network `network.network_module` names (trainer.networks.factory), continued from network_weights."""
    from trainer.networks.factory import build_network

    n = cfg.network
    if n.enable_base_weight and n.base_weights:
        from trainer.networks.base_weights import merge_base_weights

        try:
            for line in merge_base_weights(n.base_weights, n.base_weights_multiplier, parts.unet,
                                           parts.text_encoders, family.name):
                status(line)  # the new file will not contain them: they are part of the base now
        except (OSError, ValueError) as exc:
            raise EngineError(str(exc), "Check network.base_weights: files made for this model family.") from None
    weights = _weights_for_trained_parts(n.network_weights, train_unet, train_te, warn, family.name) \
        if n.network_weights else None
    dims = _file_dims(n, weights, status) if weights is not None and n.dim_from_weights else None
    try:
        lora = build_network(n, family.name, parts.unet, family.adapted_text_encoders(parts.text_encoders),
                             train_unet=train_unet, train_text_encoder=train_te, dims=dims)
    except ValueError as exc:
        raise EngineError(str(exc), "Fix the network settings named above.") from None
    if weights is not None:
        try:
            notes = lora.load_weights(weights, family=family.name)
        except ValueError as exc:
            raise _weights_error(n.network_weights, exc) from None
        for note in notes or ():  # where the file and the config disagree, and which one this run follows
            warn(f"network.network_weights: {Path(n.network_weights).name}: {note}", "")
    return lora, dims


def _weights_error(path: str, exc: Exception) -> EngineError:
    return EngineError(f"network.network_weights: {Path(path).name}: {exc}",
                       "Use a file of this network type, made for this model family with the same network_dim/conv_dim, "
                       "or turn on network.dim_from_weights to take them from the file.")


def _file_dims(n, weights: dict, status):
    """The ranks and alphas of the file a dim_from_weights run continues (trainer.networks.file_dims)."""
    from trainer.networks.file_dims import FileDims

    try:
        dims = FileDims.of(weights)
    except ValueError as exc:
        raise EngineError(f"{exc} ({Path(n.network_weights).name})", "Fix the network settings named above.") from None
    status(f"network.dim_from_weights: {Path(n.network_weights).name} has {len(dims.modules)} modules; "
           + ", ".join(f"{k} {v}" for k, v in dims.dims().items() if v is not None))
    return dims


def _prediction_scheduler(scheduler, v_prediction: bool, warn, zero_terminal_snr: bool = False):
    """The noise scheduler with the prediction type (and, for zero_terminal_snr, the betas rescaled so the last
    timestep is pure noise) the config asks for; previews inherit it."""
    wanted = "v_prediction" if v_prediction else "epsilon"
    found = scheduler.config.get("prediction_type", "epsilon")
    if found != wanted:
        warn(f"the base model's scheduler predicts {found}, but model.v_parameterization asks for {wanted}",
             "Set model.v_parameterization to match the model, unless you know it was trained otherwise.")
    return type(scheduler).from_config(scheduler.config, prediction_type=wanted, rescale_betas_zero_snr=zero_terminal_snr)


def _weights_for_trained_parts(path: str, train_unet: bool, train_te: bool, warn, family: str) -> dict:
    """network_weights without the parts this run does not train (a U-Net-only run of a full LoRA)."""
    from trainer.families import get_spec
    from trainer.networks.save import read_lora

    try:
        tensors, meta = read_lora(path)
    except (OSError, ValueError) as exc:
        raise _weights_error(path, exc) from None
    naming = get_spec(family).lora_naming
    note = naming.file_note(meta)  # Flux: how other tools read an sd-scripts split_qkv file
    if note:
        warn(f"network.network_weights: {Path(path).name}: {note}",
             "Nothing to change if the file looks right in ComfyUI or Forge: the new file keeps that strength.")
    unet = naming.unet_prefixes  # Flux: also the sliced lycoris_ names of LoKr/DoRA
    drop = tuple(p for prefixes, trained in ((unet, train_unet), (("lora_te",), train_te)) if not trained
                 for p in prefixes)
    kept = {k: v for k, v in tensors.items() if not k.startswith(drop)} if drop else tensors
    if len(kept) != len(tensors):
        warn(f"network.network_weights: {len(tensors) - len(kept)} tensors of parts this run does not train "
             f"({', '.join(drop)}) were left out", "They are not in the new file either.")
    return kept


def module_fingerprint(module: torch.nn.Module) -> str:
    """Changes when a model's config or weights change, so stale cached latents or text-encoder outputs
    are never reused."""
    config = module.config.to_dict() if hasattr(module.config, "to_dict") else dict(module.config)
    h = hashlib.sha1(json.dumps(config, sort_keys=True, default=str).encode())
    state = module.state_dict()
    for _, tensor in list(state.items())[:: max(1, len(state) // 8)]:
        h.update(tensor.detach().float().cpu().flatten()[:256].numpy().tobytes())
    return h.hexdigest()[:16]


def with_trigger(items: list, trigger: str, weighted: bool = False, separator: str = ",") -> list:
    """Put the trigger word first in every training caption that lacks it, as a tag of its own under the run's
    caption_separator. With weighted captions a weighted trigger, (zk:1.2), counts as present."""
    if not trigger.strip():
        return items
    trigger = trigger.strip()
    from trainer.engine.prompt_weights import plain_text

    def fix(text: str) -> str:
        return trigger_first(text, trigger, has_tag(plain_text(text) if weighted else text, trigger, separator), separator)

    # Regularisation images show the plain class: the trigger word must not be learned from them.
    return [it if it.is_reg else
            dataclasses.replace(it, caption=fix(it.caption), caption_lines=tuple(fix(x) for x in it.caption_lines))
            for it in items]


def caption_text(c) -> dict:
    """DanluDataset's arguments for the caption settings `c` that change every caption alike, each step: training
    and validation captions both get them."""
    return dict(caption_prefix=c.caption_prefix, caption_suffix=c.caption_suffix,
                caption_separator=c.caption_separator, secondary_separator=c.secondary_separator)


def warmup_steps(o, total_steps: int) -> int:
    """The warm-up of optimizer settings `o`: lr_warmup_steps, else lr_warmup_ratio of the run's steps (truncated,
    as sd-scripts counts a fractional lr_warmup_steps)."""
    return o.lr_warmup_steps or int(o.lr_warmup_ratio * total_steps)


def decay_steps(o, total_steps: int) -> int:
    """warmup_stable_decay's decay: lr_decay_steps, else lr_decay_ratio of the run's steps (truncated, as sd-scripts
    counts a fractional lr_decay_steps)."""
    return o.lr_decay_steps or int(o.lr_decay_ratio * total_steps)


def resolution_of(cfg: TrainConfig) -> tuple[int, int]:
    return parse_resolution(cfg.dataset.resolution)


def text_encoder_rates(o, n_encoders: int) -> list[float]:
    """The learning rate of each of `n_encoders` text encoders from the optimizer settings `o`: its own in
    text_encoder_lr = [te1, te2], the one shared rate, else learning_rate."""
    rates = rates_of(o.text_encoder_lr)
    if not rates:
        return [o.learning_rate] * n_encoders
    return [rates[min(i, len(rates) - 1)] for i in range(n_encoders)]


def param_groups(cfg: TrainConfig, models: Models) -> tuple[list[dict], list[str]]:
    o = cfg.optimizer
    if hasattr(models.lora, "param_groups"):  # Dreambooth: one group per trained component, own rates
        return models.lora.param_groups()
    groups, names = [], []
    unet_lr = o.unet_lr if o.unet_lr is not None else o.learning_rate
    if models.train_unet and cfg.network.enable_block_weights:
        from trainer.networks.block_lr import unet_groups

        try:
            groups, names = unet_groups(models.lora.unet_modules(models.family.name), models.family.name,
                                        cfg.network, unet_lr)
        except ValueError as exc:
            raise EngineError(str(exc), "Fix the block weights named above.") from None
    elif models.train_unet:
        groups.append({"params": models.lora.unet_params(), "lr": unet_lr})
        names.append("unet")
    if models.train_text_encoder:
        # one group per encoder, each at its own rate (text_encoder_lr = [te1, te2]); sd-scripts skips a group
        # whose rate is 0, leaving that encoder untrained
        for name, lr in zip(TEXT_ENCODER_NAMES, text_encoder_rates(o, len(TEXT_ENCODER_NAMES)), strict=True):
            params = models.lora.text_encoder_params(name)
            if params and lr > 0:
                groups.append({"params": params, "lr": lr})
                names.append(name)
    return groups, names


def build_optimizer(cfg: TrainConfig, models: Models, total_steps: int):
    o = cfg.optimizer
    groups, names = param_groups(cfg, models)
    try:
        optimizer = make_optimizer(o.optimizer_type, groups, o.learning_rate, o.optimizer_args,
                                   fused=cfg.speed.fused_optimizer)
    except OptimizerArgError as exc:
        raise EngineError(str(exc), "Fix or remove the optimizer_args entry.") from None
    except ImportError as exc:
        raise EngineError(f"optimizer.optimizer_type {o.optimizer_type} is unavailable: {exc}",
                          "Install its package, or choose AdamW.") from None
    return optimizer, build_scheduler(o, optimizer, total_steps), names


def build_scheduler(o, optimizer, total_steps: int):
    """The learning-rate schedule of optimizer settings `o` over a run of `total_steps` optimizer steps."""
    warm, decay = warmup_steps(o, total_steps), decay_steps(o, total_steps)
    if o.lr_scheduler == "warmup_stable_decay" and not o.lr_scheduler_type and warm + decay > total_steps:
        # transformers would start the decay inside the warm-up, an odd curve nobody asked for
        raise EngineError(f"optimizer.lr_decay_steps: the warm-up ({warm} steps) and the decay ({decay}) are longer "
                          f"than the run ({total_steps} steps)", "Shorten the warm-up or the decay (lr_decay_ratio "
                          "0.2: the last 20 % of the run).")
    try:
        return make_scheduler(o.lr_scheduler, optimizer, warmup_steps=warm, total_steps=total_steps,
                              num_cycles=o.lr_scheduler_num_cycles, power=o.lr_scheduler_power,
                              custom=(o.lr_scheduler_type, o.lr_scheduler_args), decay_steps=decay,
                              min_lr_ratio=o.lr_scheduler_min_lr_ratio, timescale=o.lr_scheduler_timescale)
    except OptimizerArgError as exc:
        raise EngineError(str(exc), "Fix or remove the lr_scheduler_args entry (the class's own argument names, or "
                          "piecewise_constant's step_rules).") from None
