"""Import kohya sd-scripts / SD-Trainer (lora-scripts) TOML files, and export one sd-scripts accepts.

Key names come from the schema (each parameter's `kohya` key, and our own name, which SD-Trainer mostly
shares). Only the few values whose shape differs are converted here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trainer.config.errors import ConfigError, Finding, error, suggest, suggest_zh, warning
from trainer.config.groups_optim import rates_of
from trainer.config.kohya_dataset import fold_dataset_config, is_trigger_word
from trainer.config.kohya_flags import (
    export_flags,
    read_fp8_flags,
    read_hub_flags,
    read_loss_and_optimizer_flags,
    read_renamed_flags,
)
from trainer.config.kohya_schedule import export_schedule, import_shares
from trainer.config.retired import retire
from trainer.config.rules_start import start_differs_from_sd_scripts
from trainer.config.schema import GROUP_NAMES, TrainConfig, all_params
from trainer.config.sd_scripts import Filled, fill_defaults, unalias
from trainer.config.toml_io import config_from_dict

# Values that sd-scripts packs into network_args = ["key=value", ...] but Danlu keeps as fields.
NETWORK_ARG_FIELDS = {
    "conv_dim": "conv_dim", "conv_alpha": "conv_alpha", "algo": "lycoris_algo", "unit": "dylora_unit",
    "down_lr_weight": "down_lr_weight", "mid_lr_weight": "mid_lr_weight", "up_lr_weight": "up_lr_weight",
    "block_lr_zero_threshold": "block_lr_zero_threshold",
    "train_t5xxl": "train_t5xxl",
}
# SD-Trainer's model_train_type -> (family, training_type)
TRAIN_TYPES = {
    "sd-lora": ("sd15", "lora"), "sdxl-lora": ("sdxl", "lora"), "flux-lora": ("flux", "lora"),
    "sd-dreambooth": ("sd15", "dreambooth"), "sdxl-finetune": ("sdxl", "dreambooth"),
}
# sd-scripts' per-family LoRA modules -> (family, Danlu's module): Danlu's networks.lora covers every family, so an
# import reads the family from the name and an export of that family writes the name back.
FAMILY_NETWORK_MODULES = {"networks.lora_flux": ("flux", "networks.lora"), "networks.oft_flux": ("flux", "networks.oft")}
_NETWORK_WORDS = {"networks.lora": "LoRA", "networks.oft": "OFT"}  # what a family's module is, in its error
# SD-Trainer front-end keys with a direct Danlu meaning.
# sd-scripts reads None, not 0 or "", as "off" for most options (0 would even divide by zero in
# save_every_n_steps), so an export leaves zeros out, except where 0 is a real value there.
# Where sd-scripts' own default is not "off", dropping a zero would change the meaning (prior_loss_weight 0
# would become 1, unet_lr 0 would become learning_rate, network_alpha 0 (= dim in sd-scripts) would become 1).
ZERO_IS_A_VALUE = frozenset({
    "max_data_loader_n_workers", "seed", "lr_warmup_steps", "max_grad_norm", "learning_rate", "unet_lr",
    "text_encoder_lr", "prior_loss_weight", "network_alpha", "multires_noise_discount", "lr_scheduler_power",
    "huber_c", "sigmoid_scale", "discrete_flow_shift", "guidance_scale", "learning_rate_te", "learning_rate_te2",
    "initial_step",  # set, even to 0, it overrides initial_epoch
})
FRONTEND_KEYS = {"positive_prompts": "sample_prompts", "negative_prompts": "sample_negative_prompt",
                 "ui_custom_params": "custom_toml", "lr_restart_cycles": "lr_scheduler_num_cycles"}
# SD-Trainer form fields that it turns into network_args / optimizer_args items.
FRONTEND_NETWORK_ARGS = {"dropout": "dropout", "train_norm": "train_norm", "lokr_factor": "factor"}
FRONTEND_OPTIMIZER_ARGS = {"prodigy_d0": "d0", "prodigy_d_coef": "d_coef"}
# sd-scripts loads optimizers it has no short name for by their import path.
OPTIMIZER_IMPORT_PATHS = {"ProdigyPlusScheduleFree": "prodigyplus.ProdigyPlusScheduleFree",
                          "CAME": "pytorch_optimizer.CAME"}
# sd-scripts' k_* samplers are the same schedulers as the plain names.
SAMPLER_ALIASES = {"k_lms": "lms", "k_euler": "euler", "k_euler_a": "euler_a", "k_dpm_2": "dpm_2",
                   "k_dpm_2_a": "dpm_2_a"}


def key_map() -> dict[str, Any]:
    out = {}
    for p in all_params():
        out[p.name] = p
        if p.kohya_key:
            out[p.kohya_key] = p
    return out


def flatten_sections(data: dict[str, Any]) -> dict[str, Any]:
    """sd-scripts config files may group keys under any [section]; the sections carry no meaning."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            flat.update(flatten_sections(value))
        else:
            flat[key] = value
    return flat


