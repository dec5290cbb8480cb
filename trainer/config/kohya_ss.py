"""JSON configs of the kohya_ss GUI (bmaltais), as its LoRA tab saves them, turned into the flat sd-scripts dict
that trainer.config.kohya imports: what the GUI would have passed to sd-scripts for that file.

The GUI writes every form field; before training it drops each "", 0 and false (so sd-scripts' defaults apply;
only max_data_loader_n_workers survives as 0), and it turns its own fields into sd-scripts options: LoRA_type and
the LyCORIS fields into network_module and network_args, epoch, max_resolution, optimizer, lr_warmup (a percent),
xformers, the model checkboxes, additional_parameters (command-line flags that win over the rest). A file saved
by another tab (Dreambooth, finetune: no LoRA_type) is refused, as is what Danlu does not train.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from trainer.config.errors import ConfigError, Finding, error, warning
from trainer.config.kohya import key_map

KEPT_WHEN_ZERO = frozenset({"max_data_loader_n_workers"})
RENAMED = {"max_resolution": "resolution", "optimizer": "optimizer_type", "lora_network_weights": "network_weights"}
# Fields only the GUI itself or accelerate's launcher reads (processes, ports, threads, compile): left out.
GUI_ONLY = frozenset({
    "save_as_bool", "model_list", "lowvram", "training_preset", "headless", "print_only", "split_mode",
    "train_blocks", "num_cpu_threads_per_process", "num_machines", "main_process_port", "multi_gpu",
    "extra_accelerate_launch_args", "dynamo_backend", "dynamo_mode", "dynamo_use_fullgraph", "dynamo_use_dynamic",
    "wandb_run_name", "train_lora_ggpo", "stop_text_encoder_training", "stop_text_encoder_training_pct",
    "additional_parameters"})
# sd-scripts' defaults the GUI writes in every save: equal to them they change nothing (and a Flux run has no such setting).
SAME_AS_DEFAULT = {"min_timestep": 0, "max_timestep": 1000}
UNSUPPORTED_MODELS = ("sd3_checkbox", "hunyuan_image_checkbox", "anima_checkbox", "lumina_checkbox")
# LoRA_type -> (network_module, LyCORIS algorithm or None)
LORA_TYPES = {
    "Standard": ("networks.lora", None), "Kohya LoCon": ("networks.lora", None),
    "Kohya DyLoRA": ("networks.dylora", None),
    "Kohya LoHa": ("lycoris.kohya", "loha"), "Kohya LoKr": ("lycoris.kohya", "lokr"),
    "LoCon": ("lycoris.kohya", "locon"), "LyCORIS/LoCon": ("lycoris.kohya", "locon"),
    "LyCORIS/LoHa": ("lycoris.kohya", "loha"), "LyCORIS/LoKr": ("lycoris.kohya", "lokr"),
    "LyCORIS/iA3": ("lycoris.kohya", "ia3"), "LyCORIS/DyLoRA": ("lycoris.kohya", "dylora"),
    "LyCORIS/GLoRA": ("lycoris.kohya", "glora"), "LyCORIS/BOFT": ("lycoris.kohya", "boft"),
    "LyCORIS/Diag-OFT": ("lycoris.kohya", "diag-oft"), "LyCORIS/Native Fine-Tuning": ("lycoris.kohya", "full"),
    "Flux1": ("networks.lora_flux", None), "Flux1 OFT": ("networks.oft_flux", None),
}
# The GUI fields each LoRA_type sends as network_args items (when set: unset, they are the networks' defaults).
_BLOCKS = ("down_lr_weight", "mid_lr_weight", "up_lr_weight", "block_lr_zero_threshold", "block_dims",
           "block_alphas", "conv_block_dims", "conv_block_alphas", "rank_dropout", "module_dropout")
_LYCORIS = ("conv_dim", "conv_alpha", "use_tucker", "rank_dropout", "bypass_mode", "dora_wd", "module_dropout",
            "use_scalar", "rank_dropout_scale", "train_norm")
_OFT = ("conv_dim", "conv_alpha", "module_dropout", "use_tucker", "rank_dropout", "rank_dropout_scale", "train_norm")
TYPE_ARGS = {
    "Standard": _BLOCKS, "Kohya LoCon": ("conv_dim", "conv_alpha", *_BLOCKS),
    "Kohya DyLoRA": ("conv_dim", "conv_alpha", *_BLOCKS, "unit"),
    "Kohya LoHa": ("conv_dim", "conv_alpha", "use_tucker", "rank_dropout", "module_dropout"),
    "Kohya LoKr": ("conv_dim", "conv_alpha", "use_tucker", "factor", "rank_dropout", "module_dropout"),
    "LoCon": _LYCORIS, "LyCORIS/LoCon": _LYCORIS, "LyCORIS/LoHa": _LYCORIS,
    "LyCORIS/LoKr": (*_LYCORIS, "factor", "use_cp", "decompose_both"),
    "LyCORIS/iA3": ("conv_dim", "conv_alpha", "train_on_input"),
    "LyCORIS/DyLoRA": ("conv_dim", "conv_alpha", "use_tucker", "unit", "rank_dropout", "module_dropout",
                       "train_norm"),
    "LyCORIS/GLoRA": ("conv_dim", "conv_alpha", "use_tucker", "rank_dropout", "module_dropout", "rank_dropout_scale",
                      "train_norm"),
    "LyCORIS/BOFT": _OFT, "LyCORIS/Diag-OFT": (*_OFT, "constrain", "rescaled"),
    "LyCORIS/Native Fine-Tuning": ("rank_dropout", "module_dropout", "rank_dropout_scale", "train_norm"),
    "Flux1": ("img_attn_dim", "img_mlp_dim", "img_mod_dim", "single_dim", "txt_attn_dim", "txt_mlp_dim",
              "txt_mod_dim", "single_mod_dim", "in_dims", "train_double_block_indices", "train_single_block_indices",
              "train_t5xxl", "rank_dropout", "module_dropout"),
    "Flux1 OFT": ("enable_all_linear",),
}
LORAPLUS = ("loraplus_lr_ratio", "loraplus_unet_lr_ratio", "loraplus_text_encoder_lr_ratio")  # every type
ARG_NAMES = {"constrain": "constraint"}  # GUI field -> network_args key, where they differ
# Fields the GUI sends to LyCORIS that lycoris-lora's create_network never reads, so sd-scripts trained without them:
# left out with a note (Danlu refuses a network argument that would do nothing).
UNREAD_BY_LYCORIS = ("rank_dropout_scale",)
NETWORK_FIELDS = frozenset(f for fields in TYPE_ARGS.values() for f in fields) | set(LORAPLUS) | {
    "LyCORIS_preset", "ggpo_beta", "ggpo_sigma"}
# Fields the GUI sends only for one model (its checkbox); the others' are left out.
SDXL_ONLY = {"sdxl_no_half_vae": "no_half_vae", "sdxl_cache_text_encoder_outputs": "cache_text_encoder_outputs"}
FLUX_ONLY = {"flux1_cache_text_encoder_outputs": "cache_text_encoder_outputs",
             "flux1_cache_text_encoder_outputs_to_disk": "cache_text_encoder_outputs_to_disk",
             **{k: k for k in ("ae", "clip_l", "t5xxl", "discrete_flow_shift", "model_prediction_type",
                               "timestep_sampling", "t5xxl_max_token_length", "guidance_scale", "mem_eff_save",
                               "apply_t5_attn_mask", "cpu_offload_checkpointing", "blocks_to_swap",
                               "single_blocks_to_swap", "double_blocks_to_swap", "t5xxl_lr", "model_type")}}
OTHER_MODELS = ("sd3_", "hunyuan_", "anima_", "lumina_")  # prefixes of fields of the models Danlu refuses
SD3_FIELDS = frozenset({"clip_g", "clip_g_dropout_rate", "logit_mean", "logit_std", "mode_scale",
                        "pos_emb_random_crop_rate", "save_clip", "save_t5xxl", "t5xxl_device", "t5xxl_dtype",
                        "weighting_scheme", "enable_scaled_pos_embed", "show_timesteps", "show_timesteps_resolution"})


def read_kohya_ss_json(path: Path) -> dict[str, Any]:
    """The file's JSON object (any encoding Danlu reads); a ConfigError naming the line when it is not one."""
    from trainer.textio import read_text

    try:
        data = json.loads(read_text(path)[0])
    except json.JSONDecodeError as exc:
        raise ConfigError([error("", f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
                                 f"不是有效的 JSON（第 {exc.lineno} 行第 {exc.colno} 列：{exc.msg}）")], str(path)) from None
    except OSError as exc:
        raise ConfigError([error("", f"cannot be read ({exc.strerror or exc})", f"无法读取（{exc.strerror or exc}）")],
                          str(path)) from None
    if not isinstance(data, dict):
        raise ConfigError([error("", "holds no JSON object of settings", "不包含设置的 JSON 对象")], str(path))
    return data


