"""Parameter groups: captions, noise, augmentation, sampling."""

from __future__ import annotations

from typing import ClassVar, Literal

from trainer.config.groups_core import Group
from trainer.config.spec import GroupInfo, param

SamplerName = Literal["ddim", "pndm", "lms", "euler", "euler_a", "heun", "dpm_2", "dpm_2_a", "dpmsolver++", "unipc"]


class CaptionGroup(Group):
    INFO: ClassVar[GroupInfo] = GroupInfo("Captions", "标注")
    caption_extension: str = param(
        ".txt", "Extension of the caption file beside each image.", "与图片同名的标注文件的扩展名。", label_zh="标注文件扩展名",
    )
    trigger_word: str = param(
        "",
        "Word put at the front of every caption that lacks it, so the LoRA is called up by it.",
        "加到每条缺少它的标注最前面的触发词，使用 LoRA 时写上它即可调用。",
        level="novice", kohya="", label_zh="触发词",
    )
    caption_prefix: str = param(
        "",
        "Text put before every caption, joined to it with a space (sd-scripts' caption_prefix): end it with a comma, "
        "'masterpiece, best quality,', to make it tags of their own. Unlike trigger_word it goes on every caption, "
        "regularisation images' too, and its tags are shuffled and counted by keep_tokens like the caption's.",
        "加在每条标注前面的文字，以一个空格相连（sd-scripts 的 caption_prefix）：以逗号结尾（如 'masterpiece, best "
        "quality,'）才会成为独立的标签。与触发词不同，它加到每条标注上（包括正则化图片），其标签像标注自身的标签一样被打乱、"
        "计入 keep_tokens。", label_zh="标注前缀",
    )
    caption_suffix: str = param(
        "",
        "Text put after every caption, joined to it with a space (sd-scripts' caption_suffix): start it with a comma, "
        "', from side', to make it tags of their own. Its tags are shuffled and dropped like the caption's; after a "
        "keep_tokens_separator (', x ||| masterpiece') they stay at the end.",
        "加在每条标注后面的文字，以一个空格相连（sd-scripts 的 caption_suffix）：以逗号开头（如 ', from side'）才会成为"
        "独立的标签。其标签像标注自身的标签一样被打乱和丢弃；写在 keep_tokens_separator 之后（如 ', x ||| masterpiece'）"
        "则固定在末尾。", label_zh="标注后缀",
    )
    shuffle_caption: bool = param(
        False,
        "Shuffle the comma-separated tags of each caption every step, so no tag order is learned.",
        "每步随机打乱标注中以逗号分隔的标签，避免模型记住标签顺序。", label_zh="打乱标签",
    )
    weighted_captions: bool = param(
        False,
        "Read A1111 attention syntax in captions, as sd-scripts does: (tag) weighs a tag 1.1x, [tag] 1/1.1x, "
        "(tag:1.3) 1.3x; the text encoder's output for its tokens is scaled by that weight. The brackets are not "
        "trained as text; write \\( for a literal bracket. Sample prompts are read the same way.",
        "像 sd-scripts 一样解析标注中的 A1111 权重语法：(tag) 权重为 1.1 倍，[tag] 为 1/1.1 倍，(tag:1.3) 为 1.3 倍；"
        "文本编码器对这些 token 的输出按权重缩放。括号本身不会作为文字训练；字面括号写作 \\(。预览提示词也按此解析。",
        families=("sd15", "sdxl"), label_zh="加权标注",
    )
    keep_tokens: int = param(
        0, "Keep the first N tags in place when shuffling or dropping tags (e.g. the trigger word).",
        "打乱或丢弃标签时，保持前 N 个标签不动（例如触发词）。", ge=0, le=75, label_zh="保留前 N 个标签",
    )
    keep_tokens_separator: str = param(
        "",
        "Alternative to keep_tokens: everything before this separator (e.g. |||) stays in place.",
        "keep_tokens 的替代：该分隔符（如 |||）之前的内容保持不动。", label_zh="保留标签分隔符",
    )
    caption_separator: str = param(
        ",", "What splits a caption into tags for shuffling, keep_tokens, tag dropout and tag warm-up (sd-scripts' "
        "caption_separator). The tags are written back joined by ', '.",
        "打乱、keep_tokens、标签丢弃和标签预热时用来切分标签的分隔符（sd-scripts 的 caption_separator）。处理后的标签以 ', ' "
        "连接。", label_zh="标签分隔符",
    )
    secondary_separator: str = param(
        "", "Tags joined by this, e.g. ;;; in sky;;;cloud, are one tag for shuffling, keep_tokens and dropping, and are "
        "then written with caption_separator (sky,cloud). Empty: off.",
        "用它连接的多个标签（如 sky;;;cloud 中的 ;;;）在打乱、keep_tokens 和丢弃时视为一个标签，之后替换为 caption_separator"
        "（sky,cloud）。留空表示关闭。", label_zh="次级分隔符",
    )
    max_token_length: Literal[75, 150, 225] = param(
        75, "Longest caption in tokens; longer captions are cut. 150 and 225 encode the caption in 75-token chunks, "
        "as sd-scripts does.", "标注的最大 token 数；超出部分会被截断。150 和 225 会像 sd-scripts 一样按 75 个 token 分段编码。",
        families=("sd15", "sdxl"), label_zh="最大 token 长度",  # Flux: t5xxl_max_token_length
    )
    caption_dropout_rate: float = param(
        0.0, "Share of steps in which an image is trained with an empty caption.", "以空标注训练某张图片的概率。",
        ge=0.0, le=1.0, label_zh="标注丢弃率",
    )
    caption_dropout_every_n_epochs: int = param(
        0, "Train every Nth epoch with all captions empty (0: off).", "每隔 N 轮以全部空标注训练一轮（0 表示关闭）。",
        ge=0, label_zh="每 N 轮丢弃标注",
    )
    caption_tag_dropout_rate: float = param(
        0.0, "Chance of dropping each tag (except kept ones) from a caption.", "每个标签（保留的除外）被丢弃的概率。",
        ge=0.0, le=1.0, label_zh="标签丢弃率",
    )
    token_warmup_step: float = param(
        0.0, "Tag warm-up (sd-scripts' token_warmup_step): captions start with token_warmup_min tags after the kept "
        "ones and grow to the whole caption at this step; below 1, a share of the run's steps (0.2: its first 20%). "
        "Captions then change every step, so text-encoder outputs cannot be cached. 0: off.",
        "标签预热（sd-scripts 的 token_warmup_step）：标注开始时只保留 token_warmup_min 个标签（保留标签之外），到这一步时"
        "增加到完整标注；小于 1 时为总步数的比例（0.2 表示前 20%）。标注因此每步变化，无法缓存文本编码器输出。0 表示关闭。",
        ge=0.0, label_zh="标签预热步数",
    )
    token_warmup_min: int = param(
        1, "Tags (after the kept ones) a caption starts with under tag warm-up (token_warmup_step).",
        "标签预热（token_warmup_step）开始时标注保留的标签数（保留标签之外）。", ge=0, label_zh="预热起始标签数",
    )
    enable_wildcard: bool = param(
        False, "A caption file with several lines gives one of them at random each step, and each {a|b|c} in it one "
        "of its choices (sd-scripts' enable_wildcard). Off: the first non-blank line is the caption.",
        "标注文件有多行时每步随机取其中一行，其中每个 {a|b|c} 随机取一个选项（对应 sd-scripts 的 enable_wildcard）。"
        "关闭时以第一行非空内容为标注。", label_zh="通配符标注",
    )


