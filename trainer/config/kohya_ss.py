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

KEPT_WHEN_ZERO = frozenset({"max_data_loader_n_workers"})
RENAMED = {"max_resolution": "resolution", "optimizer": "optimizer_type", "lora_network_weights": "network_weights",
           "sdxl_no_half_vae": "no_half_vae", "sdxl_cache_text_encoder_outputs": "cache_text_encoder_outputs"}
# Fields only the GUI itself or accelerate's launcher reads (processes, ports, threads, compile): left out.
GUI_ONLY = frozenset({
    "save_as_bool", "model_list", "lowvram", "training_preset", "headless", "print_only", "split_mode",
    "train_blocks", "num_cpu_threads_per_process", "num_machines", "main_process_port", "multi_gpu",
    "extra_accelerate_launch_args", "dynamo_backend", "dynamo_mode", "dynamo_use_fullgraph", "dynamo_use_dynamic",
    "wandb_run_name", "train_lora_ggpo", "stop_text_encoder_training", "stop_text_encoder_training_pct",
    "additional_parameters"})
# sd-scripts' defaults the GUI writes as numbers: equal to them, they change nothing.
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
# GUI fields that become network_args items (sent when set; their unset values are the networks' defaults).
ARG_FIELDS = ("rank_dropout", "module_dropout", "down_lr_weight", "mid_lr_weight", "up_lr_weight",
              "block_lr_zero_threshold", "block_dims", "block_alphas", "conv_block_dims", "conv_block_alphas",
              "use_tucker", "use_scalar", "use_cp", "rank_dropout_scale", "decompose_both", "dora_wd", "bypass_mode",
              "train_norm", "rescaled", "train_on_input", "loraplus_lr_ratio", "loraplus_unet_lr_ratio",
              "loraplus_text_encoder_lr_ratio", "enable_all_linear", "train_t5xxl", "img_attn_dim", "img_mlp_dim",
              "img_mod_dim", "single_dim", "txt_attn_dim", "txt_mlp_dim", "txt_mod_dim", "single_mod_dim",
              "in_dims", "train_double_block_indices", "train_single_block_indices", "ggpo_beta", "ggpo_sigma")
CONV_TYPES = frozenset(LORA_TYPES) - {"Standard", "LyCORIS/Native Fine-Tuning", "Flux1", "Flux1 OFT"}


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
    flat = _network(gui, findings)
    flat.update(_gui_fields(gui, findings))
    for key, value in gui.items():
        if key in GUI_ONLY or _unset(key, value) or SAME_AS_DEFAULT.get(key, object()) == value:
            continue
        flat[RENAMED.get(key, key)] = _number(value)
    flat.update(_flags(gui.get("additional_parameters") or "", findings))
    if findings:
        raise ConfigError(findings, source)
    if any(gui.get(k) for k in ("num_machines",) if str(gui.get(k)) not in ("", "0", "1")):
        notes.append(warning("num_machines", "was left out: several machines take an accelerate config file "
                             "(speed.accelerate_config)", "已忽略：多机训练请使用 accelerate 配置文件（speed.accelerate_config）"))
    return flat


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