# sd-scripts skips a parameter group whose learning rate is 0 ("NO LR skipping!"): that part is not trained.
ZERO_RATE_MEANS_UNTRAINED = {"unet_lr": "network_train_text_encoder_only",
                             "text_encoder_lr": "network_train_unet_only"}


def _coerce(p, value: Any, notes: list[Finding]) -> Any:
    """`value` in Danlu's form for `p`; a value Danlu has to change is reported in `notes` as a warning."""
    if p.optional and p.kind in ("int", "float", "float_or_list") and isinstance(value, str) and not value.strip():
        return None  # a field SD-Trainer saved empty: not set, never 0
    if p.name == "resolution" and not isinstance(value, str):
        value = value if isinstance(value, list) else [value, value]
        return ",".join(str(int(v)) for v in value)
    if p.name == "face_crop_aug_range" and isinstance(value, list):  # a dataset file's [lo, hi]
        return ",".join(str(v) for v in value)
    value = unalias(p, value)
    if p.name == "sample_sampler" and isinstance(value, str):
        value = SAMPLER_ALIASES.get(value.lower(), value)
    if p.name == "max_token_length" and isinstance(value, int) and value not in p.choices and value > 75:
        # sd-scripts splits captions into 75-token chunks: SD-Trainer's default 255 works as 225.
        chunked = max(c for c in p.choices if c <= value)
        notes.append(warning(p.path, f"{value} is read as {chunked}: captions are encoded in chunks of 75 tokens, as "
                             f"sd-scripts does, so {chunked} is the longest caption either trains on. Write "
                             f"{chunked} to silence this.",
                             f"{value} 按 {chunked} 读取：标注按 75 个 token 分段编码（与 sd-scripts 相同），两者实际训练"
                             f"的最长标注都是 {chunked}。写成 {chunked} 即可消除此提示。"))
        return chunked
    if p.name == "bucket_reso_steps" and isinstance(value, int | float) and 0 < value < 32:
        # the kohya_ss GUI allows 1; sd-scripts then rounds its buckets to multiples of 8, finer than Danlu's grid
        notes.append(warning(p.path, f"{value} is read as 64, the bucket step Danlu trains for every model (SDXL also "
                             "takes 32); sd-scripts rounds such buckets to multiples of 8, so some images land in a "
                             "slightly different bucket. Write 64 to silence this.",
                             f"{value} 按 64 读取，这是丹炉对所有模型支持的桶步长（SDXL 也可用 32）；sd-scripts 会把这样的桶"
                             "取整到 8 的倍数，因此部分图片所在的桶略有不同。写成 64 即可消除此提示。"))
        return 64
    if p.kind == "choice" and isinstance(value, str):
        by_lower = {str(c).lower(): c for c in p.choices}
        # "prodigyplus.ProdigyPlusScheduleFree" and "pytorch_optimizer.CAME" are import paths of our choices
        return by_lower.get(value.lower(), by_lower.get(value.rsplit(".", 1)[-1].lower(), value))
    if p.kind.startswith("list_") and isinstance(value, str):
        value = value.splitlines() if "\n" in value.strip() else value.split()  # SD-Trainer: one a line
    if p.kind.startswith("list_") and isinstance(value, list):
        return [v.strip() if isinstance(v, str) else v for v in value if not (isinstance(v, str) and not v.strip())]
    return value


def _split_network_args(args: list[str], into: dict[str, Any], findings: list[Finding]) -> list[str]:
    rest = []
    for item in args:
        key, sep, value = str(item).partition("=")
        key = key.strip()
        if sep and key in ("down_lr_weight", "mid_lr_weight", "up_lr_weight"):
            # text fields (a curve name or a list); sd-scripts has no switch: giving them turns them on
            into[NETWORK_ARG_FIELDS[key]] = value.strip()
            into["enable_block_weights"] = True
        elif sep and key in NETWORK_ARG_FIELDS:
            from trainer.config.overlay import parse_value

            into[NETWORK_ARG_FIELDS[key]] = parse_value(value.strip())
        elif key == "dropout" and sep:
            from trainer.config.overlay import parse_value

            into["network_dropout"] = parse_value(value.strip())
        else:
            rest.append(item)
    return rest