class NoiseGroup(Group):
    INFO: ClassVar[GroupInfo] = GroupInfo("Noise", "噪声")
    noise_offset: float = param(
        0.0,
        "Adds a per-channel constant to the noise so the model can learn very dark and very bright images "
        "(0.05-0.1 is common; 0: off).",
        "给噪声加上逐通道的常数偏移，使模型能学会很暗或很亮的画面（常用 0.05-0.1；0 表示关闭）。",
        ge=0.0, le=1.0, label_zh="噪声偏移",
    )
    adaptive_noise_scale: float = param(
        0.0, "Adds this times the absolute mean of each latent channel to noise_offset (sd-scripts' adaptive noise "
        "offset): images far from mid-grey get a larger offset. Needs noise_offset; a negative value shrinks it "
        "(never below 0). About a tenth of noise_offset is common; 0: off.",
        "在 noise_offset 上再加上该值乘以每个潜变量通道均值的绝对值（sd-scripts 的自适应噪声偏移）：偏离中灰越多的图片"
        "偏移越大。需要 noise_offset；负值会减小偏移（不低于 0）。常用 noise_offset 的十分之一左右；0 表示关闭。",
        ge=-1.0, le=1.0, label_zh="自适应噪声偏移",
    )
    noise_offset_random_strength: bool = param(
        False, "Draw each step's offset strength at random between 0 and noise_offset (sd-scripts' "
        "noise_offset_random_strength). Needs noise_offset.",
        "每一步在 0 到 noise_offset 之间随机取偏移强度（sd-scripts 的 noise_offset_random_strength）。需要 noise_offset。",
        label_zh="随机噪声偏移强度",
    )
    multires_noise_iterations: int = param(
        0, "Pyramid (multi-resolution) noise levels; 6-10 is common, 0: off.", "多分辨率（金字塔）噪声的层数；常用 6-10，0 表示关闭。",
        ge=0, le=64, label_zh="多分辨率噪声层数",
    )
    multires_noise_discount: float = param(
        0.3, "How much each coarser pyramid level is weakened.", "每一层更粗的金字塔噪声的衰减系数。", ge=0.0, le=1.0,
        label_zh="多分辨率噪声衰减",
    )
    ip_noise_gamma: float = param(
        0.0, "Input perturbation (sd-scripts' ip_noise_gamma): extra noise of this strength added to the model's input "
        "only, not to what it learns to predict; a regulariser, 0.1 is common; 0: off.",
        "输入扰动（sd-scripts 的 ip_noise_gamma）：只给模型输入额外加上该强度的噪声，不加到预测目标上；一种正则化，"
        "常用 0.1；0 表示关闭。", ge=0.0, le=1.0, label_zh="输入扰动噪声",
    )
    ip_noise_gamma_random_strength: bool = param(
        False, "Draw each step's input perturbation strength at random between 0 and ip_noise_gamma. Needs "
        "ip_noise_gamma.", "每一步在 0 到 ip_noise_gamma 之间随机取输入扰动强度。需要 ip_noise_gamma。",
        label_zh="随机输入扰动强度",
    )
    min_timestep: int = param(
        0, "Lowest timestep training draws (sd-scripts' min_timestep); with max_timestep it trains one part of the "
        "noise schedule only, e.g. 500-1000 for composition or 0-500 for details. 0: from the start.",
        "训练抽取的最小时间步（sd-scripts 的 min_timestep）；与 max_timestep 一起只训练噪声调度的一部分，如 500-1000 "
        "学构图、0-500 学细节。0 表示从头开始。", ge=0, le=999, families=("sd15", "sdxl"), label_zh="最小时间步",
    )
    max_timestep: int = param(
        1000, "Training draws timesteps below this (sd-scripts' max_timestep). 1000: to the end of the schedule.",
        "训练抽取的时间步小于此值（sd-scripts 的 max_timestep）。1000 表示直到调度末尾。", ge=1, le=1000,
        families=("sd15", "sdxl"), label_zh="最大时间步",
    )
    zero_terminal_snr: bool = param(
        False,
        "Rescale the noise schedule so the last timestep is pure noise (zero terminal SNR). For v-prediction models "
        "trained that way (e.g. NoobAI-XL v-pred); it needs v_parameterization.",
        "重新缩放噪声调度，使最后一个时间步为纯噪声（零终端信噪比）。用于以此方式训练的 v-prediction 模型"
        "（如 NoobAI-XL v-pred）；需要开启 v_parameterization。",
        families=("sd15", "sdxl"), label_zh="零终端信噪比",
    )


