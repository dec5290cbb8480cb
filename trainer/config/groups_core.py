"""Parameter groups: model, dataset, save, training."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from trainer.config.spec import FAMILIES, GroupInfo, param


class Group(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    INFO: ClassVar[GroupInfo] = GroupInfo("", "")


class ModelGroup(Group):
    INFO: ClassVar[GroupInfo] = GroupInfo("Base model", "底模")
    family: Literal[FAMILIES] = param(
        "sd15",
        "Model family of the base model: SD1.5 (also SD1.x), SDXL or Flux.1. It decides the network layout, "
        "the resolution defaults and which options apply.",
        "底模所属的模型家族：SD1.5（含 SD1.x）、SDXL 或 Flux.1。它决定网络结构、默认分辨率以及哪些选项适用。",
        level="novice", kohya="", label_zh="底模类型",
    )
    training_type: Literal["lora", "dreambooth"] = param(
        "lora",
        "LoRA trains a small add-on file; Dreambooth fine-tunes the whole model and saves a full checkpoint.",
        "LoRA 只训练一个小的附加文件；Dreambooth 微调整个模型并保存完整的模型文件。",
        families=("sd15", "sdxl"), kohya="", label_zh="训练类型",
    )
    base_model: str = param(
        "",
        "The model to train on: a Hugging Face repo id (e.g. stable-diffusion-v1-5/stable-diffusion-v1-5), a "
        "local diffusers folder, or a single .safetensors/.ckpt file.",
        "训练所用的底模：Hugging Face 仓库名（如 stable-diffusion-v1-5/stable-diffusion-v1-5）、本地 diffusers "
        "文件夹，或单个 .safetensors/.ckpt 文件。",
        level="novice", kohya="pretrained_model_name_or_path", widget="path", picks="models", label_zh="底模",
    )
    vae: str = param(
        "",
        "Optional separate VAE (folder or file) used instead of the base model's own. Empty: the model's VAE.",
        "可选：替换底模自带 VAE 的单独 VAE（文件夹或文件）。留空则使用底模自带的 VAE。",
        families=("sd15", "sdxl"), widget="path", picks="models", label_zh="VAE 文件",
    )
    v_parameterization: bool = param(
        False,
        "Train with v-prediction targets. Only for models trained that way (SD2.x 768-v, some SDXL fine-tunes).",
        "使用 v-prediction 目标训练。仅适用于以此方式训练的模型（SD2.x 768-v、部分 SDXL 微调模型）。",
        families=("sd15", "sdxl"), label_zh="V 参数化 (v-pred)",
    )
    ae: str = param(
        "", "Flux autoencoder file (ae.safetensors).", "Flux 自编码器文件（ae.safetensors）。",
        families=("flux",), widget="path", picks="models", label_zh="AE 自编码器",
    )
    clip_l: str = param(
        "", "Flux CLIP-L text encoder file.", "Flux 使用的 CLIP-L 文本编码器文件。", families=("flux",), widget="path",
        picks="models", label_zh="CLIP-L 文件",
    )
    t5xxl: str = param(
        "", "Flux T5-XXL text encoder file.", "Flux 使用的 T5-XXL 文本编码器文件。", families=("flux",), widget="path",
        picks="models", label_zh="T5-XXL 文件",
    )


class DatasetGroup(Group):
    INFO: ClassVar[GroupInfo] = GroupInfo("Dataset", "数据集")
    train_data_dir: str = param(
        "",
        "Folder holding sub-folders named <repeats>_<name> (e.g. 10_mychar) with images and caption files.",
        "训练集文件夹，内含以 <重复次数>_<名称> 命名的子文件夹（如 10_mychar），其中放图片和标注文件。",
        level="novice", widget="path", picks="datasets", label_zh="训练集文件夹",
    )
    reg_data_dir: str = param(
        "",
        "Optional regularisation images in the same <repeats>_<name> layout; they keep the model's idea of "
        "the class from drifting. Empty: none.",
        "可选的正则化图片文件夹，结构同训练集；用于防止模型对该类别的整体认知发生偏移。留空则不使用。",
        widget="path", picks="datasets", label_zh="正则化文件夹",
    )
    prior_loss_weight: float = param(
        1.0,
        "Weight of the regularisation images' loss relative to the training images'.",
        "正则化图片的损失相对训练图片损失的权重。",
        ge=0.0, le=10.0, step=0.05, label_zh="正则化损失权重",
    )
    alpha_mask: bool = param(
        False,
        "Train only the opaque parts of each image: its transparency (alpha channel) weighs the loss, so a "
        "transparent background is not learned. Half-transparent pixels count half. Images without an alpha "
        "channel train whole. The picture itself is seen composited on white. sd-scripts' alpha_mask.",
        "只训练每张图片不透明的部分：以透明度（alpha 通道）为损失加权，透明背景不会被学习。半透明像素按一半计。"
        "没有 alpha 通道的图片整张训练。图片本身按白底合成后输入。对应 sd-scripts 的 alpha_mask。",
        label_zh="按透明度遮罩损失",
    )
    conditioning_data_dir: str = param(
        "",
        "A folder of mask pictures, one a training image with the same file name (a.png's mask is a.png or a.jpg "
        "there): its red channel weighs the loss, so white parts train and black parts do not (sd-scripts' "
        "masked_loss with conditioning_data_dir). It takes the place of alpha_mask's transparency. Images without a "
        "mask picture train whole. Empty: off.",
        "遮罩图片文件夹，每张训练图片对应一张同名的遮罩图（a.png 的遮罩为其中的 a.png 或 a.jpg）：以其红色通道为损失加权，"
        "白色部分训练、黑色部分不训练（对应 sd-scripts 的 masked_loss 与 conditioning_data_dir）。它取代 alpha_mask 的"
        "透明度。没有遮罩图的图片整张训练。留空表示关闭。",
        widget="path", label_zh="遮罩图片文件夹",
    )
    resolution: str = param(
        "512,512",
        "Training resolution as width,height (one number means square). Images are resized to buckets of about "
        "this area. SD1.5: 512; SDXL and Flux: 1024.",
        "训练分辨率，格式为 宽,高（只写一个数表示正方形）。图片会被缩放到面积接近该值的分桶。SD1.5 用 512，"
        "SDXL 和 Flux 用 1024。",
        level="novice", unit="px", label_zh="训练分辨率",
    )
    enable_bucket: bool = param(
        True,
        "Aspect-ratio buckets: images keep their shape instead of being cropped to a square.",
        "启用宽高比分桶：图片保留原有比例，而不是被裁成正方形。", label_zh="启用分桶",
    )
    min_bucket_reso: int = param(
        256, "Smallest bucket side.", "分桶的最小边长。", ge=64, le=4096, unit="px", step=64, label_zh="最小分桶尺寸",
    )
    max_bucket_reso: int = param(
        1024, "Largest bucket side.", "分桶的最大边长。", ge=64, le=8192, unit="px", step=64, label_zh="最大分桶尺寸",
    )
    bucket_reso_steps: int = param(
        64,
        "Bucket sides are multiples of this. 64 is safe for every family; SDXL also accepts 32.",
        "分桶边长必须是该值的倍数。64 对所有模型都安全；SDXL 也可以用 32。",
        ge=8, le=256, unit="px", step=8, label_zh="分桶步长",
    )
    bucket_no_upscale: bool = param(
        False,
        "Never enlarge small images: each gets a bucket of its own size (rounded down to the step).",
        "不放大小图：每张图片按自身尺寸（向下取整到步长）分桶。", label_zh="分桶不放大",
    )
    resize_interpolation: Literal["auto", "area", "lanczos", "bicubic", "bilinear", "nearest", "box"] = param(
        "auto",
        "The filter that scales each image (and its alpha mask) to its bucket, as sd-scripts' resize_interpolation: "
        "auto shrinks with area (no moire) and enlarges with lanczos, sd-scripts' choice when it is unset. "
        "Cached latents made with another filter are made again.",
        "把每张图片（及其透明度遮罩）缩放到分桶尺寸时使用的插值方法，对应 sd-scripts 的 resize_interpolation："
        "auto 缩小时用 area（无摩尔纹），放大时用 lanczos，即 sd-scripts 未设置时的做法。"
        "用其他插值方法生成的潜变量缓存会重新生成。",
        label_zh="缩放插值方法",
    )


class SaveGroup(Group):
    INFO: ClassVar[GroupInfo] = GroupInfo("Saving", "保存")
    output_name: str = param(
        "danlu-lora",
        "File name of the result (the LoRA, or the checkpoint of a Dreambooth run) without extension; saves "
        "during training add a suffix such as -000002.",
        "结果文件名（LoRA，Dreambooth 训练时为模型文件），不含扩展名；训练中途保存的文件会加上 -000002 之类的后缀。",
        level="novice", label_zh="输出名称",
    )
    output_dir: str = param(
        "",
        "Folder for the trained files. Empty: the run's own folder (runs/<run>/output).",
        "训练结果保存的文件夹。留空则保存在本次运行的文件夹（runs/<运行>/output）。",
        widget="path", label_zh="输出文件夹",
    )
    save_model_as: Literal["safetensors", "ckpt", "pt"] = param(
        "safetensors",
        "File format. safetensors loads safely and fast in every tool and keeps the training metadata; ckpt/pt "
        "are torch pickles (as sd-scripts writes them, without the metadata) for tools that need them.",
        "保存格式。safetensors 安全、加载快、所有工具都支持，并保存训练元数据；ckpt/pt 为 torch pickle 文件"
        "（与 sd-scripts 相同，不含元数据），供需要它们的工具使用。",
        label_zh="保存格式",
    )
    save_precision: Literal["fp16", "bf16", "float"] = param(
        "fp16",
        "Precision of the saved weights. fp16 halves the file with no visible loss; float keeps full precision.",
        "保存权重的精度。fp16 文件减半且几乎无损；float 保留全精度。", label_zh="保存精度",
    )
    save_every_n_epochs: int = param(
        1, "Save a LoRA every N epochs (0: only at the end).", "每 N 轮保存一次 LoRA（0 表示只在结束时保存）。", ge=0,
        label_zh="每 N 轮保存",
    )
    save_n_epoch_ratio: int = param(
        0, "Save about N times over the run: every (epochs / N, rounded down, at least 1) epochs, besides the "
        "final file. When set it replaces save_every_n_epochs, as in sd-scripts (0: off).",
        "在整个训练中保存约 N 次：每 (总轮数 / N，向下取整，至少 1) 轮保存一次，最终文件另计。设置后取代"
        "save_every_n_epochs，与 sd-scripts 相同（0 表示关闭）。", ge=0, label_zh="按比例保存次数",
    )
    save_every_n_steps: int = param(
        0, "Save a LoRA every N steps (0: off).", "每 N 步保存一次 LoRA（0 表示关闭）。", ge=0, label_zh="每 N 步保存",
    )
    save_last_n_epochs: int = param(
        0, "Keep only the newest N epoch saves (0: keep all).", "只保留最近 N 个按轮保存的文件（0 表示全部保留）。",
        ge=0, label_zh="保留最近 N 轮",
    )
    save_last_n_steps: int = param(
        0, "Keep only the step saves of the last N steps (0: keep all).", "只保留最近 N 步内按步保存的文件（0 表示全部保留）。",
        ge=0, label_zh="保留最近 N 步",
    )
    save_state: bool = param(
        False,
        "Also save the optimizer, scheduler and random state with each save, so training can be resumed.",
        "每次保存时同时保存优化器、调度器和随机数状态，以便之后继续训练。", label_zh="保存训练状态",
    )
    save_last_n_epochs_state: int = param(
        0, "With save_state: keep only the newest N epoch states, apart from the LoRA files (a state holds the "
        "optimizer, several times the LoRA's size). 0: the same as save_last_n_epochs.",
        "配合 save_state：按轮保存的训练状态只保留最近 N 个，与 LoRA 文件分开计（状态含优化器，体积是 LoRA 的数倍）。"
        "0 表示与 save_last_n_epochs 相同。", ge=0, label_zh="保留最近 N 轮状态",
    )
    save_last_n_steps_state: int = param(
        0, "With save_state: keep only the step states of the last N steps, apart from the LoRA files. 0: the same "
        "as save_last_n_steps.", "配合 save_state：按步保存的训练状态只保留最近 N 步内的，与 LoRA 文件分开计。"
        "0 表示与 save_last_n_steps 相同。", ge=0, label_zh="保留最近 N 步状态",
    )
    save_state_on_train_end: bool = param(
        False, "Save the training state once, when the run ends, and not with each epoch or step save.",
        "只在训练结束时保存一次训练状态，按轮或按步保存时不保存。", label_zh="结束时保存训练状态",
    )
    resume: str = param(
        "",
        "A saved state folder (…-state) to continue from: same step, epoch, optimizer and scheduler.",
        "从保存的训练状态文件夹（…-state）继续训练：步数、轮数、优化器与调度器都会恢复。",
        widget="path", label_zh="恢复训练状态",
    )


class TrainingGroup(Group):
    INFO: ClassVar[GroupInfo] = GroupInfo("Training", "训练")
    max_train_epochs: int = param(
        10, "Number of passes over the dataset (each image counted repeats times).",
        "遍历数据集的轮数（每张图片按其重复次数计）。", ge=1, le=10000, level="novice", label_zh="训练轮数",
    )
    max_train_steps: int = param(
        0, "Stop after this many optimizer steps (0: decided by the epochs).", "达到该优化步数后停止（0 表示由轮数决定）。",
        ge=0, label_zh="最大训练步数",
    )
    initial_step: int | None = param(
        None,
        "Continue a run without its saved state (e.g. from its LoRA in network.network_weights) as if this many "
        "optimizer steps were done: step and epoch numbers (file names, logs, progress) and the learning-rate "
        "schedule go on from here, and max_train_steps still counts from step 0. The optimizer starts afresh. "
        "Overrides initial_epoch. Unlike sd-scripts, whose schedule starts at 0 without resume, Danlu continues "
        "the schedule. Empty: start at step 0.",
        "在没有保存训练状态时接着训练（如以 network.network_weights 载入其 LoRA），当作已完成这么多优化步："
        "步数和轮数（文件名、日志、进度）以及学习率调度都从这里继续，max_train_steps 仍从第 0 步算起。优化器从头开始。"
        "优先于 initial_epoch。sd-scripts 在不 resume 时学习率调度从 0 开始，丹炉则接着调度。留空则从第 0 步开始。",
        ge=0, label_zh="起始步数",
    )
    initial_epoch: int | None = param(
        None,
        "As initial_step, counted in epochs: 3 starts at the beginning of epoch 3 (after 2 epochs of steps). "
        "Empty or 1: the first epoch.",
        "与 initial_step 相同，但以轮计：3 表示从第 3 轮开头开始（即已完成 2 轮的步数）。留空或 1 表示第一轮。",
        ge=1, label_zh="起始轮数",
    )
    skip_until_initial_step: bool = param(
        False,
        "With initial_step or initial_epoch: leave out the batches the earlier run already trained in the "
        "starting epoch, so the data goes on where it stopped. Off: that epoch is trained from its first batch.",
        "配合 initial_step 或 initial_epoch：跳过起始那一轮中之前已训练过的批次，使数据从中断处继续。"
        "关闭则该轮从第一个批次开始训练。",
        label_zh="跳过已训练的批次",
    )
    train_batch_size: int = param(
        1, "Images per step. Larger uses more GPU memory; raise the learning rate with it.",
        "每步的图片数。越大显存占用越高；通常需相应提高学习率。", ge=1, le=256, level="novice", label_zh="批次大小",
    )
    gradient_checkpointing: bool = param(
        False, "Recompute activations in the backward pass: much less memory, about 20-30% slower.",
        "反向传播时重新计算激活值：显著降低显存占用，速度约慢 20-30%。", label_zh="梯度检查点",
    )
    gradient_accumulation_steps: int = param(
        1, "Add up gradients over N steps before each update: an effective batch of batch size x N.",
        "累积 N 步的梯度后再更新一次：等效批次大小为 批次大小 × N。", ge=1, le=1024, label_zh="梯度累积步数",
    )
    network_train_unet_only: bool = param(
        False, "Train only the U-Net part of the LoRA; the text encoder stays untouched.",
        "只训练 LoRA 的 U-Net 部分；文本编码器保持不变。", label_zh="仅训练 U-Net",
    )
    network_train_text_encoder_only: bool = param(
        False, "Train only the text-encoder part of the LoRA.", "只训练 LoRA 的文本编码器部分。", label_zh="仅训练文本编码器",
    )
    max_grad_norm: float = param(
        1.0, "Clip the gradient norm to this value (0: no clipping).", "将梯度范数裁剪到该值（0 表示不裁剪）。",
        ge=0.0, le=100.0, label_zh="最大梯度范数",
    )
    seed: int = param(
        1337, "Random seed: the same seed, data and settings give the same result.",
        "随机种子：种子、数据和设置相同，结果就相同。", ge=0, le=2**32 - 1, label_zh="随机种子",
    )
