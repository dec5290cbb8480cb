"""Cross-field rules. Each rule returns findings that name the field and say how to fix it."""

from __future__ import annotations

import math
from collections.abc import Callable

from trainer.config.errors import Finding, error, warning
from trainer.config.groups_optim import ADAPTIVE_OPTIMIZERS, rates_of
from trainer.config.schema import TrainConfig, all_params, get_value

Rule = Callable[[TrainConfig], list[Finding]]
MAX_RESOLUTION = 4096  # per side; beyond it no GPU holds a batch, and sizes multiply into absurd memory
RULES: list[Rule] = []


def rule(fn: Rule) -> Rule:
    RULES.append(fn)
    return fn


def parse_resolution(text: str) -> tuple[int, int]:
    """'512' or '512,768' (width,height) -> (w, h). Raises ValueError with a readable message."""
    parts = [p.strip() for p in str(text).replace("x", ",").split(",") if p.strip()]
    if len(parts) not in (1, 2) or not all(p.isdigit() for p in parts):
        raise ValueError(f"'{text}' is not a resolution; write width,height such as 512,512")
    w, h = int(parts[0]), int(parts[-1])
    if min(w, h) < 64:
        raise ValueError(f"'{text}' is too small; each side must be at least 64")
    if max(w, h) > MAX_RESOLUTION:
        raise ValueError(f"'{text}' is too large; each side must be at most {MAX_RESOLUTION}")
    return w, h


@rule
def _not_supported_yet(cfg: TrainConfig) -> list[Finding]:
    out = []
    for p in all_params():
        value = get_value(cfg, p.path)
        if p.planned and value != p.default:
            out.append(error(p.path, f"is not supported yet; remove it or set it back to {p.default!r}",
                             f"暂不支持；请删除或恢复为 {p.default!r}"))
        elif value in p.planned_choices:
            out.append(error(p.path, f"'{value}' is not supported yet; choose one of {list(p.available_choices())}",
                             f"暂不支持 '{value}'；请从 {list(p.available_choices())} 中选择"))
    return out


@rule
def _family_only_options(cfg: TrainConfig) -> list[Finding]:
    family = cfg.model.family
    out = []
    for p in all_params():
        if family not in p.families and get_value(cfg, p.path) != p.default:
            fams = "/".join(p.families)
            out.append(error(p.path, f"applies only to {fams} models, not {family}; remove it or change model.family",
                             f"只适用于 {fams} 模型，不适用于 {family}；请删除该项或修改 model.family"))
    return out


@rule
def _resolution(cfg: TrainConfig) -> list[Finding]:
    d = cfg.dataset
    step = 32 if cfg.model.family == "sdxl" else 64
    try:
        w, h = parse_resolution(d.resolution)
    except ValueError as exc:
        return [error("dataset.resolution", str(exc), f"'{d.resolution}' 不是可用的分辨率；每边须在 64 到 {MAX_RESOLUTION} 之间，写成 宽,高，如 512,512")]
    out = []
    near = f"{w // step * step},{h // step * step}"
    if (w % step or h % step) and not d.enable_bucket:
        out.append(error("dataset.resolution", f"{w}x{h} must be a multiple of {step}; try {near}",
                         f"{w}x{h} 必须是 {step} 的倍数；可改为 {near}"))
    if not d.enable_bucket:
        return out
    if w % step or h % step:  # buckets read only its area, as sd-scripts does
        side = int(math.sqrt(w * h)) // d.bucket_reso_steps * d.bucket_reso_steps
        out.append(warning("dataset.resolution", f"{w}x{h} is not a multiple of {step}: with buckets it only sets "
                           f"the area, so the square bucket is {side}x{side} and every bucket a multiple of "
                           f"{d.bucket_reso_steps}, as in sd-scripts; write {near} to train at that size",
                           f"{w}x{h} 不是 {step} 的倍数：启用分桶时它只决定面积，正方形分桶为 {side}x{side}，各分桶均为 "
                           f"{d.bucket_reso_steps} 的倍数（与 sd-scripts 相同）；如要按该尺寸训练请写 {near}"))
    if d.bucket_reso_steps % step:
        out.append(error("dataset.bucket_reso_steps", f"{d.bucket_reso_steps} must be a multiple of {step}"
                         + (" (32 is allowed for SDXL only)" if step == 64 else ""),
                         f"{d.bucket_reso_steps} 必须是 {step} 的倍数" + ("（32 仅适用于 SDXL）" if step == 64 else "")))
    unit = max(step, d.bucket_reso_steps)
    for name in ("min_bucket_reso", "max_bucket_reso"):
        value = getattr(d, name)
        if value % unit:
            out.append(error(f"dataset.{name}", f"{value} must be a multiple of {unit}; try {value // unit * unit or unit}",
                             f"{value} 必须是 {unit} 的倍数；可改为 {value // unit * unit or unit}"))
    if d.min_bucket_reso > d.max_bucket_reso:
        out.append(error("dataset.min_bucket_reso", "is larger than max_bucket_reso; swap them", "大于 max_bucket_reso；请交换两者"))
    return out