def _read_prompt_file(value: str, base_dir: Path | None) -> str:
    path = Path(value)
    if not path.is_absolute() and base_dir is not None:
        path = base_dir / path
    if path.suffix.lower() in (".txt", ".toml", ".json") and path.is_file():
        from trainer.textio import read_text

        return read_text(path)[0]
    return value


def _fold_frontend_args(flat: dict[str, Any]) -> None:
    """SD-Trainer's saved forms hold a few things sd-scripts takes as network_args/optimizer_args items."""
    net = list(flat.pop("network_args", None) or []) + list(flat.pop("network_args_custom", None) or [])
    opt = list(flat.pop("optimizer_args", None) or []) + list(flat.pop("optimizer_args_custom", None) or [])
    for key, arg in FRONTEND_NETWORK_ARGS.items():
        if key in flat:
            net.append(f"{arg}={flat.pop(key)}")
    for key, arg in FRONTEND_OPTIMIZER_ARGS.items():
        value = flat.pop(key, None)
        if value not in (None, ""):
            opt.append(f"{arg}={value}")
    if flat.pop("enable_preview", True) is False:  # SD-Trainer keeps the sample fields but makes no previews
        flat["sample_every_n_epochs"] = flat["sample_every_n_steps"] = 0
    if net:
        flat["network_args"] = net
    if opt:
        flat["optimizer_args"] = opt


def _infer_family(values: dict[str, Any]) -> str:
    """A file without model_train_type is SD1.5 unless it sets an option only one other family has."""
    by_name = {p.name: p for p in all_params()}
    for name, value in values.items():
        p = by_name.get(name)
        if p is not None and len(p.families) == 1 and value not in (p.default, None):
            return p.families[0]
    return "sd15"


def _family_network_module(values: dict[str, Any], family: str | None, findings: list[Finding]) -> None:
    module = values.get("network_module")
    if module not in FAMILY_NETWORK_MODULES:
        return
    owner, danlu = FAMILY_NETWORK_MODULES[module]
    values["network_module"] = danlu
    given, word = values.get("family") or family, _NETWORK_WORDS[danlu]
    if given and given != owner:
        findings.append(error("network_module", f"{module} is sd-scripts' {owner} {word}, but this config trains "
                              f"{given}; use {danlu}", f"{module} 是 sd-scripts 的 {owner} {word} 模块，但此配置训练的是 "
                              f"{given}；请使用 {danlu}"))
    values.setdefault("family", owner)


def import_kohya(data: dict[str, Any], *, family: str | None = None, source: str = "",
                 base_dir: Path | None = None, filled: list[Filled] | None = None,
                 warnings: list[Finding] | None = None) -> TrainConfig:
    """Turn a flat sd-scripts / SD-Trainer dict into a TrainConfig; every unknown key is an error naming it.

    Options the file leaves out get sd-scripts' defaults (what sd-scripts would train), not Danlu's; each one
    that differs from Danlu's default is appended to `filled` when a list is given. A value Danlu reads
    differently from the file's text (e.g. max_token_length 255 as 225) is appended to `warnings`."""
    flat = flatten_sections(data)
    keys = key_map()
    values: dict[str, Any] = {}
    findings: list[Finding] = []
    notes: list[Finding] = []
    _fold_frontend_args(flat)
    fold_dataset_config(flat, base_dir, set(keys) | set(FRONTEND_KEYS), findings)
    retire(flat, findings, notes)  # xformers, lowram, v2, wandb keys...: dropped on purpose (retired.py)
    read_loss_and_optimizer_flags(flat, findings, notes)  # masked_loss, use_8bit_adam, use_lion_optimizer
    read_fp8_flags(flat, notes)
    read_renamed_flags(flat, findings, notes)  # caption_extention, dynamo_backend
    read_hub_flags(flat, findings)
    train_type = flat.pop("model_train_type", None)
    if train_type is not None:
        if train_type not in TRAIN_TYPES:
            findings.append(error("model_train_type", f"'{train_type}' is unknown; one of {sorted(TRAIN_TYPES)}",
                                  f"未知的 '{train_type}'；应为 {sorted(TRAIN_TYPES)} 之一"))
        else:
            values["family"], values["training_type"] = TRAIN_TYPES[train_type]
    _diffusers_output(flat, values, findings, notes)
    if is_trigger_word(flat.get("caption_prefix")):  # what our export writes for trigger_word
        flat["trigger_word"] = flat.pop("caption_prefix").strip().rstrip(",").strip()
    import_shares(flat)  # lr_warmup_steps / lr_decay_steps below 1: a share of the run's steps
    if "sample_prompts" in flat and isinstance(flat["sample_prompts"], str):
        flat["sample_prompts"] = _read_prompt_file(flat["sample_prompts"], base_dir)
    for key, value in flat.items():
        if key in FRONTEND_KEYS:
            key = FRONTEND_KEYS[key]
        p = keys.get(key)
        if p is None:
            findings.append(error(key, "is not a setting Danlu knows or supports yet; remove it from the file."
                                  + suggest(key, list(keys)), "不是丹炉认识或已支持的设置项；请从文件中删除。"
                                  + suggest_zh(key, list(keys))))
            continue
        if p.name == "network_args":
            value = _split_network_args(list(value), values, findings)
        values[p.name] = _coerce(p, value, notes)
    for rate, switch in ZERO_RATE_MEANS_UNTRAINED.items():
        value = values.get(rate)
        rates = rates_of(value) if not isinstance(value, bool | str) else []
        if rates and all(v == 0 for v in rates):  # [0, 0] too
            values[rate], values[switch] = None, True
    if values.get("base_weights") and "enable_base_weight" not in values:  # sd-scripts merges what is listed
        values["enable_base_weight"] = True
    _family_network_module(values, family, findings)
    if family:
        values.setdefault("family", family)
    values.setdefault("family", _infer_family(values))
    notes.extend(_te_rates_differ_from_sd_scripts(values))
    notes.extend(start_differs_from_sd_scripts(values))
    if findings:
        raise ConfigError(findings, source)
    by_name = {p.name: p for p in all_params()}
    added = fill_defaults(values, by_name, values["family"])
    if filled is not None:
        filled.extend(f for f in added if f.value != by_name[f.path.split(".")[1]].default)
    nested: dict[str, dict[str, Any]] = {g: {} for g in GROUP_NAMES}
    for name, value in values.items():
        nested[by_name[name].group][name] = value
    cfg = config_from_dict({g: t for g, t in nested.items() if t}, source)
    if warnings is not None:
        warnings.extend(notes)
    return cfg


