"""Turning an image file into an upright RGB picture of exactly its bucket's size (PIL, and OpenCV for
sd-scripts' filters once a picture is scaled: the page imports this to check datasets without loading torch; tensors
are in trainer/data/tensors.py)."""

from __future__ import annotations

import random
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageOps

from trainer.data.buckets import Size, centre_crop, cover_size
from trainer.data.problems import ImageLoadError
from trainer.textio import open_regular

# Colour augmentation turns the hue wheel by up to this many degrees either way: enough to stop the
# model tying a concept to one exact tint, small enough that skin and sky keep their colour.
HUE_SHIFT_DEGREES = 8.0
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
# dataset.resize_interpolation's filters, named as sd-scripts names them (library/utils.py resize_image). "auto"
# is sd-scripts' unset: area where the picture shrinks on both sides (no moire), lanczos where it grows. sd-scripts
# scales lanczos and box with PIL and the others with OpenCV (whose bilinear and bicubic, unlike PIL's, do not widen
# when shrinking), so the same libraries are used here.
RESIZE_FILTERS = ("auto", "area", "lanczos", "bicubic", "bilinear", "nearest", "box")
_PIL_FILTERS = {"lanczos": Image.Resampling.LANCZOS, "box": Image.Resampling.BOX}
_CV2_FILTERS = {"area": "INTER_AREA", "bicubic": "INTER_CUBIC", "bilinear": "INTER_LINEAR",
                "nearest": "INTER_NEAREST_EXACT"}  # sd-scripts' "nearest": exact, as PIL's


class Fitted(NamedTuple):
    image: Image.Image  # exactly the bucket's size
    crop_top_left: tuple[int, int]  # (top, left) in the scaled image, SDXL's crop conditioning
    original_size: tuple[int, int]  # (height, width) before scaling, SDXL's original_size
    resized: Size  # (w, h) the picture was scaled to before the crop: where a mirrored crop sits, how to fit its mask


def load_image(path) -> Image.Image:
    """Decode `path` into an upright 8-bit RGB image. Raises ImageLoadError naming the file and reason."""
    return load_image_and_alpha(path, alpha=False)[0]


def load_image_and_alpha(path, alpha: bool = True) -> tuple[Image.Image, Image.Image | None]:
    """`load_image`, and (with `alpha`) the picture's transparency as an upright "L" image: None without one."""
    try:
        with open_regular(path) as fh, Image.open(fh) as img:  # never blocks on a FIFO
            img.load()
            upright = ImageOps.exif_transpose(img)
            return to_rgb(upright), alpha_of(upright) if alpha else None
    except ImageLoadError:
        raise
    except Exception as exc:  # PIL raises OSError, ValueError, SyntaxError, DecompressionBombError...
        raise ImageLoadError(str(path), f"{type(exc).__name__}: {exc}") from exc


def has_alpha(path) -> bool:
    """Whether the picture at `path` has transparency, from its header alone (no decoding)."""
    try:
        with open_regular(path) as fh, Image.open(fh) as img:
            return _with_alpha(img)
    except Exception:  # unreadable: the loader reports it when it decodes the file
        return False


def _with_alpha(img: Image.Image) -> bool:
    return img.mode in _ALPHA_MODES or (img.mode == "P" and "transparency" in img.info)