@rule
def _text_encoder_cache(cfg: TrainConfig) -> list[Finding]:
    if not (cfg.speed.cache_text_encoder_outputs or cfg.speed.cache_text_encoder_outputs_to_disk):
        return []
    c = cfg.caption
    clashes = [
        ("caption.shuffle_caption", c.shuffle_caption), ("caption.caption_dropout_rate", c.caption_dropout_rate > 0),
        ("caption.caption_tag_dropout_rate", c.caption_tag_dropout_rate > 0),
        ("caption.caption_dropout_every_n_epochs", c.caption_dropout_every_n_epochs > 0),
        ("caption.token_warmup_step", c.token_warmup_step > 0),  # sd-scripts refuses the cache for it too
    ]
    out = [error(path, "changes captions every step, which cached text-encoder outputs cannot follow; turn it off "
                       "or turn off speed.cache_text_encoder_outputs",
                 "会在每步改变标注，而缓存的文本编码器输出无法随之变化；请关闭它或关闭 speed.cache_text_encoder_outputs")
           for path, on in clashes if on]
    if not cfg.training.network_train_unet_only:
        out.append(error("speed.cache_text_encoder_outputs",
                         "needs a frozen text encoder; turn on training.network_train_unet_only or turn this off",
                         "要求文本编码器不参与训练；请开启 training.network_train_unet_only 或关闭此项"))
    return out


@rule
def _latent_cache(cfg: TrainConfig) -> list[Finding]:
    if not (cfg.speed.cache_latents or cfg.speed.cache_latents_to_disk):
        return []
    return [error(f"augment.{name}", "changes the image every step, which cached latents cannot follow; turn it off "
                                     "or turn off speed.cache_latents",
                  "会在每步改变图片，而缓存的潜变量无法随之变化；请关闭它或关闭 speed.cache_latents")
            for name in ("color_aug", "random_crop") if getattr(cfg.augment, name)]


@rule
def _learning_rates(cfg: TrainConfig) -> list[Finding]:
    o, t = cfg.optimizer, cfg.training
    out = []
    if o.optimizer_type in ADAPTIVE_OPTIMIZERS:
        for name in ("learning_rate", "unet_lr", "text_encoder_lr"):
            value = getattr(o, name)
            if any(v != 1.0 for v in rates_of(value)):
                out.append(warning(f"optimizer.{name}", f"{o.optimizer_type} sets its own step size and expects 1 "
                                   f"here (got {value}); scale it with d_coef in optimizer_args instead",
                                   f"{o.optimizer_type} 会自行确定步长，此处应为 1（当前为 {value}）；如需调整请在 "
                                   "optimizer_args 中设置 d_coef"))
    uses_unet = not t.network_train_text_encoder_only
    uses_te = not t.network_train_unet_only
    if (o.unet_lr is not None or not uses_unet) and (o.text_encoder_lr is not None or not uses_te):
        out.append(warning("optimizer.learning_rate", "is not used: unet_lr and text_encoder_lr cover every trained "
                           "part; clear them to use learning_rate",
                           "未被使用：unet_lr 与 text_encoder_lr 已覆盖所有训练部分；如要使用 learning_rate 请清空二者"))
    out.extend(_zero_rates(cfg, uses_unet, uses_te))
    out.extend(_rates_per_encoder(cfg))
    if t.network_train_unet_only and t.network_train_text_encoder_only:
        out.append(error("training.network_train_text_encoder_only", "cannot be on together with "
                         "network_train_unet_only; nothing would train", "不能与 network_train_unet_only 同时开启，否则没有可训练的部分"))
    if o.lr_scheduler == "adafactor" and o.optimizer_type != "AdaFactor":
        out.append(error("optimizer.lr_scheduler", "'adafactor' works only with optimizer_type AdaFactor",
                         "'adafactor' 只能与 AdaFactor 优化器一起使用"))
    return out