DIFFUSERS_FORMATS = ("diffusers", "diffusers_safetensors")  # sd-scripts' save_model_as for a diffusers folder


def _diffusers_output(flat: dict[str, Any], values: dict[str, Any], findings: list[Finding],
                      notes: list[Finding]) -> None:
    """sd-scripts' fine-tune scripts save a diffusers folder for save_model_as = diffusers; a Danlu Dreambooth run
    writes its single .safetensors file and, with dreambooth.save_diffusers, the folder beside it."""
    if flat.get("save_model_as") not in DIFFUSERS_FORMATS:
        return
    if values.get("training_type") != "dreambooth":
        findings.append(error("save_model_as", f"'{flat['save_model_as']}' saves a whole model as a diffusers "
                              "folder, which only a Dreambooth run makes; use safetensors for a LoRA",
                              f"'{flat['save_model_as']}' 把整个模型保存为 diffusers 文件夹，只有 Dreambooth 训练会生成；"
                              "LoRA 请使用 safetensors"))
        return
    flat["save_model_as"], values["save_diffusers"] = "safetensors", True
    notes.append(warning("save.save_model_as", "the file asks for a diffusers folder: Danlu writes it "
                         "(dreambooth.save_diffusers) beside a single .safetensors checkpoint",
                         "文件要求保存 diffusers 文件夹：丹炉会在单个 .safetensors 检查点旁写出该文件夹（dreambooth.save_diffusers）"))


def _te_rates_differ_from_sd_scripts(values: dict[str, Any]) -> list[Finding]:
    """sd-scripts' SDXL LoRA networks (networks.lora, networks.dylora, lycoris.kohya) have no per-encoder rates:
    sdxl_train_network uses the first text_encoder_lr of a list for both encoders. Danlu gives text encoder 2
    the second rate, which is what a list asks for; say so."""
    rates = values.get("text_encoder_lr")
    if values["family"] != "sdxl" or not isinstance(rates, list) or len(set(rates)) < 2:
        return []
    return [warning("optimizer.text_encoder_lr", f"{rates}: sd-scripts' sdxl_train_network trains both text encoders "
                    f"at the first rate, {rates[0]}; Danlu trains text encoder 2 at the second, {rates[1]}. Write one "
                    "rate to train as sd-scripts did",
                    f"{rates}：sd-scripts 的 sdxl_train_network 以第一个学习率 {rates[0]} 训练两个文本编码器；丹炉以第二个学习率 "
                    f"{rates[1]} 训练文本编码器 2。如要与 sd-scripts 的训练一致，请只写一个学习率")]


