"""What the dataset doctor can find, each with what is wrong and what to do about it, in English and Chinese.

The texts live in one table (CATALOGUE) so that the CLI, the UI panel and the tests all name a finding by its
code, and a translator edits one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# code -> (level, what en, what zh, fix en, fix zh). Templates use str.format fields given by the check.
CATALOGUE: dict[str, tuple[str, str, str, str, str]] = {
    "dataset_unusable": (
        "error", "The dataset cannot be used: {detail}", "数据集无法使用：{detail}",
        "Check the path, and that it is the folder holding the <repeats>_<name> sub-folders (not one of them).",
        "请检查路径，并确认它是包含 <重复次数>_<名称> 子文件夹的那一层（而不是其中某个子文件夹）。",
    ),
    "no_prefix": (
        "warning", "Folder '{name}' has no '<repeats>_' prefix, so training skips it.",
        "文件夹 '{name}' 没有 '<重复次数>_' 前缀，训练时会被跳过。",
        "Rename it to e.g. 10_{name} (10 = how often each image is seen per epoch).",
        "把它改名为例如 10_{name}（10 表示每轮中每张图片被使用的次数）。",
    ),
    "zero_repeats": (
        "warning", "Folder '{name}' has 0 repeats, so training skips it.", "文件夹 '{name}' 的重复次数为 0，训练时会被跳过。",
        "Use 1 or more, e.g. rename it to 1_{token}.", "改为 1 或更大，例如改名为 1_{token}。",
    ),
    "empty_folder": (
        "warning", "Folder '{name}' holds no images (.png .jpg .jpeg .webp .bmp).",
        "文件夹 '{name}' 中没有图片（.png .jpg .jpeg .webp .bmp）。",
        "Add images or delete the folder.", "放入图片，或删除该文件夹。",
    ),
    "loose_images": (
        "warning", "{count} image(s) lie directly in {name} and are ignored.", "{name} 中直接放置的 {count} 张图片会被忽略。",
        "Move them into a sub-folder such as 10_mychar.", "把它们移到子文件夹中，例如 10_mychar。",
    ),
    "unreadable": (
        "error", "The image cannot be read: {reason}", "图片无法读取：{reason}",
        "Re-save it as PNG or JPEG in an image editor, or delete it.", "用图片编辑软件重新保存为 PNG 或 JPEG，或删除它。",
    ),
    "no_caption": (
        "warning", "No caption file ({ext}); the folder name '{token}' is used as its whole caption.",
        "没有标注文件（{ext}）；将只用文件夹名 '{token}' 作为它的标注。",
        "Tag it in the WD Tagger tab or write {stem}{ext} beside it.", "在 WD 标注 页签中为它打标，或在旁边写一个 {stem}{ext}。",
    ),
    "empty_caption": (
        "warning", "The caption file is empty; the folder name '{token}' is used instead.",
        "标注文件是空的；将改用文件夹名 '{token}'。",
        "Write the tags into the file or tag the image again.", "把标签写入该文件，或重新为图片打标。",
    ),
    "caption_unreadable": (
        "warning", "The caption file cannot be read ({reason}); the folder name is used instead.",
        "标注文件无法读取（{reason}）；将改用文件夹名。",
        "Check the file's permissions or write it again.", "检查文件权限，或重新写入该文件。",
    ),
    "caption_encoding": (
        "warning", "The caption is encoded as {encoding}, not UTF-8.", "标注文件的编码是 {encoding}，不是 UTF-8。",
        "Danlu reads it, but sd-scripts and other tools expect UTF-8: save it again as UTF-8 in a text editor.",
        "丹炉可以读取，但 sd-scripts 等工具要求 UTF-8：请用文本编辑器另存为 UTF-8。",
    ),
    "caption_bom": (
        "info", "The caption is UTF-8 with a byte-order mark (BOM).", "标注文件是带 BOM 的 UTF-8。",
        "Danlu removes the mark, but sd-scripts keeps it in the first tag: save as UTF-8 without BOM.",
        "丹炉会去掉 BOM，但 sd-scripts 会把它留在第一个标签里：请另存为不带 BOM 的 UTF-8。",
    ),
    "upscaled": (
        "warning", "{width}x{height} is smaller than its bucket {bw}x{bh}: it is enlarged {scale:.2f}x and looks soft.",
        "{width}x{height} 小于它的分桶 {bw}x{bh}：会被放大 {scale:.2f} 倍，画面变糊。",
        "Use a larger original, or turn on bucket_no_upscale.", "换用更大的原图，或开启 bucket_no_upscale。",
    ),
    "cropped": (
        "warning", "{width}x{height} in bucket {bw}x{bh}: {lost:.0f}% of the picture is cut off.",
        "{width}x{height} 放入分桶 {bw}x{bh}：画面有 {lost:.0f}% 会被裁掉。",
        "Crop it yourself to a less extreme shape, keeping the subject, or widen the bucket range "
        "(min/max_bucket_reso).",
        "自己把它裁成不那么极端的比例并保留主体，或扩大分桶范围（min/max_bucket_reso）。",
    ),
    "duplicate": (
        "warning", "{count} files are byte-for-byte identical.", "{count} 个文件完全相同。",
        "Keep one and delete the others: a duplicate is trained twice as often.", "只保留一个，删除其余：重复的图片会被多训练一倍。",
    ),
    "near_duplicate": (
        "info", "{count} images look almost the same (perceptual-hash distance {distance}).",
        "{count} 张图片看起来几乎一样（感知哈希距离 {distance}）。",
        "Look at them: keep the best one unless the differences matter (the hash compares shapes, not colours); "
        "near copies are over-learned.",
        "请亲自查看：除非差别很重要，否则只保留最好的一张（该哈希比较形状、不比较颜色）；近似重复的图片会被过度学习。",
    ),
    "missing_trigger": (
        "warning", "{count} caption(s) lack the trigger word '{trigger}'.", "{count} 条标注中没有触发词 '{trigger}'。",
        "Danlu puts it first in those captions while training; add it to the files too so that other tools "
        "train the same way.",
        "丹炉训练时会把它放到这些标注的最前面；也请把它写进文件，这样其他工具也会同样训练。",
    ),
    "too_few_images": (
        "warning", "Concept '{name}' has only {count} image(s); a LoRA trained on so few copies them instead of "
        "learning the concept.", "概念“{name}”只有 {count} 张图片；这么少的图片训练出的 LoRA 只会照搬它们，学不到概念本身。",
        "Collect at least {minimum} varied, good images of it (20-30 is the usual start): different poses, "
        "framings, backgrounds and lighting.",
        "请收集至少 {minimum} 张多样、清晰的图片（通常从 20-30 张开始）：不同的姿势、构图、背景和光照。",
    ),
    "few_images": (
        "info", "Concept '{name}' has {count} images; {minimum} or more varied images usually train a more flexible "
        "LoRA.", "概念“{name}”有 {count} 张图片；通常 {minimum} 张以上多样的图片能训练出更灵活的 LoRA。",
        "If the results look stiff or copy the pictures, add more varied images of it.",
        "如果效果僵硬或照搬原图，请为它补充更多样的图片。",
    ),
    "mostly_small": (
        "warning", "{small} of {total} images are smaller than the training resolution {width}x{height}; enlarged "
        "pictures train a soft, blurry LoRA.", "{total} 张图片中有 {small} 张小于训练分辨率 {width}x{height}；"
        "被放大的图片会让 LoRA 变得模糊。",
        "Use larger originals, or train at a lower resolution (e.g. {lower}).",
        "换用更大的原图，或降低训练分辨率（例如 {lower}）。",
    ),
    "transparent": (
        "info", "{count} image(s) have transparent parts: training sees them on a white background.",
        "{count} 张图片有透明部分：训练时按白色背景合成。",
        "To train only their opaque part (e.g. a cut-out character, not the white around it), turn on "
        "dataset.alpha_mask (Expert › Dataset); images without transparency still train whole.",
        "如只想训练不透明的部分（例如抠出的角色，而不是周围的白色），请开启 dataset.alpha_mask（专家模式 › 数据集）；"
        "没有透明部分的图片仍整张训练。",
    ),
    "one_aspect": (
        "info", "All {count} images of '{name}' have the same shape ({bw}x{bh} bucket).",
        "“{name}”的全部 {count} 张图片形状相同（{bw}x{bh} 分桶）。",
        "Fine if you will only generate that shape; for other shapes, add portrait and landscape pictures "
        "(and close-ups and full views).",
        "如果只生成这种比例就没问题；若要生成其他比例，请补充竖图和横图（以及特写和全景）。",
    ),
    "scan_other": (
        "warning", "{reason}", "{reason}", "{hint}", "{hint}",
    ),
}


@dataclass(frozen=True)
class DoctorFinding:
    """One thing about the dataset worth fixing. `files` are the images, captions or folders concerned."""

    code: str
    level: str  # "error" | "warning" | "info"
    files: tuple[str, ...]
    en: str
    zh: str
    fix_en: str
    fix_zh: str
    data: dict = field(default_factory=dict, compare=False)

    def message(self, lang: str = "en") -> str:
        return self.zh if lang == "zh" else self.en

    def fix(self, lang: str = "en") -> str:
        return self.fix_zh if lang == "zh" else self.fix_en

    def as_dict(self) -> dict:
        return {"code": self.code, "level": self.level, "files": list(self.files), "en": self.en, "zh": self.zh,
                "fix_en": self.fix_en, "fix_zh": self.fix_zh, "data": self.data}


def finding(code: str, files, **fields) -> DoctorFinding:
    """A finding from the catalogue with its template fields filled in."""
    level, en, zh, fix_en, fix_zh = CATALOGUE[code]
    files = (files,) if isinstance(files, str) else tuple(files)
    return DoctorFinding(code, level, files, en.format(**fields), zh.format(**fields),
                         fix_en.format(**fields), fix_zh.format(**fields), data=dict(fields))