def _rates_per_encoder(cfg: TrainConfig) -> list[Finding]:
    """A second text-encoder rate needs a second trained text encoder."""
    if not isinstance(cfg.optimizer.text_encoder_lr, list):
        return []
    if cfg.model.family == "sd15":
        return [error("optimizer.text_encoder_lr", "has two rates, but SD1.5 has one text encoder; give one rate",
                      "给出了两个学习率，但 SD1.5 只有一个文本编码器；请只填一个")]
    if cfg.model.family == "flux" and not cfg.flux.train_t5xxl:
        return [warning("optimizer.text_encoder_lr", "the second rate is T5-XXL's, which trains only with "
                        "flux.train_t5xxl; without it only the first rate (CLIP-L's) is used",
                        "第二个学习率属于 T5-XXL，只有开启 flux.train_t5xxl 时才训练它；否则只使用第一个（CLIP-L 的）")]
    return []


# (the part's own rate, the switch that leaves the part untrained)
_PART_RATES = {"U-Net": ("unet_lr", "network_train_text_encoder_only"),
               "text encoder": ("text_encoder_lr", "network_train_unet_only")}


def _zero_rates(cfg: TrainConfig, uses_unet: bool, uses_te: bool) -> list[Finding]:
    """A trained part whose learning rate is 0 never changes: an error, not a silent useless run."""
    o, out = cfg.optimizer, []
    for part, used in (("U-Net", uses_unet), ("text encoder", uses_te)):
        own, switch = _PART_RATES[part]
        rate = getattr(o, own)
        rates = rate if isinstance(rate, list) else [rate if rate is not None else o.learning_rate]
        if not used or any(r != 0 for r in rates):  # one encoder at 0 is left untrained, as in sd-scripts
            continue
        name = own if rate is not None else "learning_rate"
        if any(f.field == f"optimizer.{name}" for f in out):
            continue
        out.append(error(f"optimizer.{name}", f"is 0, so the {part} part would not learn; set a rate such as 1e-4"
                         + (", or leave it empty to use learning_rate" if name != "learning_rate" else "")
                         + f", or turn on training.{switch} to leave that part untrained",
                         f"为 0，{'U-Net' if part == 'U-Net' else '文本编码器'} 部分将学不到任何东西；请设置学习率（如 1e-4）"
                         + ("，或留空以使用 learning_rate" if name != "learning_rate" else "")
                         + f"，或开启 training.{switch} 不训练该部分"))
    return out