def from_kohya_ss(gui: dict[str, Any], source: str, notes: list[Finding]) -> dict[str, Any]:
    """The flat sd-scripts settings the GUI would train `gui` with. Raises ConfigError for what Danlu cannot."""
    findings: list[Finding] = []
    if "LoRA_type" not in gui:
        raise ConfigError([error("", "is a kohya_ss config without LoRA_type, saved by another tab (Dreambooth, "
                                 "finetune); Danlu imports the LoRA tab's configs", "是没有 LoRA_type 的 kohya_ss 配置，"
                                 "来自其他页签（Dreambooth、微调）；丹炉只导入 LoRA 页签的配置")], source)
    gui = dict(gui)
    for key in UNSUPPORTED_MODELS:
        if gui.pop(key, False):
            findings.append(error(key, "trains a model family Danlu does not train (SD1.5, SDXL and Flux only)",
                                  "所训练的模型系列丹炉不支持（仅支持 SD1.5、SDXL 和 Flux）"))
    flat = _network(gui, findings, notes)
    flat.update(_gui_fields(gui))
    renamed = RENAMED | (SDXL_ONLY if flat.get("family") == "sdxl" else {}) | (
        FLUX_ONLY if flat.get("family") == "flux" else {})
    numeric = {name for name, p in key_map().items() if p.kind in ("int", "float", "float_or_list")}
    for key, value in gui.items():
        if not _left_out(key, value, flat.get("family")):
            name = renamed.get(key, key)
            flat[name] = _number(value) if name in numeric else value  # "1234" saved for a seed; not for a name
    flat.update(_flags(gui.get("additional_parameters") or "", findings))
    if findings:
        raise ConfigError(findings, source)
    if str(gui.get("num_machines", 1)) not in ("", "0", "1"):
        notes.append(warning("num_machines", "was left out: several machines take an accelerate config file "
                             "(speed.accelerate_config)", "已忽略：多机训练请使用 accelerate 配置文件（speed.accelerate_config）"))
    return flat