def _means_off_in_sd_scripts(p, value: Any) -> bool:
    if value == "" or (p.name == "max_token_length" and value == 75):
        return True
    if p.name == "resize_interpolation" and value == "auto":  # sd-scripts' choices lack "auto": its unset is it
        return True
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0 \
        and p.name not in ZERO_IS_A_VALUE


def export_kohya(cfg: TrainConfig, prompts_file: str | None = None,
                 warnings: list[Finding] | None = None) -> dict[str, Any]:
    """A flat dict sd-scripts' train_network.py accepts (`--config_file`). Only keys sd-scripts knows are
    written; options that do not apply to the family are left out. Sample prompts are text in Danlu and a
    file path in sd-scripts: pass `prompts_file` where that text was written. A setting sd-scripts will train
    differently is appended to `warnings` (the same words as importing such a file)."""
    out: dict[str, Any] = {}
    network_args: list[str] = []
    family = cfg.model.family
    if warnings is not None:
        warnings.extend(_te_rates_differ_from_sd_scripts({"family": family,
                                                          "text_encoder_lr": cfg.optimizer.text_encoder_lr}))
        t = cfg.training
        warnings.extend(start_differs_from_sd_scripts({"initial_step": t.initial_step, "initial_epoch": t.initial_epoch,
                                                       "skip_until_initial_step": t.skip_until_initial_step,
                                                       "resume": cfg.save.resume}))
    for p in all_params():
        value = getattr(getattr(cfg, p.group), p.name)
        if value is None or family not in p.families or p.planned and value == p.default:
            continue
        if p.group == "dreambooth" and cfg.model.training_type != "dreambooth":  # train_network.py has none
            continue
        if p.name in NETWORK_ARG_FIELDS.values():
            arg = next(k for k, v in NETWORK_ARG_FIELDS.items() if v == p.name)
            lycoris = cfg.network.network_module == "lycoris.kohya"
            # algo names the LyCORIS type other tools read from ss_network_args, so it is always written there
            if p.name == "lycoris_algo" and lycoris or p.name != "lycoris_algo" and value != p.default:
                network_args.append(f"{arg}={value}")
            continue
        if p.kohya_key is None or _means_off_in_sd_scripts(p, value):
            continue
        if p.name == "optimizer_type":
            value = OPTIMIZER_IMPORT_PATHS.get(value, value)
        if p.name == "network_module":
            value = next((k for k, v in FAMILY_NETWORK_MODULES.items() if v == (family, value)), value)
        out[p.kohya_key] = value
    export_schedule(cfg.optimizer, out)  # shares of the run, and what some schedulers need written
    export_flags(cfg, out)  # fp8_base_unet, masked_loss
    if cfg.training.max_train_steps:  # sd-scripts lets max_train_epochs override max_train_steps
        out.pop("max_train_epochs", None)
    if cfg.logging.log_with == "none":  # sd-scripts logs to TensorBoard whenever logging_dir is set
        out.pop("log_with", None)
        out.pop("logging_dir", None)
    if cfg.validation.validation_split <= 0:  # sd-scripts validates only a split; without one these stay unset
        for key in ("validation_seed", "validate_every_n_epochs", "validate_every_n_steps"):
            out.pop(key, None)
    if cfg.caption.trigger_word.strip():
        # sd-scripts' nearest option; it prefixes every caption (even one that has the word, and reg images). The
        # word is part of the caption Danlu glues caption_prefix to, so it comes after that.
        out["caption_prefix"] = " ".join(filter(None, (cfg.caption.caption_prefix, f"{cfg.caption.trigger_word.strip()}, ")))
    if cfg.sampling.sample_prompts.strip() and prompts_file:
        out["sample_prompts"] = prompts_file
    out["network_args"] = list(cfg.network.network_args) + network_args
    if not out["network_args"]:
        del out["network_args"]
    if not cfg.optimizer.optimizer_args:
        out.pop("optimizer_args", None)
    return out


def prompts_for_sd_scripts(cfg: TrainConfig) -> str:
    """The sample prompts as a prompts file for sd-scripts: Danlu's per-run defaults (size, steps, CFG, seed,
    negative prompt) are written into every line that does not set them itself, since sd-scripts has its own."""
    sm = cfg.sampling
    defaults = [("--n", sm.sample_negative_prompt), ("--w", sm.sample_width), ("--h", sm.sample_height),
                ("--s", sm.sample_steps), ("--l", sm.sample_cfg), ("--d", sm.sample_seed)]
    lines = []
    for line in sm.sample_prompts.splitlines():
        text = line.strip()
        if text and not text.startswith("#"):
            words = text.split()
            text += "".join(f" {flag} {value}" for flag, value in defaults if flag not in words and value != "")
        lines.append(text)
    return "\n".join(lines) + "\n"