class AugmentGroup(Group):
    INFO: ClassVar[GroupInfo] = GroupInfo("Augmentation", "数据增强")
    color_aug: bool = param(
        False, "Randomly shift hue a little each step.", "每步随机轻微改变色相。", label_zh="颜色增强",
    )
    flip_aug: bool = param(
        False, "Randomly mirror images left-right. Not for asymmetric subjects.", "随机左右镜像图片。不适合不对称的主体。",
        label_zh="翻转增强",
    )
    random_crop: bool = param(
        False, "Crop at a random place instead of the centre when an image is larger than its bucket.",
        "图片大于分桶时在随机位置裁剪，而不是居中裁剪。", label_zh="随机裁剪",
    )
    face_crop_aug_range: str = param(
        "",
        "Crop around faces, as sd-scripts' face_crop_aug_range: lo,hi such as 2.0,4.0. An image whose file name ends "
        "in _<x>_<y>_<width>_<height> (the face's centre and size in pixels, e.g. photo_512_300_120_140.png) is "
        "scaled so that the short side of dataset.resolution holds lo to hi faces (drawn each step; never enlarged), "
        "then cropped around the face, shifted a little (anywhere around it with random_crop). Other images are "
        "fitted as usual. Only without buckets and cached latents, as in sd-scripts. Empty: off.",
        "围绕人脸裁剪，对应 sd-scripts 的 face_crop_aug_range：写成 下限,上限，例如 2.0,4.0。文件名以 "
        "_<x>_<y>_<宽>_<高> 结尾的图片（人脸中心与大小，单位像素，如 photo_512_300_120_140.png）会被缩放，使 "
        "dataset.resolution 的短边容纳下限到上限个人脸大小（每步随机取值；不放大），再围绕人脸裁剪并略作偏移"
        "（开启 random_crop 时可偏到人脸周围任意位置）。其他图片照常处理。与 sd-scripts 相同，只在不分桶且不缓存潜变量"
        "时生效。留空表示关闭。",
        label_zh="人脸裁剪范围",
    )