@rule
def _precision(cfg: TrainConfig) -> list[Finding]:
    s, out = cfg.speed, []
    if s.full_fp16 and s.mixed_precision != "fp16":
        out.append(error("speed.full_fp16", "needs mixed_precision = fp16", "需要 mixed_precision = fp16"))
    if s.full_bf16 and s.mixed_precision != "bf16":
        out.append(error("speed.full_bf16", "needs mixed_precision = bf16", "需要 mixed_precision = bf16"))
    if s.full_fp16 and s.full_bf16:
        out.append(error("speed.full_bf16", "cannot be on together with full_fp16", "不能与 full_fp16 同时开启"))
    if s.full_bf16 and cfg.save.save_precision == "fp16":
        out.append(warning("save.save_precision", "fp16 has a smaller range than the bf16 weights trained with full_bf16; "
                           "large weights may overflow. bf16 or float is safer",
                           "fp16 的数值范围小于 full_bf16 训练出的 bf16 权重，较大的权重可能溢出；用 bf16 或 float 更稳妥"))
    if s.compile_blocks and s.fp8_base:  # the first backward failed: a compiled Linear's backward read the fp8 weight
        out.append(error("speed.compile_blocks", "cannot compile a base stored in fp8 (speed.fp8_base): the compiled "
                         "blocks' backward pass reads the fp8 weights and fails; turn one of them off",
                         "无法编译以 fp8 存放的底模（speed.fp8_base）：编译后模块的反向传播会读取 fp8 权重而出错；请关闭其中之一"))
    n = cfg.network
    if s.fp8_base and cfg.model.training_type == "lora" and (n.network_module, n.lycoris_algo) == ("lycoris.kohya",
                                                                                                   "full"):
        # lycoris-lora's full algorithm takes each base weight over as a trainable parameter of the weight's dtype
        out.append(error("speed.fp8_base", "cannot be used with lycoris.kohya full (lycoris_algo = full): it trains a "
                         "copy of every base weight in the base's own dtype, which cannot be fp8 (and saves no "
                         "memory); turn fp8_base off or choose another lycoris_algo",
                         "不能与 lycoris.kohya 的 full（lycoris_algo = full）同时使用：它以底模自身的精度训练每个底模"
                         "权重的副本，不能是 fp8（也省不了显存）；请关闭 fp8_base 或改用其他 lycoris_algo"))
    return out


@rule
def _network_switches(cfg: TrainConfig) -> list[Finding]:
    """Values a switch keeps off would be ignored silently: say so."""
    n, out = cfg.network, []
    if n.base_weights and not n.enable_base_weight:
        out.append(warning("network.base_weights", "are listed but enable_base_weight is off, so nothing is merged; "
                           "turn it on or clear the list", "已列出但 enable_base_weight 未开启，因此不会合并；请开启或清空列表"))
    if (n.down_lr_weight or n.mid_lr_weight or n.up_lr_weight) and not n.enable_block_weights:
        out.append(warning("network.enable_block_weights", "is off, so the block weights given are not used; turn "
                           "it on or clear them", "未开启，因此填写的分层权重不会生效；请开启或清空"))
    return out


@rule
def _oft(cfg: TrainConfig) -> list[Finding]:
    """networks.oft (sd-scripts' OFT): U-Net only, network_alpha is the rotation constraint, no conv rank/dropout."""
    n, t, out = cfg.network, cfg.training, []
    if n.network_module != "networks.oft":
        return out
    if t.network_train_text_encoder_only:
        out.append(error("training.network_train_text_encoder_only", "networks.oft trains only the U-Net; turn this off",
                         "networks.oft 只训练 U-Net；请关闭此项"))
    elif not t.network_train_unet_only:
        out.append(warning("training.network_train_unet_only", "networks.oft trains only the U-Net (as sd-scripts' "
                           "OFT), so the text encoder stays frozen; turn this on to say so",
                           "networks.oft 只训练 U-Net（同 sd-scripts 的 OFT），文本编码器保持冻结；请开启此项以明确"))
    if cfg.model.family == "flux" and cfg.flux.train_t5xxl:
        out.append(error("flux.train_t5xxl", "networks.oft trains only the transformer (as sd-scripts' oft_flux), "
                         "not T5; turn this off", "networks.oft 只训练 Transformer（同 sd-scripts 的 oft_flux），"
                         "不训练 T5；请关闭此项"))
    if n.network_alpha <= 0:
        out.append(error("network.network_alpha", "is the OFT constraint and must be above 0 (sd-scripts' OFT "
                         "trains nothing at 0); 1e-3 is typical", "是 OFT 的约束，必须大于 0（sd-scripts 的 OFT 在 0 时"
                         "什么也学不到）；常用 1e-3"))
    elif n.network_alpha >= 1:
        out.append(warning("network.network_alpha", "is the OFT constraint; at 1 or more it hardly constrains "
                           "anything (sd-scripts suggests about 1e-3)", "是 OFT 的约束；不小于 1 时几乎不起约束作用"
                           "（sd-scripts 建议约 1e-3）"))
    for name, value in (("conv_dim", n.conv_dim), ("network_dropout", n.network_dropout)):
        if value:
            out.append(warning(f"network.{name}", "is not used by networks.oft (network_args enable_conv=True "
                               "adds the convolutions); set it to 0", "networks.oft 不使用此项（network_args 中 "
                               "enable_conv=True 可加入卷积层）；请设为 0"))
    return out