def alpha_of(img: Image.Image) -> Image.Image | None:
    """The alpha channel (0 transparent .. 255 opaque) of a picture that has one, else None."""
    return img.convert("RGBA").getchannel("A") if _with_alpha(img) else None


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit RGB: transparency composited on white, 16-bit scaled (not clipped)."""
    if img.mode in _SIXTEEN_BIT_MODES:
        # A plain convert("L") clips 16-bit values at 255, which turns most of the picture white.
        values = np.asarray(img, dtype=np.float64)
        img = Image.fromarray(np.clip(values / 257.0, 0, 255).round().astype(np.uint8), mode="L")
    elif img.mode == "F":
        values = np.asarray(img, dtype=np.float64)
        scale = 255.0 if values.size and values.max() <= 1.0 else 1.0
        img = Image.fromarray(np.clip(values * scale, 0, 255).round().astype(np.uint8), mode="L")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    if img.mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img if img.mode == "RGB" else img.convert("RGB")


def fit_to_bucket(img: Image.Image, bucket: Size, *, random_crop: bool, rng: random.Random,
                  interpolation: str = "auto") -> Fitted:
    """Scale `img` to just cover `bucket` (w, h) with the filter `interpolation` (RESIZE_FILTERS), then crop to it:
    centred, or at a random place."""
    original = (img.height, img.width)
    resized = cover_size(img.size, bucket)
    if random_crop:
        top = rng.randint(0, resized[1] - bucket[1])
        left = rng.randint(0, resized[0] - bucket[0])
    else:
        top, left = centre_crop(resized, bucket)
    return Fitted(scale_and_crop(img, bucket, (top, left), interpolation=interpolation), (top, left), original,
                  resized)


def scale_and_crop(img: Image.Image, bucket: Size, crop_top_left: tuple[int, int], *,
                   interpolation: str = "auto", resized: Size | None = None) -> Image.Image:
    """Scale `img` to `resized` (default: just covering `bucket`) and crop it at `crop_top_left` (top, left): what
    fit_to_bucket (or a face crop) did to the picture, done to its alpha mask."""
    resized = resized or cover_size(img.size, bucket)
    if resized != img.size:
        img = resize(img, resized, interpolation)
    top, left = crop_top_left
    return img.crop((left, top, left + bucket[0], top + bucket[1]))


def resize(img: Image.Image, size: Size, interpolation: str = "auto") -> Image.Image:
    """`img` ("RGB" or "L") scaled to `size` (w, h) by the library and filter sd-scripts uses for `interpolation`,
    so the same setting trains on the same pixels there and here."""
    if interpolation not in RESIZE_FILTERS:
        raise ValueError(f"dataset.resize_interpolation: {interpolation!r} is not one of {', '.join(RESIZE_FILTERS)}")
    if interpolation == "auto":
        shrinking = size[0] <= img.width and size[1] <= img.height
        interpolation = "area" if shrinking else "lanczos"
    if interpolation in _PIL_FILTERS:
        return img.resize(size, _PIL_FILTERS[interpolation])
    import cv2  # here, not at the top: the dataset page imports this module and never scales

    scaled = cv2.resize(np.asarray(img), size, interpolation=getattr(cv2, _CV2_FILTERS[interpolation]))
    return Image.fromarray(scaled, mode=img.mode)


def hue_shift(img: Image.Image, degrees: float) -> Image.Image:
    """Rotate every pixel's hue by `degrees`; saturation and brightness stay as they were."""
    hsv = np.array(img.convert("RGB").convert("HSV"))
    steps = int(round(degrees / 360.0 * 256)) % 256
    hsv[..., 0] = (hsv[..., 0].astype(np.int32) + steps) % 256
    return Image.fromarray(hsv, mode="HSV").convert("RGB")


def augment(img: Image.Image, *, flip: bool, color: bool, rng: random.Random) -> tuple[Image.Image, bool]:
    """Random augmentation of a PIL image; returns (image, flipped).

    flip: mirror left-right with probability 1/2 (flip_aug). color: turn the hue by a random angle in
    +-HUE_SHIFT_DEGREES (color_aug). The colour angle is drawn before the flip coin: the order every seeded run
    (and its resume) has used, so keep it.
    """
    if color:
        img = hue_shift(img, rng.uniform(-HUE_SHIFT_DEGREES, HUE_SHIFT_DEGREES))
    flipped = flip and rng.random() < 0.5
    return (ImageOps.mirror(img) if flipped else img), flipped


def flipped_crop_left(resized_width: int, bucket_width: int, left: int) -> int:
    """Where a crop's left edge lands once the scaled image is mirrored (keeps SDXL's crop conditioning true)."""
    return resized_width - bucket_width - left