def _left_out(key: str, value: Any, family: str | None) -> bool:
    """Whether the GUI would not send `key` (set to `value`) to sd-scripts for a model of `family`."""
    if key in GUI_ONLY or key in SD3_FIELDS or key.startswith(OTHER_MODELS) or _unset(key, value):
        return True
    if (key in SDXL_ONLY and family != "sdxl") or (key in FLUX_ONLY and family != "flux"):
        return True
    return SAME_AS_DEFAULT.get(key, object()) == value


def _unset(key: str, value: Any) -> bool:
    """What the GUI drops before training ("", 0, false, None), so sd-scripts' default applies."""
    if key in KEPT_WHEN_ZERO:
        return value in ("", None)
    return value in ("", None, False, []) or (not isinstance(value, bool | list) and _number(value) == 0)


def _number(value: Any) -> Any:
    """Numbers the GUI saved as strings ("1234", "5e-05") as numbers; anything else as it is."""
    if not isinstance(value, str):
        return value
    for kind in (int, float):
        try:
            return kind(value.strip())
        except ValueError:
            pass
    return value


def _network(gui: dict[str, Any], findings: list[Finding], notes: list[Finding]) -> dict[str, Any]:
    """network_module and network_args for the LoRA_type, from the GUI's network fields (taken out of `gui`)."""
    lora_type = gui.pop("LoRA_type")
    fields = {k: gui.pop(k) for k in NETWORK_FIELDS if k in gui}
    if lora_type not in LORA_TYPES:
        findings.append(error("LoRA_type", f"'{lora_type}' is not a network Danlu trains; one of "
                              f"{', '.join(LORA_TYPES)}", f"'{lora_type}' 不是丹炉支持的网络类型"))
        return {}
    module, algo = LORA_TYPES[lora_type]
    sent = [k for k in (*TYPE_ARGS[lora_type], *LORAPLUS) if not _unset(k, fields.get(k))]
    if "factor" in sent and str(fields["factor"]) == "-1":  # LoKr's "choose for me"
        sent.remove("factor")
    for key in [k for k in sent if algo and k in UNREAD_BY_LYCORIS]:
        sent.remove(key)
        notes.append(warning(key, "was left out: lycoris-lora's create_network does not read it, so sd-scripts "
                             "trained without it too", "已忽略：lycoris-lora 的 create_network 不读取此项，"
                             "sd-scripts 训练时同样没有用到"))
    names = ARG_NAMES | ({"unit": "block_size"} if algo else {})  # LyCORIS' DyLoRA calls the unit block_size
    args = [f"{names.get(k, k)}={_number(fields[k])}" for k in sent]
    if algo:
        args += [f"algo={algo}"] + ([f"preset={fields['LyCORIS_preset']}"] if fields.get("LyCORIS_preset") else [])
    if fields.get("ggpo_beta") is not None and gui.get("train_lora_ggpo"):
        args += [f"ggpo_beta={fields['ggpo_beta']}", f"ggpo_sigma={fields.get('ggpo_sigma')}"]
    return {"network_module": module, **({"network_args": args} if args else {})}