@rule
def _misc(cfg: TrainConfig) -> list[Finding]:
    out = []
    if not cfg.caption.caption_extension.startswith("."):
        out.append(error("caption.caption_extension", f"must start with a dot, e.g. .{cfg.caption.caption_extension}",
                         f"必须以点开头，例如 .{cfg.caption.caption_extension}"))
    name = cfg.save.output_name
    if not name.strip() or any(c in name for c in '/\\:*?"<>|') or name.strip(". ") != name.strip() or ".." in name:
        out.append(error("save.output_name", "must be a plain file name (no folders, no / \\ : * ? \" < > |); "
                         "put the folder in save.output_dir", "必须是单纯的文件名（不含文件夹及 / \\ : * ? \" < > |）；"
                         "文件夹请写在 save.output_dir"))
    n = cfg.network
    if n.network_alpha > n.network_dim and n.network_module != "networks.oft":  # OFT's alpha is a constraint
        out.append(warning("network.network_alpha", f"is larger than network_dim ({n.network_dim}): updates are "
                           "amplified and training may be unstable", f"大于 network_dim（{n.network_dim}）：更新会被放大，训练可能不稳定"))
    sm = cfg.sampling
    if (sm.sample_every_n_epochs or sm.sample_every_n_steps) and not sm.sample_prompts.strip():
        out.append(warning("sampling.sample_prompts", "is empty, so no preview images will be made",
                           "为空，因此不会生成预览图"))
    if cfg.model.v_parameterization and cfg.model.family == "sd15":
        out.append(warning("model.v_parameterization", "SD1.5 models predict noise, not v; only use this for a "
                           "v-prediction model", "SD1.5 模型预测的是噪声而不是 v；仅在底模为 v-prediction 模型时开启"))
    return out


def loss_form(cfg: TrainConfig) -> str:
    """One line naming the loss a config trains (huber and smooth_l1 come in sd-scripts' and PyTorch's forms)."""
    o = cfg.optimizer
    if o.loss_type not in ("huber", "smooth_l1"):
        return f"loss: {o.loss_type}"
    if o.huber_schedule == "none":
        kind = "Huber" if o.loss_type == "huber" else "smooth L1"
        return f"loss: {o.loss_type}, PyTorch's {kind} with threshold huber_c = {o.huber_c} at every step"
    return (f"loss: {o.loss_type}, sd-scripts' pseudo-Huber, c from the {o.huber_schedule} schedule "
            f"(huber_c = {o.huber_c}, huber_scale = {o.huber_scale}), as sd-scripts trains it")


# The schedulers that have no warm-up phase (diffusers' constant and piecewise_constant schedules, transformers'
# AdafactorSchedule). The other schedule parameters: trainer/config/rules_scheduler.py.
NO_WARMUP = ("constant", "adafactor", "piecewise_constant")


@rule
def _ignored_settings(cfg: TrainConfig) -> list[Finding]:
    """Settings that would be accepted and then do nothing with the rest of this config."""
    o, s, out = cfg.optimizer, cfg.speed, []
    if (o.lr_warmup_steps or o.lr_warmup_ratio) and o.lr_scheduler_type:
        out.append(warning("optimizer.lr_warmup_steps", f"is not used with lr_scheduler_type {o.lr_scheduler_type}, "
                           "which sets the whole schedule (as in sd-scripts); set it to 0",
                           f"使用 lr_scheduler_type {o.lr_scheduler_type} 时不起作用（它决定整个调度，与 sd-scripts 相同）；"
                           "请设为 0"))
    elif (o.lr_warmup_steps or o.lr_warmup_ratio) and o.lr_scheduler in NO_WARMUP:
        out.append(warning("optimizer.lr_warmup_steps", f"is not used by the {o.lr_scheduler} scheduler; choose "
                           "constant_with_warmup (or another scheduler) to warm up, or set it to 0",
                           f"{o.lr_scheduler} 调度器不使用预热；如需预热请选择 constant_with_warmup（或其他调度器），"
                           "否则设为 0"))
    for name in ("save_last_n_epochs_state", "save_last_n_steps_state"):
        if getattr(cfg.save, name) and not cfg.save.save_state:
            out.append(warning(f"save.{name}", "prunes the states that save_state saves with each save; without it "
                               "there are none (save_state_on_train_end keeps only the final one): turn save_state on "
                               "or set this to 0", "用于清理 save_state 随每次保存写下的训练状态；未开启 save_state 时"
                               "没有这样的状态（save_state_on_train_end 只保存最后一个）：请开启 save_state 或设为 0"))
    if s.persistent_data_loader_workers and s.max_data_loader_n_workers == 0:
        out.append(warning("speed.persistent_data_loader_workers", "does nothing with max_data_loader_n_workers = 0 "
                           "(images load in the training process); set workers above 0 or turn this off",
                           "在 max_data_loader_n_workers = 0 时无效（图片在训练进程中加载）；请把加载进程数设为大于 0，"
                           "或关闭此项"))
    return out