class SamplingGroup(Group):
    INFO: ClassVar[GroupInfo] = GroupInfo("Sample images", "预览图")
    sample_prompts: str = param(
        "",
        "Prompts for preview images during training, one a line; options inline: --n negative, --w width, "
        "--h height, --d seed, --s steps, --l CFG scale. Lines starting with # are ignored.",
        "训练中生成预览图的提示词，每行一条；可在行内加参数：--n 反向提示词，--w 宽，--h 高，--d 种子，"
        "--s 步数，--l CFG。以 # 开头的行会被忽略。",
        kohya="", widget="textarea", label_zh="预览提示词",
    )
    sample_negative_prompt: str = param(
        "", "Negative prompt for lines without --n.", "未写 --n 的行所用的反向提示词。", kohya="", label_zh="预览反向提示词",
    )
    sample_sampler: SamplerName = param(
        "euler_a", "Sampler used for previews.", "预览图使用的采样器。", label_zh="预览采样器",
    )
    sample_width: int = param(512, "Preview width.", "预览图宽度。", ge=64, le=4096, unit="px", kohya="", step=64, label_zh="预览图宽度")
    sample_height: int = param(512, "Preview height.", "预览图高度。", ge=64, le=4096, unit="px", kohya="", step=64, label_zh="预览图高度")
    sample_steps: int = param(20, "Sampling steps per preview.", "每张预览图的采样步数。", ge=1, le=200, kohya="", label_zh="预览采样步数")
    sample_cfg: float = param(7.0, "CFG scale of previews.", "预览图的 CFG 强度。", ge=0.0, le=30.0, kohya="", label_zh="预览 CFG 强度")
    sample_seed: int = param(42, "Seed of previews (same seed each time, to compare).", "预览图的种子（每次相同，便于比较）。",
                             ge=0, kohya="", label_zh="预览种子")
    sample_every_n_epochs: int = param(
        0, "Make previews every N epochs (0: off).", "每 N 轮生成一次预览图（0 表示关闭）。", ge=0, label_zh="每 N 轮预览",
    )
    sample_every_n_steps: int = param(
        0, "Make previews every N steps (0: off).", "每 N 步生成一次预览图（0 表示关闭）。", ge=0, label_zh="每 N 步预览",
    )
    sample_at_first: bool = param(
        False, "Also make previews before the first step: the base model with the untrained LoRA, to compare "
        "the later ones with.", "在第一步之前也生成一次预览图：即底模加未训练的 LoRA，便于与之后的预览对比。",
        label_zh="训练前预览",
    )
