"""Parameter group: learning rate and optimizer (the network group is in groups_network.py)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BeforeValidator

from trainer.config.groups_core import Group
from trainer.config.spec import GroupInfo, param

OptimizerName = Literal[
    "AdamW", "AdamW8bit", "PagedAdamW8bit", "RAdamScheduleFree", "AdamWScheduleFree", "SGDScheduleFree", "Lion",
    "Lion8bit", "PagedLion8bit", "SGDNesterov", "SGDNesterov8bit", "DAdaptation", "DAdaptAdam", "DAdaptAdaGrad", "DAdaptAdan",
    "DAdaptLion", "DAdaptSGD", "AdaFactor", "Prodigy", "ProdigyPlusScheduleFree", "CAME",
]
# Optimizers that find their own step size: they want learning_rate = 1.
ADAPTIVE_OPTIMIZERS = (
    "DAdaptation", "DAdaptAdam", "DAdaptAdaGrad", "DAdaptAdan", "DAdaptLion", "DAdaptSGD", "Prodigy",
    "ProdigyPlusScheduleFree",
)


MAX_LR = 10.0


def _one_or_two_rates(value: Any) -> Any:
    """text_encoder_lr as sd-scripts takes it: one rate for every text encoder, or a list [te1, te2]. An empty
    list is "not set" and a one-item list the shared rate, as in sd-scripts; anything else names the fix."""
    def rate(v: Any) -> float:
        try:
            number = float(v)  # SD-Trainer saves numbers as text ("2e-5")
        except (TypeError, ValueError):
            number = None
        if isinstance(v, bool) or number is None:
            raise ValueError("must be one learning rate, or a list of two [text encoder 1, text encoder 2], "
                             "e.g. 5e-5 or [5e-5, 2e-5]")
        if not 0 <= number <= MAX_LR:
            raise ValueError(f"every rate must be from 0 to {MAX_LR:g}")
        return number

    if value is None:
        return None
    if isinstance(value, str) and "," in value:  # --set optimizer.text_encoder_lr=5e-5,2e-5
        value = [v for v in value.split(",") if v.strip()]
    if not isinstance(value, list | tuple):
        return rate(value)
    if len(value) > 2:
        raise ValueError("takes at most two rates, [text encoder 1, text encoder 2]; e.g. [5e-5, 2e-5]")
    rates = [rate(v) for v in value]
    return None if not rates else rates[0] if len(rates) == 1 else rates


# One rate shared by the text encoders, or one per encoder (SDXL: CLIP-L, then OpenCLIP bigG; Flux: CLIP-L, T5).
RatePerEncoder = Annotated[float | list[float] | None, BeforeValidator(_one_or_two_rates)]


def rates_of(value: float | list[float] | None) -> list[float]:
    """A validated RatePerEncoder (or any one rate) as a list: [] for not set, [r] for one shared rate."""
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


class OptimizerGroup(Group):
    INFO: ClassVar[GroupInfo] = GroupInfo("Learning rate and optimizer", "学习率与优化器")
    learning_rate: float = param(
        1e-4,
        "Step size of every update. Typical values: LoRA 1e-4 to 5e-4, Dreambooth (the whole model) 1e-6 to 5e-6; "
        "adaptive optimizers (DAdapt*, Prodigy) want 1.",
        "每次更新的步长。常用值：LoRA 1e-4 到 5e-4，Dreambooth（训练整个模型）1e-6 到 5e-6；自适应优化器（DAdapt*、Prodigy）应设为 1。",
        ge=0.0, le=10.0, level="novice", label_zh="学习率",
    )
    unet_lr: float | None = param(
        None, "Learning rate of the U-Net part. Empty: learning_rate.", "U-Net 部分的学习率。留空则使用 learning_rate。",
        ge=0.0, le=10.0, label_zh="U-Net 学习率",
    )
    text_encoder_lr: RatePerEncoder = param(
        None,
        "Learning rate of the text-encoder part, usually a fraction of the U-Net's. Empty: learning_rate. SDXL "
        "(and Flux) have two text encoders: one rate is shared by both; two, comma separated (TOML: a list "
        "[te1, te2]), give each its own, e.g. 5e-5, 2e-5; 0 leaves that encoder untrained.",
        "文本编码器部分的学习率，通常为 U-Net 学习率的几分之一。留空则使用 learning_rate。SDXL（及 Flux）有两个文本编码器："
        "填一个值则两者共用；填两个值（逗号分隔，TOML 中写成列表 [te1, te2]）则各用各的，如 5e-5, 2e-5；为 0 的编码器不训练。",
        label_zh="文本编码器学习率",
    )
    lr_scheduler: Literal[
        "constant", "constant_with_warmup", "linear", "cosine", "cosine_with_restarts", "polynomial", "adafactor",
        "cosine_with_min_lr", "warmup_stable_decay", "inverse_sqrt", "piecewise_constant",
    ] = param(
        "cosine",
        "How the learning rate changes over the run. cosine falls smoothly to 0; cosine_with_restarts runs "
        "num_cycles such falls, jumping back to the full rate at the start of each; constant keeps it fixed; "
        "cosine_with_min_lr falls to lr_scheduler_min_lr_ratio of the rate instead of 0; warmup_stable_decay holds "
        "the rate after warm-up and decays it over the last lr_decay_steps; inverse_sqrt falls with one over the "
        "square root of the step; piecewise_constant multiplies it by fixed factors from given steps "
        "(lr_scheduler_args step_rules=...).",
        "学习率在训练过程中的变化方式。cosine 平滑降到 0；cosine_with_restarts 执行 num_cycles 次这样的下降，"
        "每次开始时跳回完整学习率；constant 保持不变；cosine_with_min_lr 降到学习率的 lr_scheduler_min_lr_ratio 倍而不是 0；"
        "warmup_stable_decay 在预热后保持学习率，并在最后 lr_decay_steps 步内衰减；inverse_sqrt 按步数平方根的倒数下降；"
        "piecewise_constant 从指定步数起乘以固定系数（lr_scheduler_args 中写 step_rules=...）。", label_zh="学习率调度器",
    )
    lr_scheduler_num_cycles: int = param(
        1, "Number of cosine cycles for cosine_with_restarts (1: one fall, no restart). cosine_with_min_lr and "
        "warmup_stable_decay read it as sd-scripts passes it, in half waves: 1 falls once, 2 falls and rises back.",
        "cosine_with_restarts 的余弦周期数（1 表示只下降一次、不重启）。cosine_with_min_lr 与 warmup_stable_decay "
        "按 sd-scripts 的传法以半个波计：1 为下降一次，2 为下降后再升回。", ge=1, le=100, label_zh="余弦重启周期数",
    )
    lr_scheduler_power: float = param(
        1.0, "Exponent of the polynomial scheduler (1: linear).", "polynomial 调度器的幂次（1 即线性）。", ge=0.0, le=10.0,
        label_zh="多项式幂次",
    )
    lr_scheduler_min_lr_ratio: float = param(
        0.0, "The lowest learning rate of cosine_with_min_lr and warmup_stable_decay, as a share of the rate (0.1: "
        "they end at a tenth of it; warmup_stable_decay also starts its warm-up there).",
        "cosine_with_min_lr 与 warmup_stable_decay 的最低学习率，以学习率的比例表示（0.1 即最后降到十分之一；"
        "warmup_stable_decay 的预热也从这里开始）。", ge=0.0, le=1.0, label_zh="最低学习率比例",
    )
    lr_decay_steps: int = param(
        0, "Steps over which warmup_stable_decay lowers the rate at the end of the run, to lr_scheduler_min_lr_ratio "
        "of it; before them it holds the full rate. 0: no decay.",
        "warmup_stable_decay 在训练末尾把学习率降到其 lr_scheduler_min_lr_ratio 倍所用的步数；在此之前保持完整学习率。"
        "0 表示不衰减。", ge=0, label_zh="衰减步数",
    )
    lr_decay_ratio: float = param(
        0.0, "warmup_stable_decay's decay as a share of the run's steps (0.2: the last 20 %), used instead of "
        "lr_decay_steps; sd-scripts writes it as an lr_decay_steps below 1.",
        "以训练总步数的比例表示的 warmup_stable_decay 衰减（0.2 即最后 20%），代替 lr_decay_steps 使用；sd-scripts 把它"
        "写成小于 1 的 lr_decay_steps。", ge=0.0, le=1.0, kohya="", label_zh="衰减比例",
    )
    lr_scheduler_timescale: int | None = param(
        None, "inverse_sqrt's timescale: after warm-up the rate is lr × sqrt(timescale / (timescale + steps since "
        "warm-up)), so it halves once the run is 3 timescales past warm-up. Empty: the warm-up steps (10000 "
        "without warm-up), as in sd-scripts.",
        "inverse_sqrt 的时间尺度：预热后学习率为 lr × sqrt(时间尺度 / (时间尺度 + 预热后的步数))，即预热后再过 3 个时间尺度"
        "时减半。留空则等于预热步数（无预热时为 10000），与 sd-scripts 相同。", ge=1, le=10_000_000,
        label_zh="逆平方根时间尺度",
    )
    lr_scheduler_type: Literal[
        "", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR", "ExponentialLR", "PolynomialLR", "CosineAnnealingLR",
        "CosineAnnealingWarmRestarts", "CyclicLR", "OneCycleLR",
    ] = param(
        "", "A PyTorch scheduler class (torch.optim.lr_scheduler) used instead of lr_scheduler, with "
        "lr_scheduler_args, as sd-scripts' --lr_scheduler_type; it steps once an optimizer step, and warm-up and "
        "num_cycles do not apply. Empty: lr_scheduler.", "用于代替 lr_scheduler 的 PyTorch 调度器类"
        "（torch.optim.lr_scheduler），参数写在 lr_scheduler_args，同 sd-scripts 的 --lr_scheduler_type；每个优化步"
        "调用一次，预热和周期数不适用。留空则用 lr_scheduler。", label_zh="PyTorch 调度器类",
    )
    lr_scheduler_args: list[str] = param(
        [], "Arguments of lr_scheduler_type, one key=value each (e.g. T_max=1000, eta_min=1e-6). With lr_scheduler "
        "piecewise_constant, its rules, as sd-scripts takes them: step_rules=1:100,0.5:200,0.1 keeps the rate "
        "(×1) before step 100, halves it before step 200, then uses a tenth of it.",
        "lr_scheduler_type 的参数，每项为 key=value（如 T_max=1000、eta_min=1e-6）。lr_scheduler 为 piecewise_constant "
        "时写它的规则（与 sd-scripts 相同）：step_rules=1:100,0.5:200,0.1 表示第 100 步前保持学习率（×1），第 200 步前减半，"
        "之后为十分之一。", label_zh="调度器参数",
    )
    lr_warmup_steps: int = param(
        0, "Steps over which the learning rate rises from 0 at the start.", "开始时学习率从 0 升到设定值所用的步数。",
        ge=0, label_zh="预热步数",
    )
    lr_warmup_ratio: float = param(
        0.0, "Warm-up as a share of the run's steps (0.1: the first 10 %), used instead of lr_warmup_steps; sd-scripts "
        "writes it as an lr_warmup_steps below 1, and the kohya_ss GUI as its lr_warmup percent.",
        "以训练总步数的比例表示的预热（0.1 即前 10%），代替 lr_warmup_steps 使用；sd-scripts 把它写成小于 1 的 "
        "lr_warmup_steps，kohya_ss 图形界面写成 lr_warmup 百分比。", ge=0.0, le=0.99, kohya="", label_zh="预热比例",
    )
    loss_type: Literal["l2", "l1", "huber", "smooth_l1"] = param(
        "l2",
        "How the prediction error is measured. l2 (mean squared error) is the standard; huber and smooth_l1 "
        "are less sensitive to outliers.",
        "预测误差的计算方式。l2（均方误差）是标准做法；huber 与 smooth_l1 对异常值不那么敏感。", label_zh="损失函数",
    )
    huber_c: float = param(
        0.1, "Threshold c of the huber and smooth_l1 losses (with a schedule: its value at the noisiest step).",
        "huber 与 smooth_l1 损失的阈值 c（使用调度时为最高噪声步的取值）。", ge=0.0, le=10.0,
        label_zh="Huber 阈值 (c)",
    )
    huber_schedule: Literal["snr", "exponential", "constant", "none"] = param(
        "snr",
        "How huber and smooth_l1 are computed. snr, exponential, constant: sd-scripts' pseudo-Huber "
        "2c(sqrt(d^2+c^2)-c) (smooth_l1 without the leading c), with c per step from the noise level (snr: "
        "(1-huber_c)/(1+sigma)^2+huber_c; exponential: huber_scale × huber_c^(t/T); constant: huber_c × huber_scale). "
        "none: PyTorch's Huber / smooth L1 with huber_c as its threshold at every step.",
        "huber 与 smooth_l1 的计算方式。snr、exponential、constant：sd-scripts 的伪 Huber 损失 "
        "2c(sqrt(d^2+c^2)-c)（smooth_l1 不乘最前面的 c），c 随噪声强度逐步变化（snr：(1-huber_c)/(1+sigma)^2+huber_c；"
        "exponential：huber_scale × huber_c^(t/T)；constant：huber_c × huber_scale）。none：PyTorch 的 Huber / smooth L1，"
        "每步都以 huber_c 为阈值。", label_zh="Huber 调度",
    )
    huber_scale: float = param(
        1.0, "Multiplies c in the exponential and constant huber schedules (as in sd-scripts).",
        "在 exponential 与 constant 调度中乘到 c 上的系数（与 sd-scripts 相同）。", ge=0.0, le=100.0,
        label_zh="Huber 缩放",
    )
    optimizer_type: OptimizerName = param(
        "AdamW8bit",
        "The optimizer. AdamW8bit: AdamW with 8-bit state (less memory). Lion: sign-based, use a 3-10x "
        "smaller lr. DAdapt*/Prodigy: set their own step size (lr = 1). AdaFactor: factored second moments. "
        "*ScheduleFree (the schedulefree library): no decaying schedule needed; keep lr_scheduler constant.",
        "优化器。AdamW8bit：状态为 8 位的 AdamW（省显存）。Lion：基于符号，学习率应缩小 3-10 倍。"
        "DAdapt*/Prodigy：自动确定步长（学习率设为 1）。AdaFactor：分解二阶矩，省显存。"
        "*ScheduleFree（schedulefree 库）：无需衰减的学习率调度，lr_scheduler 保持 constant 即可。", label_zh="优化器",
    )
    optimizer_args: list[str] = param(
        [],
        "Extra optimizer arguments, one key=value each (e.g. weight_decay=0.01, betas=0.9,0.99).",
        "额外的优化器参数，每项为 key=value（如 weight_decay=0.01、betas=0.9,0.99）。", label_zh="优化器参数",
    )
    min_snr_gamma: float = param(
        0.0,
        "Min-SNR loss weighting: caps the weight of low-noise timesteps; 5 is common, 0 turns it off.",
        "Min-SNR 损失加权：限制低噪声时间步的权重；常用 5，0 表示关闭。",
        ge=0.0, le=20.0, label_zh="最小信噪比 γ",
    )
    debiased_estimation_loss: bool = param(
        False, "Weight each step's loss by 1/sqrt(SNR) (1/(SNR+1) for v-prediction; SNR capped at 1000), sd-scripts' "
        "debiased estimation: the low-noise timesteps, which carry the least, weigh less. Can be combined with "
        "min_snr_gamma.", "按 1/sqrt(SNR)（v-prediction 为 1/(SNR+1)；SNR 上限 1000）给每步损失加权，即 sd-scripts 的 "
        "debiased estimation：信息最少的低噪声时间步权重更低。可与 min_snr_gamma 同时使用。",
        families=("sd15", "sdxl"), label_zh="去偏估计损失",
    )
    scale_v_pred_loss_like_noise_pred: bool = param(
        False, "With v-prediction: weight each step's loss by SNR/(SNR+1) (SNR capped at 1000), so each timestep "
        "counts as much as in a noise-prediction run (sd-scripts' scale_v_pred_loss_like_noise_pred).",
        "配合 v-prediction：按 SNR/(SNR+1)（SNR 上限 1000）给每步损失加权，使各时间步的权重与噪声预测训练相同"
        "（对应 sd-scripts 的 scale_v_pred_loss_like_noise_pred）。", families=("sd15", "sdxl"),
        label_zh="按噪声预测缩放 v 损失",
    )
    v_pred_like_loss: float = param(
        0.0, "With noise prediction: add this much of a v-prediction-like loss (the loss times (SNR+1)/SNR), which "
        "weighs the noisy timesteps more (sd-scripts' v_pred_like_loss; 0: off).",
        "配合噪声预测：额外加上这一比例的类 v-prediction 损失（损失乘以 (SNR+1)/SNR），加大高噪声时间步的权重"
        "（对应 sd-scripts 的 v_pred_like_loss；0 表示关闭）。", ge=0.0, le=10.0, families=("sd15", "sdxl"),
        label_zh="类 v 损失比例",
    )
