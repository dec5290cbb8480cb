"""Aspect-ratio buckets (sd-scripts' algorithm) and the cover-and-crop geometry that goes with them.

Sizes are (width, height) throughout this module, like PIL.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

Size = tuple[int, int]


def make_buckets(resolution: Size, min_reso: int, max_reso: int, step: int) -> list[Size]:
    """All bucket sizes of about `resolution`'s area, ordered from the tallest to the widest.

    The square bucket, then for each width w in min_reso..max_reso (by step) the height
    min(max_reso, floor(area / w / step) * step), added as (w, h) and (h, w) when h >= min_reso.
    """
    if step <= 0 or min_reso <= 0 or min_reso > max_reso:
        raise ValueError(f"bucket range invalid: min {min_reso}, max {max_reso}, step {step}; "
                         "need 0 < min_bucket_reso <= max_bucket_reso and a positive step")
    max_area = resolution[0] * resolution[1]
    side = int(math.sqrt(max_area) // step) * step
    buckets = {(side, side)}
    for w in range(min_reso, max_reso + 1, step):
        h = min(max_reso, (max_area // w) // step * step)
        if h >= min_reso:
            buckets.add((w, h))
            buckets.add((h, w))
    return sorted(buckets, key=lambda b: (b[0] / b[1], b[0] * b[1]))


def assign_bucket(size: Size, buckets: Sequence[Size]) -> Size:
    """The bucket whose aspect ratio is nearest to the image's (first one on a tie)."""
    ratio = size[0] / size[1]
    return min(buckets, key=lambda b: abs(b[0] / b[1] - ratio))


def no_upscale_bucket(size: Size, max_area: int, step: int) -> Size:
    """bucket_no_upscale: shrink only when over max_area (keeping the ratio), then floor each side to step.

    A side smaller than one step is given one step, the smallest size the models accept.
    """
    w, h = size
    if w * h > max_area:
        scale = math.sqrt(max_area / (w * h))
        # The epsilon absorbs float error such as 511.99999 for an exact 512.
        w, h = w * scale + 1e-6, h * scale + 1e-6
    return max(step, int(w // step) * step), max(step, int(h // step) * step)


def size_of(item) -> Size:
    """(width, height) of an ImageItem (anything with width/height) or of a (w, h) pair."""
    return (item.width, item.height) if hasattr(item, "width") else (int(item[0]), int(item[1]))


def plan_buckets(items: Sequence, *, resolution: Size, min_reso: int = 256, max_reso: int = 1024,
                 step: int = 64, enable_bucket: bool = True, no_upscale: bool = False) -> dict[int, Size]:
    """{index into items: bucket}. Without buckets every image goes to `resolution` itself.

    `items` are ImageItems (scan.items) or upright (width, height) pairs.
    """
    sizes = [size_of(it) for it in items]
    if not enable_bucket:
        return {i: tuple(resolution) for i in range(len(sizes))}
    if no_upscale:
        area = resolution[0] * resolution[1]
        return {i: no_upscale_bucket(s, area, step) for i, s in enumerate(sizes)}
    buckets = make_buckets(resolution, min_reso, max_reso, step)
    return {i: assign_bucket(s, buckets) for i, s in enumerate(sizes)}


def bucket_info(items: Sequence, plan: dict[int, Size], repeats: Sequence[int] | None = None) -> dict:
    """The ss_bucket_info metadata: images x repeats per bucket and the mean aspect-ratio error.

    repeats default to each ImageItem's own `repeats` (1 for plain sizes).
    """
    sizes = [size_of(it) for it in items]
    if repeats is None:
        repeats = [getattr(it, "repeats", 1) for it in items]
    counts: Counter = Counter()
    for i, bucket in plan.items():
        counts[bucket] += repeats[i]
    errors = [abs(sizes[i][0] / sizes[i][1] - b[0] / b[1]) for i, b in plan.items()]
    return {
        "buckets": {str(n): {"resolution": list(b), "count": counts[b]} for n, b in enumerate(sorted(counts))},
        "mean_img_ar_error": sum(errors) / len(errors) if errors else 0.0,
    }


def cover_size(size: Size, bucket: Size) -> Size:
    """The smallest scaled size of `size` (same ratio, rounded) that covers `bucket` on both sides."""
    scale = max(bucket[0] / size[0], bucket[1] / size[1])
    return max(bucket[0], round(size[0] * scale)), max(bucket[1], round(size[1] * scale))


def centre_crop(resized: Size, bucket: Size) -> tuple[int, int]:
    """Top-left (y, x) of a centred `bucket` crop inside an image of size `resized`."""
    return (resized[1] - bucket[1]) // 2, (resized[0] - bucket[0]) // 2


def expanded_by_bucket(bucket_of: Sequence[Size], repeats: Sequence[int]) -> dict[Size, list[int]]:
    """Item indices grouped by bucket, each index `repeats` times: one epoch's samples before shuffling."""
    groups: dict[Size, list[int]] = {}
    for index, (bucket, n) in enumerate(zip(bucket_of, repeats, strict=True)):
        groups.setdefault(tuple(bucket), []).extend([index] * n)
    return groups


def steps_per_epoch(bucket_of: Sequence[Size], repeats: Sequence[int], batch_size: int) -> int:
    """Batches in one epoch: per bucket, ceil(images x repeats / batch_size) (partial batches count)."""
    return sum(math.ceil(len(v) / batch_size) for v in expanded_by_bucket(bucket_of, repeats).values())
