"""Parameter group: the network (LoRA, DyLoRA, OFT, LyCORIS) and its rank, alpha, dropout, weights and block rates."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import (
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from trainer.config.groups_core import Group
from trainer.config.spec import GroupInfo, param

# The network types with a rank (low-rank factors): conv rank and rank dropout mean something only for these.
RANKED = ("networks.lora", "networks.dylora", "lycoris.kohya")
MAX_DIM = 1024  # network_dim and conv_dim of every network, and the range the forms show
# LyCORIS' LoKr trains a Kronecker factor whole, undecomposed, once the dim reaches half its side (lycoris/modules/
# lokr.py; both whole: scale 1). kohya_ss' LoKr presets write 100000 for "do not decompose", the top of its slider.
LOKR_FULL_DIM = 100000


class NetworkGroup(Group):
    INFO: ClassVar[GroupInfo] = GroupInfo("Network", "网络")
    network_module: Literal["networks.lora", "networks.dylora", "networks.oft", "lycoris.kohya"] = param(
        "networks.lora",
        "Adapter type. networks.lora: standard LoRA (LoCon with conv_dim). networks.dylora: dynamic-rank LoRA. "
        "networks.oft: sd-scripts' Orthogonal Finetuning (no text encoder; on Flux sd-scripts' oft_flux, by default the "
        "double blocks' attention; dim = blocks per layer, alpha = the constraint, e.g. 1e-3; continuing a file keeps "
        "network_alpha's constraint as sd-scripts does). lycoris.kohya: the LyCORIS family (LoCon, LoHa, LoKr, ...).",
        "适配器类型。networks.lora：标准 LoRA（设置 conv_dim 即为 LoCon）。networks.dylora：动态秩 LoRA。"
        "networks.oft：sd-scripts 的正交微调（OFT，不训练文本编码器；Flux 上为 sd-scripts 的 oft_flux，默认训练双流块的注意力；dim 为每层的块数，"
        "alpha 为约束，如 1e-3；从文件继续训练时沿用 network_alpha 的约束（同 sd-scripts））。lycoris.kohya：LyCORIS 系列（LoCon、LoHa、LoKr 等）。",
        label_zh="网络模块",
    )
    lycoris_algo: Literal["locon", "loha", "lokr", "ia3", "dylora", "glora", "full", "diag-oft", "boft"] = param(
        "locon",
        "LyCORIS algorithm (with lycoris.kohya): locon (LoRA on linear and conv layers), loha (Hadamard product), "
        "lokr (Kronecker product), ia3, dylora, diag-oft and boft (orthogonal), glora, full (every weight).",
        "LyCORIS 算法（配合 lycoris.kohya）：locon（线性层与卷积层上的 LoRA）、loha（Hadamard 积）、lokr（Kronecker 积）、"
        "ia3、dylora、diag-oft 与 boft（正交微调）、glora、full（训练全部权重）。",
        kohya="", networks=("lycoris.kohya",), label_zh="LyCORIS 算法",
    )
    network_dim: int = param(
        32,
        "LoRA rank: the size of the adapter. 8-32 suits most characters and styles; larger files learn more "
        f"detail and more noise. LyCORIS LoKr (lycoris_algo lokr) also takes up to {LOKR_FULL_DIM}: from half a "
        f"Kronecker factor's side up it trains that factor whole (\"do not decompose\", the {LOKR_FULL_DIM} of "
        "kohya_ss' LoKr presets).",
        "LoRA 的秩（维度），决定适配器大小。角色和画风通常 8-32；更大能学到更多细节，也更易学进噪声。LyCORIS LoKr"
        f"（lycoris_algo 为 lokr）还可设到 {LOKR_FULL_DIM}：不小于 Kronecker 因子边长的一半时，该因子整体训练"
        f"（“不分解”，即 kohya_ss 的 LoKr 预设中的 {LOKR_FULL_DIM}）。",
        ge=1, le=MAX_DIM, level="novice", label_zh="网络维度 (dim)",
    )
    network_alpha: float = param(
        16.0,
        "Scales the adapter by alpha/dim. Lower alpha means smaller effective updates; often dim/2 or 1.",
        "按 alpha/dim 缩放适配器输出。alpha 越小，实际更新越小；常用 dim 的一半或 1。",
        ge=0.0, le=1024.0, label_zh="网络 Alpha",
    )
    conv_dim: int = param(
        0, "Rank of the LoRA on convolution layers (LoCon); 0: attention and feed-forward layers only. LoKr takes up "
        f"to {LOKR_FULL_DIM}, as network_dim.",
        f"卷积层 LoRA（LoCon）的秩；0 表示只训练注意力与前馈层。LoKr 可设到 {LOKR_FULL_DIM}，同 network_dim。",
        ge=0, le=MAX_DIM, kohya="", networks=RANKED,
        families=("sd15", "sdxl"), label_zh="卷积维度",  # Flux's transformer has no convolution layers
    )
    conv_alpha: float = param(
        1.0, "Alpha of the convolution LoRA.", "卷积层 LoRA 的 alpha。", ge=0.0, le=1024.0, kohya="",
        networks=RANKED, families=("sd15", "sdxl"), label_zh="卷积 Alpha",
    )
    network_dropout: float = param(
        0.0, "Dropout on the adapter's rank activations (lora_down's output) during training, as sd-scripts' "
        "network_dropout (0.1 is a common mild value). With lycoris.kohya it is lycoris-lora's dropout on the "
        "adapter's output (locon, loha, lokr, glora only).",
        "训练时对适配器秩激活（lora_down 的输出）施加的 dropout，同 sd-scripts 的 network_dropout（0.1 是较温和的常用值）。"
        "配合 lycoris.kohya 时为 lycoris-lora 对适配器输出的 dropout（仅 locon、loha、lokr、glora）。", ge=0.0, le=1.0,
        networks=("networks.lora", "lycoris.kohya"),
        label_zh="网络 Dropout",
    )
    network_weights: str = param(
        "", "A LoRA file to start from, to continue training it.", "作为起点的 LoRA 文件，用于在其基础上继续训练。",
        widget="path", label_zh="起始 LoRA 权重",
    )
    dim_from_weights: bool = param(
        False,
        "Take the rank and alpha of every layer from the network_weights file (its lora_down shapes and alphas, the "
        "convolutions' own), as sd-scripts' dim_from_weights: continue a LoRA without knowing its rank; network_dim, "
        "network_alpha, conv_dim and conv_alpha are then not used. networks.lora trains exactly the file's layers, "
        "each at its own rank; networks.dylora, networks.lora with network_args and lycoris.kohya (locon, dylora) take "
        "one rank for the linear layers and one for the convolutions, and the file must hold every layer they train.",
        "从 network_weights 文件读取每一层的秩与 alpha（其 lora_down 的形状与 alpha，卷积层用各自的值），同 sd-scripts 的 "
        "dim_from_weights：不知道 LoRA 的秩也能继续训练；此时不使用 network_dim、network_alpha、conv_dim 与 conv_alpha。"
        "networks.lora 只训练文件中有的层，每层用各自的秩；networks.dylora、带 network_args 的 networks.lora 与 "
        "lycoris.kohya（locon、dylora）要求线性层同一个秩、卷积层同一个秩，且文件须包含它们训练的每一层。",
        networks=RANKED, families=("sd15", "sdxl"), label_zh="从权重读取维度",
    )
    scale_weight_norms: float = param(
        0.0,
        "Max-norm regularisation: after each step, any layer whose weight change (up x down x alpha/dim) has a "
        "norm above this is scaled back to it (1 is typical; 0: off). The number of scaled layers and the mean norm "
        "are logged each step.",
        "最大范数正则化：每步之后，权重变化（up × down × alpha/dim）范数超过该值的层会被缩放回该值（常用 1；0 表示关闭）。"
        "每步记录被缩放的层数与平均范数。",
        ge=0.0, le=100.0, label_zh="最大范数正则",
    )
    network_args: list[str] = param(
        [],
        "Extra network arguments, one key=value each, as sd-scripts' network_args. With networks.lora: "
        "rank_dropout, module_dropout, dora_wd=True (DoRA, saved with dora_scale as ComfyUI/Forge/A1111 load it). "
        "With lycoris.kohya: preset "
        "(full, attn-mlp, attn-only, unet-only, ...), dropout, rank_dropout, module_dropout, use_tucker, use_scalar "
        "and the algorithm's own options (factor, decompose_both for lokr; block_size for dylora; constraint, "
        "rescaled for OFT; dora_wd=True for DoRA with locon/loha/lokr); an option the algorithm does not take is an error. "
        "With networks.oft: enable_all_linear=True, enable_conv=True (on Flux: enable_all_linear=True for every "
        "block Linear, no enable_conv). "
        "On Flux (networks.lora, as sd-scripts' lora_flux): rank_dropout, module_dropout, train_blocks "
        "(all/single/double), train_double_block_indices and train_single_block_indices (all, none or e.g. 0-3,7), "
        "split_qkv=True; DoRA: dora_wd=True with rank_dropout, module_dropout; with lycoris.kohya (locon or loha): "
        "dropout, rank_dropout, module_dropout; lokr: dropout, module_dropout, factor, decompose_both. LoKr and DoRA "
        "are saved per diffusers Linear (lycoris_ names) for ComfyUI/Forge, which apply them to slices of the fused "
        "q/k/v; diffusers' load_lora_weights does not load them.",
        "额外的网络参数，每项为 key=value，同 sd-scripts 的 network_args。配合 networks.lora：rank_dropout、"
        "module_dropout、dora_wd=True（DoRA，保存 dora_scale，ComfyUI/Forge/A1111 均可加载）。配合 lycoris.kohya：preset（full、attn-mlp、"
        "attn-only、unet-only 等）、dropout、rank_dropout、module_dropout、use_tucker、use_scalar，以及算法自己的选项"
        "（lokr 的 factor、decompose_both；dylora 的 block_size；OFT 的 constraint、rescaled；locon/loha/lokr 用 dora_wd=True 即为 DoRA）；算法不接受的选项会报错。"
        "配合 networks.oft：enable_all_linear=True、enable_conv=True（Flux 上：enable_all_linear=True 训练所有块的 Linear，无 enable_conv）。"
        "Flux（networks.lora，同 sd-scripts 的 lora_flux）：rank_dropout、module_dropout、train_blocks（all/single/double）、"
        "train_double_block_indices 与 train_single_block_indices（all、none 或如 0-3,7）、split_qkv=True；DoRA：dora_wd=True，可配 rank_dropout、module_dropout；配合 lycoris.kohya（locon 或 loha）："
        "dropout、rank_dropout、module_dropout；lokr：dropout、module_dropout、factor、decompose_both。LoKr 与 DoRA 按 "
        "diffusers 的每个 Linear 保存（lycoris_ 名称），供 ComfyUI/Forge 加载到融合 q/k/v 权重的对应切片；diffusers 的 "
        "load_lora_weights 不会加载它们。",
        networks=("lycoris.kohya", "networks.lora", "networks.oft"), label_zh="网络参数",
    )
    dylora_unit: int = param(
        4, "DyLoRA rank step (networks.dylora): ranks are trained in blocks of this size, so the file can be cut to "
        "any multiple of it; it must divide network_dim.",
        "DyLoRA 的秩步长（networks.dylora）：按该大小分块训练秩，文件可截取为它的任意倍数；须整除网络维度。",
        ge=1, le=128, kohya="", networks=("networks.dylora",), label_zh="DyLoRA 秩步长",
    )
    enable_block_weights: bool = param(
        False,
        "Block-wise learning rates: the U-Net's down, middle and up blocks learn at the U-Net rate times their "
        "weight (SD1.x: 12 down, 1 middle, 12 up; SDXL: 9, 3, 9, as sd-scripts numbers them).",
        "分层学习率：U-Net 的下、中、上各块按 U-Net 学习率乘以各自权重学习（SD1.x：下 12、中 1、上 12；SDXL：9、3、9，与 sd-scripts 编号一致）。",
        kohya="", label_zh="启用分层学习率",
    )
    down_lr_weight: str = param(
        "",
        "Down-block weights: one number per block, comma separated (missing ones are 1), or a curve: sine, cosine, "
        "linear, reverse_linear, zeros (name+0.1 adds 0.1 to each).",
        "下采样块权重：每块一个数，逗号分隔（缺少的为 1），或曲线名：sine、cosine、linear、reverse_linear、zeros"
        "（名称+0.1 表示每个加 0.1）。",
        kohya="", label_zh="下采样块权重",
    )
    mid_lr_weight: str = param("", "Middle-block weight(s) (empty: 1): one number for SD1.x, up to 3 comma-separated for "
                               "SDXL's three middle blocks (missing ones are 1).",
                               "中间块的权重（空为 1）：SD1.x 一个数；SDXL 有三个中间块，最多三个逗号分隔的数（缺少的为 1）。", kohya="",
                               label_zh="中间块权重")
    up_lr_weight: str = param(
        "", "Up-block weights, as for the down blocks.", "上采样块权重，写法同下采样块。",
        kohya="", label_zh="上采样块权重",
    )
    block_lr_zero_threshold: float = param(
        0.0, "Blocks whose weight is at or below this (or 0) are not trained at all.",
        "权重不高于该值（或为 0）的块完全不训练。", ge=0.0, le=1.0, kohya="", label_zh="分层零权重阈值",
    )
    enable_base_weight: bool = param(
        False,
        "Merge the LoRAs in base_weights into the base model before training (the base stays frozen).",
        "训练前把 base_weights 中的 LoRA 合并进底模（底模本身仍然冻结）。",
        kohya="", label_zh="启用预合并 LoRA",
    )
    base_weights: list[str] = param(
        [], "LoRA files (LoRA, LoCon, LoHa or LoKr) merged into the base model before training.",
        "训练前合并进底模的 LoRA 文件（LoRA、LoCon、LoHa 或 LoKr）。",
        label_zh="预合并 LoRA 文件",
    )
    base_weights_multiplier: list[float] = param(
        [], "Merge strength of each base_weights file (missing ones are 1).", "base_weights 中各文件的合并强度（缺省为 1）。",
        label_zh="预合并强度",
    )

    @field_validator("network_dim", "conv_dim", mode="wrap")
    @classmethod
    def _lokr_takes_more(cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> int:
        """A dim past MAX_DIM fails the schema's range unless the network is LoKr; network_module and lycoris_algo are
        declared before the dims, so info.data holds them."""
        try:
            return handler(value)
        except ValidationError as exc:
            if [e["type"] for e in exc.errors()] != ["less_than_equal"]:
                raise
        problem = dim_problem(int(value), info.data.get("network_module"), info.data.get("lycoris_algo"))
        if problem:
            raise PydanticCustomError("dim_range", problem)
        return int(value)

    @model_validator(mode="after")
    def _dims_fit_the_network(self) -> NetworkGroup:
        """Again after an assignment: switching away from LoKr leaves a dim the new network cannot take."""
        for name in ("network_dim", "conv_dim"):
            if problem := dim_problem(getattr(self, name), self.network_module, self.lycoris_algo):
                raise ValueError(f"network.{name} {problem}")
        return self


def dim_problem(dim: int, module: str | None, algo: str | None) -> str:
    """What is wrong with network_dim/conv_dim `dim` for the network ("" when it fits)."""
    if dim <= MAX_DIM:
        return ""
    if (module, algo) != ("lycoris.kohya", "lokr"):
        return (f"must be at most {MAX_DIM}; only LyCORIS LoKr (network_module = lycoris.kohya, lycoris_algo = lokr) "
                f"takes more, as 'do not decompose' (other networks would build {dim}-wide matrices); set it to "
                f"{MAX_DIM} or less")
    if dim > LOKR_FULL_DIM:
        return (f"must be at most {LOKR_FULL_DIM} for LoKr: from half a Kronecker factor's side up it already trains "
                f"the factor whole")
    return ""
