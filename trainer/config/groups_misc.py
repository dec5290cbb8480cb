"""Parameter groups: logging, other, speed, Flux, Dreambooth, validation."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import field_validator

from trainer.config.groups_core import Group
from trainer.config.spec import GroupInfo, param


class LoggingGroup(Group):
    INFO: ClassVar[GroupInfo] = GroupInfo("Logging", "日志")
    log_with: Literal["tensorboard", "none", "wandb", "all"] = param(
        "tensorboard", "Where training curves go. TensorBoard is shown inside the page; wandb sends them to Weights "
        "& Biases (needs `pip install wandb` and `wandb login`, or WANDB_MODE=offline to keep them in the run "
        "folder); all is both; none (or empty) writes no curves, as sd-scripts does without log_with.",
        "训练曲线写到哪里。TensorBoard 会直接显示在页面里；wandb 发送到 Weights & Biases（需 `pip install wandb` 并 "
        "`wandb login`，或设 WANDB_MODE=offline 保存在运行文件夹中）；all 为两者都写；none（或留空）不记录曲线，"
        "与 sd-scripts 不设 log_with 时相同。",
        label_zh="日志工具",
    )

    @field_validator("log_with", mode="before")
    @classmethod
    def _empty_means_none(cls, value):
        """sd-scripts users write log_with = "" (or leave it out) for no logging."""
        return "none" if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none")) else value
    log_prefix: str = param("", "Prefix of the log folder name.", "日志文件夹名称的前缀。", label_zh="日志前缀")
    log_tracker_name: str = param(
        "", "Tracker name: TensorBoard's run folder, the wandb project (empty: network_train, or dreambooth, as "
        "sd-scripts).", "记录名称：TensorBoard 的运行文件夹名、wandb 的项目名（留空则为 network_train 或 dreambooth，"
        "与 sd-scripts 相同）。", label_zh="日志运行名称")
    logging_dir: str = param(
        "", "Folder for TensorBoard logs. Empty: the run's folder.", "TensorBoard 日志文件夹。留空则使用本次运行的文件夹。",
        widget="path", label_zh="日志文件夹",
    )
    log_config: bool = param(
        False, "Send the run's settings to the trackers: wandb's run config and TensorBoard's Text tab (sd-scripts' "
        "log_config). File and folder paths are left out. Off: the trackers get the curves and images only.",
        "把本次训练的设置发送给记录工具：wandb 的运行配置和 TensorBoard 的 Text 页（sd-scripts 的 log_config）。"
        "文件与文件夹路径不会发送。关闭时记录工具只收到曲线和图片。", label_zh="记录训练设置",
    )


class OtherGroup(Group):
    INFO: ClassVar[GroupInfo] = GroupInfo("Other", "其他")
    clip_skip: int = param(
        1,
        "Use the text encoder's output N layers from the end (1: last layer). Anime models based on NovelAI "
        "are usually trained and used with 2. SDXL always uses its fixed layers, so this is SD1.x only.",
        "使用文本编码器倒数第 N 层的输出（1 为最后一层）。基于 NovelAI 的二次元模型通常用 2 训练和使用。"
        "SDXL 固定使用其自身的层，因此此项只适用于 SD1.x。",
        ge=1, le=12, families=("sd15",), label_zh="CLIP 跳层",
    )
    custom_toml: str = param(
        "",
        "TOML applied on top of all other settings, e.g. `[noise]` then `noise_offset = 0.05`, or just "
        "`noise_offset = 0.05` (a bare name goes to its table). Keys are checked like any others.",
        "叠加在所有设置之上的 TOML，例如 `[noise]` 换行 `noise_offset = 0.05`，也可直接写 `noise_offset = 0.05`"
        "（单独的键名会放入其所属的表）。其中的键与其他设置一样会被校验。",
        kohya="", widget="textarea", label_zh="自定义 TOML",
    )


class SpeedGroup(Group):
    INFO: ClassVar[GroupInfo] = GroupInfo("Speed and memory", "速度与显存")
    mixed_precision: Literal["no", "fp16", "bf16"] = param(
        "bf16",
        "Compute in half precision where safe. bf16 needs an RTX 30xx or newer; fp16 works on older cards.",
        "在安全的地方用半精度计算。bf16 需要 RTX 30 系或更新的显卡；较旧的显卡用 fp16。",
        level="novice", label_zh="混合精度",
    )
    full_fp16: bool = param(
        False, "Keep the adapter weights themselves in fp16 (less memory, less stable).",
        "适配器权重本身也用 fp16 存放（更省显存，但更不稳定）。", label_zh="完全 fp16",
    )
    full_bf16: bool = param(
        False, "Keep the adapter weights themselves in bf16 (less memory; needs bf16 support, RTX 30xx+).",
        "适配器权重本身也用 bf16 存放（更省显存；需要支持 bf16 的显卡，如 RTX 30 系及以上）。", label_zh="完全 bf16",
    )
    fp8_base: bool = param(
        False, "Store the frozen base model's weights in fp8 and compute in the mixed precision: much less memory "
        "for Flux and SDXL, less for SD1.5 (the U-Net's convolutions stay in the compute precision), slightly lower "
        "quality. The text encoders stay in the compute precision, as with sd-scripts' fp8_base_unet (its fp8_base "
        "stores them in fp8 too). Not for a Dreambooth run that trains the U-Net, nor for lycoris.kohya's full "
        "algorithm.",
        "以 fp8 存放冻结底模的权重、按混合精度计算：Flux 和 SDXL 显存大幅减少，SD1.5 减少较少（U-Net 的卷积层仍用计算精度），"
        "质量略有下降。文本编码器保持计算精度，与 sd-scripts 的 fp8_base_unet 相同（其 fp8_base 也会以 fp8 存放文本编码器）。"
        "不能用于训练 U-Net 的 Dreambooth，也不能用于 lycoris.kohya 的 full 算法。",
        label_zh="fp8 底模",
    )
    no_half_vae: bool = param(
        False, "Run the VAE in fp32 (SDXL's original VAE gives NaNs in fp16).", "VAE 以 fp32 运行（SDXL 原版 VAE 在 fp16 下会出现 NaN）。",
        label_zh="禁用半精度 VAE",
    )
    cache_latents: bool = param(
        True, "Encode each image with the VAE once and reuse the result: faster, less memory.",
        "每张图片只用 VAE 编码一次并重复使用结果：更快、更省显存。", label_zh="缓存潜变量",
    )
    cache_latents_to_disk: bool = param(
        False, "Keep the latent cache in files beside the images, reused by later runs.",
        "把潜变量缓存保存为图片旁的文件，供之后的训练复用。", label_zh="潜变量缓存到磁盘",
    )
    cache_text_encoder_outputs: bool = param(
        False, "Encode each caption once (only when the text encoder is not trained and captions never change).",
        "每条标注只编码一次（仅当不训练文本编码器且标注不变时可用）。", label_zh="缓存文本编码器输出",
    )
    cache_text_encoder_outputs_to_disk: bool = param(
        False, "Keep the text-encoder cache on disk.", "把文本编码器输出缓存保存到磁盘。", label_zh="文本编码器缓存到磁盘",
    )
    max_data_loader_n_workers: int = param(
        0, "Background processes that load images (0: load in the training process).",
        "在后台加载图片的进程数（0 表示在训练进程中加载）。", ge=0, le=64, label_zh="数据加载进程数",
    )
    persistent_data_loader_workers: bool = param(
        False, "Keep loader processes alive between epochs (faster epoch starts, more RAM).",
        "各轮之间保留加载进程（每轮开始更快，占用更多内存）。", label_zh="保持加载进程",
    )
    vae_batch_size: int = param(
        4, "Images encoded at once while caching latents.", "缓存潜变量时一次编码的图片数。", ge=1, le=256,
        label_zh="VAE 批次大小",
    )
    text_encoder_batch_size: int = param(
        0, "Captions encoded at a time while text-encoder outputs are cached (cache_text_encoder_outputs): more is "
        "faster, fewer takes less memory (T5-XXL's long captions). 0: train_batch_size, as sd-scripts' unset.",
        "缓存文本编码器输出（cache_text_encoder_outputs）时每次编码的标注数：越多越快，越少越省显存（T5-XXL 的长标注）。"
        "0 表示与 train_batch_size 相同，即 sd-scripts 未设置时的做法。", ge=0, le=1024, label_zh="文本编码器批次大小",
    )
    sdpa: bool = param(
        True, "Use PyTorch's scaled_dot_product_attention (fast, memory-efficient attention; it takes the place of "
        "xformers, which other tools use for the same).",
        "使用 PyTorch 的 scaled_dot_product_attention（快速、省显存的注意力实现；其他工具用 xformers 做同样的事，丹炉用它代替）。", families=("sd15", "sdxl"),
        label_zh="SDPA 注意力",  # Flux's diffusers attention is always SDPA
    )
    gpus: int = param(
        1, "GPUs to train on. Above 1 the run is started with `accelerate launch` (data parallel): each GPU "
        "trains its share of every batch, so the total batch is train_batch_size x GPUs.",
        "用于训练的显卡数。大于 1 时用 `accelerate launch` 启动（数据并行）：每张卡训练每个批次的一部分，"
        "总批次大小为 train_batch_size x 显卡数。", ge=1, le=64, kohya="", label_zh="显卡数",
    )
    gpu_ids: str = param(
        "", "Which GPUs to use, e.g. 0,1 (empty: the first `gpus`).", "使用哪些显卡，例如 0,1（留空则用前 gpus 张）。",
        kohya="", label_zh="显卡编号",
    )
    accelerate_config: str = param(
        "", "An accelerate config file (from `accelerate config`) for several machines or special setups; "
        "it decides processes and machines, and gpus is then ignored.",
        "accelerate 配置文件（由 `accelerate config` 生成），用于多机或特殊设置；进程数和机器由它决定，此时忽略显卡数。",
        kohya="", widget="path", label_zh="accelerate 配置文件",
    )
    ddp_timeout: int = param(
        0, "Several GPUs: minutes a process waits for the others before the run fails, e.g. while one of them caches "
        "the latents all of them then read (sd-scripts' ddp_timeout). Raise it for a large dataset. 0: PyTorch's "
        "default (30 minutes).",
        "多显卡：一个进程等待其他进程的分钟数，超时则训练失败，例如其中一个进程为所有进程缓存潜变量时（sd-scripts 的 "
        "ddp_timeout）。数据集很大时请调高。0 表示使用 PyTorch 的默认值（30 分钟）。", ge=0, le=10080, unit="min",
        label_zh="多卡等待超时",
    )
    ddp_gradient_as_bucket_view: bool = param(
        False, "Several GPUs: gradients are views into DistributedDataParallel's communication buckets, which saves "
        "one copy of the trained weights' gradients (sd-scripts' ddp_gradient_as_bucket_view).",
        "多显卡：梯度直接作为 DistributedDataParallel 通信桶的视图，省去一份训练权重梯度的副本"
        "（sd-scripts 的 ddp_gradient_as_bucket_view）。", label_zh="梯度作为通信桶视图",
    )
    ddp_static_graph: bool = param(
        False, "Several GPUs: tell DistributedDataParallel that every step uses the same trained weights, which lets it "
        "skip some bookkeeping (sd-scripts' ddp_static_graph). Not with networks.dylora, module_dropout or "
        "stop_text_encoder_training, whose steps leave some trained weights out.",
        "多显卡：告知 DistributedDataParallel 每一步都使用相同的训练权重，可省去部分簿记开销（sd-scripts 的 "
        "ddp_static_graph）。不能与 networks.dylora、module_dropout 或 stop_text_encoder_training 同用，它们的某些步骤"
        "不会用到部分训练权重。", label_zh="DDP 静态图",
    )
    compile_blocks: bool = param(
        False, "Compile the model's repeated blocks (transformer blocks) with torch.compile: faster steps after a "
        "first step that takes minutes. The compiled code is kept in the workspace (models/torch-compile-cache), "
        "so later runs of the same model start faster. Needs a C++ compiler on CPU, Triton on a GPU. sd-scripts' "
        "torch_compile imports as this switch.",
        "用 torch.compile 编译模型中重复的模块（transformer 块）：第一步要花几分钟，之后每步更快。编译结果保存在工作区"
        "（models/torch-compile-cache），同一模型之后的训练启动更快。CPU 上需要 C++ 编译器，显卡上需要 Triton。"
        "sd-scripts 的 torch_compile 导入后即为此开关。",
        kohya="torch_compile", label_zh="编译重复模块",  # sd-scripts compiles the whole U-Net; same intent
    )
    fused_optimizer: bool = param(
        False, "Use the optimizer's fused implementation (all weights updated in one kernel, on GPU and CPU), or "
        "else its foreach one, when the optimizer has them (torch's AdamW and SGD; the 8-bit and other library "
        "optimizers are unchanged). Same update, much less overhead. An optimizer_args entry fused=/foreach= wins.",
        "使用优化器的融合（fused）实现（所有权重在一个内核中更新，显卡和 CPU 均可），否则使用其 foreach 实现，前提是该"
        "优化器提供（如 torch 的 AdamW、SGD；8 位优化器及其他库的优化器不受影响）。更新结果相同，开销小得多。"
        "optimizer_args 中写明的 fused=/foreach= 优先。",
        kohya="", label_zh="融合优化器",
    )
    channels_last: bool = param(
        False, "Store the U-Net (and the VAE when latents are not cached) in channels_last memory format: faster "
        "convolutions on tensor-core GPUs with fp16/bf16.",
        "以 channels_last 内存格式存放 U-Net（不缓存潜变量时也包括 VAE）：在带张量核心的显卡上配合 fp16/bf16 时卷积更快。",
        families=("sd15", "sdxl"), kohya="", label_zh="channels_last 格式",
    )
    tf32: bool = param(
        False, "Let float32 matrix products and convolutions use TF32 on RTX 30xx (Ampere) and newer GPUs: much "
        "faster fp32 work, with 10-bit mantissa products. No effect on older GPUs or the CPU.",
        "在 RTX 30 系（Ampere）及更新的显卡上，让 float32 矩阵乘法和卷积使用 TF32：fp32 计算快很多，乘积的尾数为 10 位。"
        "对较旧的显卡和 CPU 无效。", kohya="", label_zh="TF32 矩阵运算",
    )
    cudnn_benchmark: bool = param(
        False, "Let cuDNN time its convolution algorithms for each input shape and keep the fastest (a slower first "
        "step per bucket size). GPU only.",
        "让 cuDNN 为每种输入形状测试卷积算法并采用最快的（每种分桶尺寸的第一步较慢）。仅限显卡。",
        kohya="", label_zh="cuDNN 基准测试",
    )
    pin_memory: bool = param(
        False, "Load batches into page-locked (pinned) memory and copy them to the GPU without waiting. GPU only.",
        "把批次加载到锁页（pinned）内存中，并以非阻塞方式复制到显卡。仅限显卡。", kohya="", label_zh="锁页内存",
    )
    loss_read_every_n_steps: int = param(
        1, "Read the loss back from the GPU every N steps instead of every step: the GPU runs ahead instead of "
        "waiting for the CPU. Every step's loss is still logged and checked for blow-ups (NaN or huge), N steps at "
        "a time, and always before a save or a preview, so a blown-up model is never saved.",
        "每 N 步而不是每步从显卡读回一次损失：显卡不必等待 CPU，可以连续运行。每一步的损失仍会被记录并检查是否炸炉"
        "（NaN 或过大），只是每 N 步一起处理，且在每次保存或预览之前一定检查，因此不会保存已炸炉的模型。",
        ge=1, le=1000, unit="steps", kohya="", label_zh="每 N 步读回损失",
    )


class FluxGroup(Group):
    INFO: ClassVar[GroupInfo] = GroupInfo("Flux", "Flux", families=("flux",))
    timestep_sampling: Literal["sigma", "uniform", "sigmoid", "shift", "flux_shift"] = param(
        "sigmoid",
        "How training timesteps are drawn: sigma from the scheduler, uniform, sigmoid of a normal sample (favours "
        "the middle), shift (sigmoid shifted by discrete_flow_shift) or flux_shift (shifted by image size, as "
        "Flux.1 was trained).",
        "训练时间步的采样方式：sigma 取自调度器，uniform 均匀采样，sigmoid 对正态样本取 sigmoid（偏向中间），shift 为按 "
        "discrete_flow_shift 偏移的 sigmoid，flux_shift 按图像尺寸偏移（与 Flux.1 的训练方式一致）。",
        families=("flux",), label_zh="时间步采样",
    )
    sigmoid_scale: float = param(
        1.0, "Spread of sigmoid timestep sampling.", "sigmoid 时间步采样的分布宽度。", ge=0.0, le=10.0, families=("flux",),
        label_zh="Sigmoid 缩放",
    )
    model_prediction_type: Literal["raw", "additive", "sigma_scaled"] = param(
        "raw",
        "How the model output is turned into the prediction: raw uses it as is, additive adds the noisy input, "
        "sigma_scaled applies the sigma scaling SD3 uses.",
        "如何把模型输出转换为预测值：raw 直接使用，additive 加上带噪输入，sigma_scaled 按 SD3 的方式做 sigma 缩放。",
        families=("flux",),
        label_zh="模型预测类型",
    )
    weighting_scheme: Literal["none", "sigma_sqrt", "logit_normal", "mode", "cosmap"] = param(
        "none",
        "SD3-style weighting, as sd-scripts applies it: logit_normal and mode change how often each timestep is "
        "drawn (with timestep_sampling = sigma); sigma_sqrt and cosmap weight the loss by the noise level (with "
        "model_prediction_type = sigma_scaled). none: neither.",
        "SD3 式加权，与 sd-scripts 的用法相同：logit_normal 和 mode 改变各时间步被抽到的频率（timestep_sampling = sigma "
        "时生效）；sigma_sqrt 和 cosmap 按噪声强度给损失加权（model_prediction_type = sigma_scaled 时生效）。none 表示都不用。",
        families=("flux",), label_zh="加权方案",
    )
    logit_mean: float = param(
        0.0, "Mean of the normal draw behind the logit_normal weighting scheme (above 0: more low-noise steps).",
        "logit_normal 加权方案所用正态分布的均值（大于 0 时更多抽到低噪声步）。", ge=-10.0, le=10.0, families=("flux",),
        label_zh="Logit 均值",
    )
    logit_std: float = param(
        1.0, "Spread of the normal draw behind the logit_normal weighting scheme.",
        "logit_normal 加权方案所用正态分布的标准差。", ge=0.0, le=10.0, families=("flux",), label_zh="Logit 标准差",
    )
    mode_scale: float = param(
        1.29, "Scale of the mode weighting scheme (SD3's s; -1 to 1.75 keeps the mapping monotonic, above 0 favours "
        "the middle timesteps).",
        "mode 加权方案的缩放（SD3 论文中的 s；-1 到 1.75 之间映射保持单调，大于 0 时偏向中间的时间步）。",
        ge=-1.0, le=1.75, families=("flux",), label_zh="Mode 缩放",
    )
    discrete_flow_shift: float = param(
        3.0, "Shift of the flow-matching schedule (with timestep_sampling = shift).",
        "流匹配调度的偏移量（timestep_sampling = shift 时使用）。", ge=0.0, le=100.0, families=("flux",),
        label_zh="流匹配偏移",
    )
    guidance_scale: float = param(
        1.0, "Guidance value fed to Flux.1-dev during training.", "训练时输入给 Flux.1-dev 的引导值。", ge=0.0, le=30.0,
        families=("flux",), label_zh="引导强度",
    )
    t5xxl_max_token_length: int = param(
        512, "Longest T5 prompt in tokens.", "T5 提示词的最大 token 数。", ge=64, le=512, families=("flux",),
        label_zh="T5 最大 token 数",
    )
    train_t5xxl: bool = param(
        False, "Also train a LoRA on T5-XXL (attention and feed-forward layers, saved as lora_te3_ like "
        "sd-scripts): a large memory cost. Needs the text encoders trained (training.network_train_unet_only off) "
        "and live text encoding (no cached text-encoder outputs). T5's learning rate is the second value of "
        "optimizer.text_encoder_lr (CLIP-L's the first).",
        "同时在 T5-XXL 上训练 LoRA（注意力层与前馈层，与 sd-scripts 一样保存为 lora_te3_）：显存开销很大。需要训练文本编码器"
        "（关闭 training.network_train_unet_only），并实时编码文本（不缓存文本编码器输出）。T5 的学习率为 "
        "optimizer.text_encoder_lr 的第二个值（第一个是 CLIP-L 的）。",
        families=("flux",), label_zh="训练 T5-XXL",
    )
    apply_t5_attn_mask: bool = param(
        False, "Mask T5 padding tokens in attention.", "在注意力中屏蔽 T5 的填充 token。", families=("flux",),
        label_zh="T5 注意力掩码",
    )
    blocks_to_swap: int = param(
        0, "Keep this many transformer blocks in CPU memory and bring each to the GPU only for its own forward "
        "(and backward) pass: less GPU memory, slower steps. Counted as sd-scripts does: N swaps N/2 double blocks "
        "and N single blocks (a double block is about two single ones). Flux.1 allows at most 35 (two blocks of "
        "each kind stay on the GPU). Works best with gradient checkpointing. 0: off.",
        "把这么多个 transformer 块放在内存（CPU）中，只在它自己的前向（和反向）计算时才搬到显卡上：显存更少，每步更慢。"
        "计数方式与 sd-scripts 相同：N 表示交换 N/2 个双流块和 N 个单流块（一个双流块约等于两个单流块）。Flux.1 最多 35"
        "（每种块至少留 2 个在显卡上）。配合梯度检查点效果最好。0 表示关闭。",
        ge=0, le=35, families=("flux",), label_zh="块交换数",
    )


class DreamboothGroup(Group):
    INFO: ClassVar[GroupInfo] = GroupInfo("Dreambooth", "Dreambooth", families=("sd15", "sdxl"))
    learning_rate_te: float | None = param(
        None, "Text encoder learning rate in a Dreambooth run (SDXL: first encoder); 0 keeps it frozen. Empty: "
        "text_encoder_lr (its first rate when it has two), else learning_rate.",
        "Dreambooth 中文本编码器的学习率（SDXL 为第一个编码器）；设为 0 则不训练它。留空则依次使用 text_encoder_lr"
        "（给出两个时用第一个）、learning_rate。",
        ge=0.0, le=1.0, families=("sd15", "sdxl"), kohya="learning_rate_te1",
        label_zh="文本编码器 1 学习率",
    )
    learning_rate_te2: float | None = param(
        None, "SDXL second text encoder learning rate in a Dreambooth run; 0 keeps it frozen. Empty: "
        "text_encoder_lr (its second rate when it has two), else learning_rate.",
        "Dreambooth 中 SDXL 第二个文本编码器的学习率；设为 0 则不训练它。留空则依次使用 text_encoder_lr（给出两个时用第二个）、"
        "learning_rate。",
        ge=0.0, le=1.0, families=("sdxl",), label_zh="文本编码器 2 学习率",
    )
    stop_text_encoder_training: int = param(
        0, "Stop training the text encoder after this many steps (0: never).", "训练到该步数后停止训练文本编码器（0 表示不停止）。",
        ge=0, families=("sd15", "sdxl"), label_zh="文本编码器停训步数",
    )
    ema_decay: float = param(
        0.0, "Keep an exponential moving average (EMA) of the trained weights with this decay, e.g. 0.9999, and "
        "save the averaged weights (smoother results; one more copy of the trained parts in memory). 0: off.",
        "以该衰减率维护训练权重的指数滑动平均（EMA），如 0.9999，并保存平均后的权重（结果更平滑；显存中多一份训练部分的"
        "副本）。0 表示关闭。", ge=0.0, le=0.99999, families=("sd15", "sdxl"), label_zh="EMA 衰减率",
    )
    fused_backward_pass: bool = param(
        False, "Apply the AdaFactor update to each weight as soon as its gradient is ready, inside the backward "
        "pass, and free that gradient at once: the gradients of the whole model are never held together, which "
        "saves several GB for SDXL. Only with optimizer_type AdaFactor and no gradient accumulation (as in "
        "sd-scripts); max_grad_norm then clips each weight's gradient on its own.",
        "在反向传播中每个权重的梯度一算出就立即执行 AdaFactor 更新并释放该梯度：整个模型的梯度不会同时驻留显存，"
        "SDXL 可省下数 GB。仅适用于 AdaFactor 优化器且不使用梯度累积（与 sd-scripts 相同）；此时 max_grad_norm "
        "对每个权重的梯度单独裁剪。", families=("sd15", "sdxl"), label_zh="融合反向传播",
    )
    save_diffusers: bool = param(
        False, "Also save each checkpoint as a diffusers folder (<name>-diffusers) beside the single file, for "
        "diffusers' from_pretrained and tools that read that layout. It takes as much disk space again.",
        "每个检查点另外保存为 diffusers 文件夹（<名称>-diffusers），放在单文件旁边，供 diffusers 的 from_pretrained "
        "及读取该格式的工具使用。会再占用同样多的磁盘空间。", families=("sd15", "sdxl"), kohya="",
        label_zh="另存 diffusers 文件夹",
    )
    class_prompt: str = param(
        "", "Prompt the missing class (regularisation) images are generated from with the base model, e.g. "
        "'a photo of a dog' when training your dog. Used only with num_class_images.",
        "用底模生成缺少的类别（正则化）图片时使用的提示词，例如训练自家狗时写 'a photo of a dog'。仅在设置 "
        "num_class_images 时使用。", families=("sd15", "sdxl"), label_zh="类别提示词",
    )
    num_class_images: int = param(
        0, "Class images wanted for prior preservation. Before training, the base model generates the missing ones "
        "from class_prompt into the class folder (dataset.reg_data_dir; when empty, a folder in the workspace "
        "named for the model and prompt), which is reused next time. 0: generate none.",
        "先验保留所需的类别图片数量。训练开始前，底模按 class_prompt 生成缺少的图片，放入类别文件夹（dataset.reg_data_dir；"
        "留空则为工作区中按底模与提示词命名的文件夹），下次直接复用。0 表示不生成。",
        ge=0, le=10000, families=("sd15", "sdxl"), label_zh="类别图片数量",
    )


class ValidationGroup(Group):
    INFO: ClassVar[GroupInfo] = GroupInfo("Validation", "验证")
    validation_split: float = param(
        0.0, "Share of the training images held out to measure validation loss (0: none). The same seed picks "
        "the same images, so runs stay comparable.",
        "留出用于计算验证损失的训练图片比例（0 表示不留）。相同的种子选出相同的图片，不同的训练因此可以比较。",
        ge=0.0, le=0.5, label_zh="验证集比例",
    )
    validation_dir: str = param(
        "", "A separate folder of validation images, laid out like the training folder (10_name sub-folders; "
        "repeats are ignored). Use it or validation_split, not both.",
        "单独的验证图片文件夹，结构与训练文件夹相同（10_name 子文件夹；重复次数不起作用）。与验证集比例二选一。",
        kohya="", widget="path", picks="datasets", label_zh="验证集文件夹",
    )
    validation_seed: int | None = param(
        None, "Seed of the split and of the fixed validation noise. Empty: training.seed.",
        "验证集划分和固定验证噪声的种子。留空则使用 training.seed。", ge=0, label_zh="验证种子",
    )
    validate_every_n_steps: int = param(
        0, "Also compute validation loss every N steps (0: only at epoch ends).",
        "另外每 N 步计算一次验证损失（0 表示只在每轮结束时计算）。", ge=0, label_zh="每 N 步验证",
    )
    validate_every_n_epochs: int = param(
        1, "Compute validation loss at the end of every N-th epoch (and the last).",
        "每 N 轮结束时（以及最后一轮）计算一次验证损失。", ge=1, label_zh="每 N 轮验证",
    )
    max_validation_steps: int = param(
        0, "Score at most this many validation batches each time (the same ones every time), so a large validation "
        "set costs less (0: all of them).", "每次验证最多计算这么多个验证批次（每次都是同样的批次），大验证集因此更省时"
        "（0 表示全部）。", ge=0, label_zh="最多验证批次",
    )
    overfit_patience: int = param(
        3, "Warn of overfitting when the validation loss has risen this many evaluations in a row while the "
        "training loss fell.", "验证损失连续上升这么多次、而训练损失在下降时，提示过拟合。", ge=2, le=100, kohya="",
        label_zh="过拟合判定次数",
    )
    early_stop: bool = param(
        False, "End the run when overfitting is detected; the final file is then the one with the lowest "
        "validation loss.", "检测到过拟合时结束训练；此时最终文件为验证损失最低的那一个。", kohya="",
        label_zh="过拟合时提前停止",
    )