def _network(gui: dict[str, Any], findings: list[Finding]) -> dict[str, Any]:
    """network_module and network_args for the LoRA_type, from the GUI's network fields (taken out of `gui`)."""
    lora_type = gui.pop("LoRA_type")
    fields = {k: gui.pop(k) for k in (*ARG_FIELDS, "conv_dim", "conv_alpha", "factor", "unit", "constrain",
                                      "LyCORIS_preset") if k in gui}
    if lora_type not in LORA_TYPES:
        findings.append(error("LoRA_type", f"'{lora_type}' is not a network Danlu trains; one of "
                              f"{', '.join(LORA_TYPES)}", f"'{lora_type}' 不是丹炉支持的网络类型"))
        return {}
    module, algo = LORA_TYPES[lora_type]
    args = [f"{k}={_number(v)}" for k, v in fields.items() if k in ARG_FIELDS and not _unset(k, v)]
    if lora_type in CONV_TYPES:
        args += [f"{k}={_number(fields[k])}" for k in ("conv_dim", "conv_alpha") if not _unset(k, fields.get(k))]
    if algo:
        args.append(f"algo={algo}")
        if fields.get("LyCORIS_preset"):
            args.append(f"preset={fields['LyCORIS_preset']}")
    if algo == "lokr" and str(fields.get("factor", -1)) != "-1":
        args.append(f"factor={_number(fields['factor'])}")
    if algo == "diag-oft" and not _unset("constrain", fields.get("constrain")):
        args.append(f"constraint={_number(fields['constrain'])}")
    if lora_type in ("Kohya DyLoRA", "LyCORIS/DyLoRA") and not _unset("unit", fields.get("unit")):
        args.append(f"{'unit' if algo is None else 'block_size'}={_number(fields['unit'])}")
    return {"network_module": module, **({"network_args": args} if args else {})}


def _gui_fields(gui: dict[str, Any], findings: list[Finding]) -> dict[str, Any]:
    """The GUI's own fields (taken out of `gui`) as sd-scripts options."""
    out: dict[str, Any] = {}
    family = "flux" if gui.pop("flux1_checkbox", False) else "sdxl" if gui.pop("sdxl", False) else None
    if family:
        out["family"] = family
    epoch = _number(gui.pop("epoch", 0))
    steps, epochs = _number(gui.get("max_train_steps", 0)), _number(gui.get("max_train_epochs", 0))
    if not _unset("epoch", epoch) and _unset("max_train_epochs", epochs) and _unset("max_train_steps", steps):
        out["max_train_epochs"] = epoch
    percent, warmup = _number(gui.pop("lr_warmup", 0)), _number(gui.get("lr_warmup_steps", 0))
    if not _unset("lr_warmup", percent) and _unset("lr_warmup_steps", warmup):
        if _unset("max_train_steps", steps) or not _unset("max_train_epochs", epochs):
            findings.append(error("lr_warmup", f"{percent} % of the run's steps: the steps come from the dataset, "
                                  "so set lr_warmup_steps (a number of steps) instead, or 0", f"为训练步数的 {percent}%："
                                  "步数取决于数据集，请改为设置 lr_warmup_steps（步数），或设为 0"))
        else:
            out["lr_warmup_steps"] = round(percent * steps / 100)
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
    te, unet = _number(gui.pop("text_encoder_lr", 0)), _number(gui.pop("unet_lr", 0))
    if _unset("text_encoder_lr", te):
        out["network_train_unet_only"] = True
    else:
        out["text_encoder_lr"] = te
    if not _unset("unet_lr", unet):
        out["unet_lr"] = unet
    elif not _unset("text_encoder_lr", te):
        out["network_train_text_encoder_only"] = True
    return out


def _flags(text: str, findings: list[Finding]) -> dict[str, Any]:
    """additional_parameters, '--key=value --key value --switch', as settings (they win over the form's)."""
    from trainer.config.overlay import parse_value

    out: dict[str, Any] = {}
    try:
        words = shlex.split(text.replace('"', ""))
    except ValueError as exc:
        findings.append(error("additional_parameters", f"cannot be split into flags ({exc})", f"无法拆分为参数（{exc}）"))
        return out
    key = None
    for word in words:
        if word.startswith("--"):
            name, sep, value = word[2:].partition("=")
            out[name] = parse_value(value) if sep else True
            key = None if sep else name
        elif key is not None:
            out[key], key = parse_value(word), None
        else:
            findings.append(error("additional_parameters", f"'{word}' follows no --flag", f"'{word}' 前面没有 --参数"))
    return out


def is_json_config(path: str | Path) -> bool:
    return Path(path).suffix.lower() == ".json"