def _gui_fields(gui: dict[str, Any]) -> dict[str, Any]:
    """The GUI's own fields (taken out of `gui`) as sd-scripts options."""
    out: dict[str, Any] = {}
    sdxl, flux = gui.pop("sdxl", False), gui.pop("flux1_checkbox", False)
    if sdxl or flux:  # the GUI runs the SDXL script when both are ticked
        out["family"] = "sdxl" if sdxl else "flux"
    epoch = _number(gui.pop("epoch", 0))
    steps, epochs = _number(gui.get("max_train_steps", 0)), _number(gui.get("max_train_epochs", 0))
    if not _unset("epoch", epoch) and _unset("max_train_epochs", epochs) and _unset("max_train_steps", steps):
        out["max_train_epochs"] = epoch
    percent, warmup = _number(gui.pop("lr_warmup", 0)), _number(gui.get("lr_warmup_steps", 0))
    if not _unset("lr_warmup", percent) and _unset("lr_warmup_steps", warmup):
        out["lr_warmup_ratio"] = percent / 100  # what the GUI sends: lr_warmup_steps = the percent as a share
    attention = gui.pop("xformers", "none")
    if attention in ("xformers", "sdpa", True):
        out["sdpa"] = True
    if str(gui.pop("use_wandb", "")).lower() == "true":
        out["log_with"] = "wandb"
    kind = gui.pop("noise_offset_type", "Original")
    for key in (("multires_noise_iterations", "multires_noise_discount") if kind == "Original"
                else ("noise_offset", "adaptive_noise_scale", "noise_offset_random_strength")):
        gui.pop(key, None)
    for key in ("optimizer_args", "lr_scheduler_args"):
        if isinstance(gui.get(key), str):
            gui[key] = gui[key].replace('"', "").split()
    if (processes := _number(gui.pop("num_processes", 1))) not in ("", 0, 1):
        out["gpus"] = processes
    out.update(_rates(gui))
    return out


def _rates(gui: dict[str, Any]) -> dict[str, Any]:
    """The GUI's text encoder and U-Net rates (taken out of `gui`): 0 means that part does not train. A partial
    preset without them leaves them as they are."""
    out: dict[str, Any] = {}
    te, unet = _number(gui.pop("text_encoder_lr", None)), _number(gui.pop("unet_lr", None))
    if te is not None:
        out.update({"network_train_unet_only": True} if _unset("text_encoder_lr", te) else {"text_encoder_lr": te})
    if not _unset("unet_lr", unet):
        out["unet_lr"] = unet
    elif unet is not None and not _unset("text_encoder_lr", te):
        out["network_train_text_encoder_only"] = True
    return out


def _flags(text: str, findings: list[Finding]) -> dict[str, Any]:
    """additional_parameters, sd-scripts' command line ('--key=value', '--key value', '--switch', and several
    values for a list such as --optimizer_args a=1 b=2), as settings that win over the form's."""
    from trainer.config.overlay import parse_value

    try:
        words = shlex.split(text.replace('"', ""))
    except ValueError as exc:
        findings.append(error("additional_parameters", f"cannot be split into flags ({exc})", f"无法拆分为参数（{exc}）"))
        return {}
    given: dict[str, list[str]] = {}
    for word in words:
        if word.startswith("--"):
            name, sep, value = word[2:].partition("=")
            given[name] = [value] if sep else []
        elif given:
            given[list(given)[-1]].append(word)
        else:
            findings.append(error("additional_parameters", f"'{word}' follows no --flag", f"'{word}' 前面没有 --参数"))
    out: dict[str, Any] = {}
    known = key_map()
    for name, values in given.items():
        if name not in known or known[name].kind.startswith("list_"):  # unknown: the import names it
            out[name] = values
        elif len(values) > 1:
            findings.append(error("additional_parameters", f"--{name} takes one value, not {' '.join(values)}",
                                  f"--{name} 只接受一个值，而不是 {' '.join(values)}"))
        else:
            out[name] = parse_value(values[0]) if values else True
    return out


def is_json_config(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".json"
