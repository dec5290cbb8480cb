"""augment.face_crop_aug_range: sd-scripts' crop around a face whose place the image's file name gives.

A file named `<anything>_<cx>_<cy>_<w>_<h>.<ext>` holds a face centred at (cx, cy) of w x h pixels (what sd-scripts'
face-detection tool writes). With a range (lo, hi), the picture is scaled so that the target's short side is lo to
hi face sizes (drawn at random between), never enlarged and never below covering the target, then the target is
cut around the face. As sd-scripts (library/train_util.py crop_target) does; it applies the crop only to runs without
buckets and without cached latents, which the engine and the rules (trainer/config/rules_images.py) follow.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import NamedTuple

from PIL import Image

from trainer.data.buckets import Size
from trainer.data.images import Fitted, scale_and_crop

# A face of at least this many pixels, and over a tenth of the target's short side, is moved by up to 1/20 of its
# size when the range is not one number: sd-scripts' small shake, so a fixed crop does not always frame it alike.
_SHAKEN_FACE = 40


class Face(NamedTuple):
    cx: int
    cy: int
    w: int
    h: int


def face_in_name(path) -> Face | None:
    """The face the file name gives, or None. Unlike sd-scripts, which stops the run, a name whose last four parts
    are not whole numbers (`my_cat_2023_photo_01`) simply has no face; a centre at x 0 is "no face" there too, and a
    face of no size would divide by zero."""
    parts = Path(path).stem.split("_")
    if len(parts) < 5:
        return None
    try:
        face = Face(*(int(p) for p in parts[-4:]))
    except ValueError:
        return None
    return face if face.cx > 0 and face.w > 0 and face.h > 0 else None


def fit_around_face(img: Image.Image, target: Size, face: Face, aug_range: tuple[float, float], *,
                    random_crop: bool, rng: random.Random, interpolation: str = "auto") -> Fitted:
    """`img` scaled for the face and cropped to `target` (w, h) around it. The crop's place and the scaled size are
    in the result, so the alpha mask (images.scale_and_crop) and SDXL's crop conditioning follow it."""
    original = (img.height, img.width)
    if img.size == tuple(target):  # as sd-scripts: a picture of the target's size is used as it is
        return Fitted(img, (0, 0), original, img.size)
    scale = _face_scale(img.size, target, face, aug_range, rng)
    resized = (max(target[0], int(img.width * scale + 0.5)), max(target[1], int(img.height * scale + 0.5)))
    centre = (int(face.cx * scale + 0.5), int(face.cy * scale + 0.5))
    shake = aug_range[0] != aug_range[1] and max(face.w, face.h) > min(target) // 10 \
        and max(face.w, face.h) >= _SHAKEN_FACE
    top = _crop_start(resized[1], target[1], centre[1], random_crop, shake, max(face.w, face.h), rng)
    left = _crop_start(resized[0], target[0], centre[0], random_crop, shake, max(face.w, face.h), rng)
    image = scale_and_crop(img, target, (top, left), interpolation=interpolation, resized=resized)
    return Fitted(image, (top, left), original, resized)


def _face_scale(size: Size, target: Size, face: Face, aug_range: tuple[float, float], rng: random.Random) -> float:
    """The scale putting lo..hi faces across the target's short side, within [covering the target, 1]. sd-scripts
    never enlarges; a picture smaller than the target stops it, so here it is enlarged just to cover (as Danlu
    fits every picture) instead."""
    cover = max(target[0] / size[0], target[1] / size[1])
    ceiling = max(1.0, cover)
    short, face_size = min(target), max(face.w, face.h)
    low = min(ceiling, max(cover, short / (face_size * aug_range[1])))
    high = min(ceiling, max(low, short / (face_size * aug_range[0])))
    return low if low >= high else rng.uniform(low, high)


def _crop_start(length: int, target: int, face_at: int, random_crop: bool, shake: bool, face_size: int,
                rng: random.Random) -> int:
    """Where along one side (of `length`) a `target`-long crop starts: centred on the face, then moved (random_crop:
    by up to the longer distance from the face to an edge, most often a little; else the small shake), kept inside."""
    start = face_at - target // 2
    if random_crop:
        reach = max(length - face_at, face_at)
        start += rng.randint(0, reach) + rng.randint(0, reach) - reach  # a triangle: near the face more often
    elif shake:
        start += rng.randint(-face_size // 20, face_size // 20)
    return max(0, min(start, length - target))
