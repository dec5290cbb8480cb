"""Rules for how images are cut to their training size (augment.face_crop_aug_range) and masked (the mask pictures of
dataset.conditioning_data_dir)."""

from __future__ import annotations

from trainer.config.errors import Finding, error, warning
from trainer.config.rules import rule
from trainer.config.schema import TrainConfig

FACE_CROP = "augment.face_crop_aug_range"


def parse_face_crop_range(text: str) -> tuple[float, float] | None:
    """'lo,hi' -> (lo, hi) with 0 < lo <= hi; '' -> None (off). Raises ValueError for anything else (sd-scripts
    refuses lo > hi, and divides by lo and hi)."""
    if not str(text).strip():
        return None
    parts = str(text).split(",")
    try:
        lo, hi = (float(p) for p in parts)
    except ValueError:
        raise ValueError(f"'{text}' is not two numbers") from None
    if not 0 < lo <= hi:
        raise ValueError(f"'{text}' is not a range with 0 < lo <= hi")
    return lo, hi


@rule
def _face_crop(cfg: TrainConfig) -> list[Finding]:
    text = cfg.augment.face_crop_aug_range
    try:
        if parse_face_crop_range(text) is None:
            return []
    except ValueError as exc:
        return [error(FACE_CROP, f"{exc}; write lo,hi such as 2.0,4.0: the training size's short side then holds 2 to "
                                 "4 faces", f"'{text}' 不是有效范围；请写成 下限,上限（0 < 下限 ≤ 上限），例如 2.0,4.0："
                                 "训练尺寸的短边将容纳 2 到 4 个人脸大小")]
    if cfg.dataset.enable_bucket:
        return [warning(FACE_CROP, "crops around faces only without buckets, as in sd-scripts: with "
                                   "dataset.enable_bucket on the faces in file names are not used; turn enable_bucket "
                                   "off (every image then trains at dataset.resolution) or clear this",
                        "与 sd-scripts 相同，只在不分桶时围绕人脸裁剪：开启 dataset.enable_bucket 时不使用文件名中的人脸位置；"
                        "请关闭 enable_bucket（所有图片按 dataset.resolution 训练）或清空此项")]
    if cfg.speed.cache_latents or cfg.speed.cache_latents_to_disk:
        return [warning(FACE_CROP, "is not applied to cached latents, as in sd-scripts: each image is cached "
                                   "centre-cropped; turn off speed.cache_latents and speed.cache_latents_to_disk, "
                                   "or clear this",
                        "与 sd-scripts 相同，不作用于缓存的潜变量：每张图片按居中裁剪缓存；请关闭 speed.cache_latents 和 "
                        "speed.cache_latents_to_disk，或清空此项")]
    return []


@rule
def _two_masks(cfg: TrainConfig) -> list[Finding]:
    """The mask pictures take the place of the alpha channels, as sd-scripts' conditioning images do."""
    d = cfg.dataset
    if d.conditioning_data_dir.strip() and d.alpha_mask:
        return [warning("dataset.alpha_mask", "is not used: the masks come from the pictures in conditioning_data_dir "
                        "(as in sd-scripts); turn alpha_mask off, or empty conditioning_data_dir to mask by "
                        "transparency", "不起作用：遮罩取自 conditioning_data_dir 中的图片（与 sd-scripts 相同）；请关闭 "
                        "alpha_mask，或清空 conditioning_data_dir 以按透明度遮罩")]
    return []