@rule
def _validation(cfg: TrainConfig) -> list[Finding]:
    v = cfg.validation
    if v.validation_split > 0 and v.validation_dir.strip():
        return [error("validation.validation_dir", "and validation_split are both set; keep one of them",
                      "与 validation_split 同时设置了；请只保留其中一个")]
    if not (v.validation_split > 0 or v.validation_dir.strip()) and (v.early_stop or v.validate_every_n_steps):
        name = "early_stop" if v.early_stop else "validate_every_n_steps"
        return [error(f"validation.{name}", "needs validation images; set validation_split (e.g. 0.1) or "
                      "validation_dir", "需要验证图片；请设置 validation_split（如 0.1）或 validation_dir")]
    return []


@rule
def _gpus(cfg: TrainConfig) -> list[Finding]:
    s = cfg.speed
    ids = [x.strip() for x in s.gpu_ids.split(",") if x.strip()]
    if ids and (not all(x.isdigit() for x in ids) or len(ids) != s.gpus):
        return [error("speed.gpu_ids", f"must be {s.gpus} GPU numbers separated by commas (gpus = {s.gpus}), "
                      "e.g. " + ",".join(str(i) for i in range(s.gpus)),
                      f"必须是用逗号分隔的 {s.gpus} 个显卡编号（gpus = {s.gpus}），例如 " + ",".join(str(i) for i in range(s.gpus)))]
    return []


@rule
def _wandb_installed(cfg: TrainConfig) -> list[Finding]:
    """wandb is an optional dependency: say so before a run, not when its first curve is written."""
    import importlib.util

    if cfg.logging.log_with in ("wandb", "all") and importlib.util.find_spec("wandb") is None:
        return [error("logging.log_with", f"'{cfg.logging.log_with}' needs the wandb package, which is not "
                      "installed; run `pip install wandb`, or choose tensorboard",
                      f"'{cfg.logging.log_with}' 需要 wandb 包，但尚未安装；请运行 `pip install wandb`，或改选 tensorboard")]
    return []


@rule
def _ready_to_train(cfg: TrainConfig) -> list[Finding]:
    out = []
    if not cfg.model.base_model.strip():
        out.append(error("model.base_model", "is empty; give a Hugging Face repo id, a diffusers folder or a "
                         ".safetensors file", "为空；请填写 Hugging Face 仓库名、diffusers 文件夹或 .safetensors 文件"))
    if not cfg.dataset.train_data_dir.strip():
        out.append(error("dataset.train_data_dir", "is empty; give the folder holding <repeats>_<name> sub-folders",
                         "为空；请填写包含 <重复次数>_<名称> 子文件夹的训练集目录"))
    return out


READINESS_RULES = {_ready_to_train}


def check(cfg: TrainConfig, *, for_training: bool = True) -> list[Finding]:
    """Every finding of every rule. `for_training=False` skips the checks that only a run needs (paths set)."""
    out: list[Finding] = []
    for fn in RULES:
        if for_training or fn not in READINESS_RULES:
            out.extend(fn(cfg))
    return out


def errors_of(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.level == "error"]
