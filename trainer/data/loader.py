"""Batches for the training loop: a bucket-aware, resumable batch sampler, the dataset and the collate.

The sampler decides everything random about an epoch from (seed, epoch): which images share a batch,
the batch order, and one seed per sample that drives that sample's crop, flip, colour and caption. So a
resumed run (same seed, same epoch, skip_batches=k) sees exactly the batches it would have seen, with
any number of DataLoader workers. Use: DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_batch).
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Sequence

import torch
from torch.utils.data import Dataset

from trainer.data.buckets import Size, expanded_by_bucket, steps_per_epoch
from trainer.data.captions import drops_all_captions, process_caption
from trainer.data.face_crop import face_in_name, fit_around_face
from trainer.data.images import (
    augment,
    fit_to_bucket,
    has_alpha,
    load_image,
    load_image_and_alpha,
    scale_and_crop,
)
from trainer.data.latent_cache import LatentCache, centre_crop_geometry
from trainer.data.mask_pictures import mask_picture
from trainer.data.problems import DatasetError, ImageLoadError, Problem
from trainer.data.tensors import mask_tensor, to_tensor

log = logging.getLogger(__name__)
SampleKey = tuple[int, int, int, int]  # (item index, epoch, sample seed, optimizer step of its batch)


def keyed_batches(batches: list[list[int]], epoch: int, rng: random.Random, accumulation: int,
                  step_offset: int = 0) -> list[list[SampleKey]]:
    """An epoch's batches of item indices as SampleKeys. Each key carries the optimizer step its batch trains at
    (`accumulation` batches a step, the last partial group a step too), what caption tag warm-up counts: read
    from the batch's place in the epoch, it is the same in a resumed run and in any DataLoader worker.
    `step_offset`: steps the run is ahead of that count (a later start that trains its first epoch whole)."""
    first = epoch * math.ceil(len(batches) / accumulation) + step_offset
    return [[(index, epoch, rng.getrandbits(32), first + b // accumulation) for index in batch]
            for b, batch in enumerate(batches)]


class BucketBatchSampler:
    """Yields lists of SampleKey, each list from a single bucket; one epoch per iteration."""

    def __init__(self, bucket_of: Sequence[Size], batch_size: int, seed: int, epoch: int = 0, *,
                 repeats: Sequence[int] | None = None, skip_batches: int = 0, accumulation: int = 1):
        if batch_size < 1:
            raise ValueError(f"batch size must be 1 or more, got {batch_size}")
        self.bucket_of = [tuple(b) for b in bucket_of]
        self.repeats = list(repeats) if repeats is not None else [1] * len(self.bucket_of)
        if len(self.repeats) != len(self.bucket_of):
            raise ValueError("repeats and bucket_of must have one entry per item")
        self.batch_size = batch_size
        self.seed = seed
        self.accumulation = max(1, accumulation)  # batches an optimizer step
        self.step_offset = 0  # see keyed_batches; set where the run's start is known (trainer.engine.start)
        self.set_epoch(epoch, skip_batches)

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        """Move to `epoch` (0-based); skip its first `skip_batches` batches when resuming mid-epoch."""
        self.epoch = epoch
        self.skip_batches = max(0, skip_batches)

    def epoch_batches(self) -> list[list[SampleKey]]:
        """Every batch of the current epoch, including the ones skip_batches leaves out."""
        rng = random.Random(f"danlu-batches:{self.seed}:{self.epoch}")
        batches: list[list[int]] = []
        groups = expanded_by_bucket(self.bucket_of, self.repeats)
        for bucket in sorted(groups):
            members = groups[bucket]
            rng.shuffle(members)
            batches += [members[i:i + self.batch_size] for i in range(0, len(members), self.batch_size)]
        rng.shuffle(batches)
        return keyed_batches(batches, self.epoch, rng, self.accumulation, self.step_offset)

    def __iter__(self):
        yield from self.epoch_batches()[self.skip_batches:]

    def __len__(self) -> int:
        return max(0, steps_per_epoch(self.bucket_of, self.repeats, self.batch_size) - self.skip_batches)


class DanluDataset(Dataset):
    """One training sample per SampleKey: pixels (or cached latents), the processed caption, SDXL sizes.

    items are scan.items; bucket_of[i] is item i's (w, h) bucket. With latent_cache set, every
    (image, bucket[, flip]) latent must already be there (see fill_cache); no image is then decoded (with
    alpha_mask, each image's alpha is read once and kept at the latents' size). alpha_mask adds "alpha_mask", the
    picture's transparency cropped and flipped as the picture was (trainer.data.tensors.mask_tensor).
    An image that fails to load is reported once (self.problems and the log) and replaced by another
    image of the same bucket, so one bad file never stops a run.
    """

    def __init__(self, items: Sequence, bucket_of: Sequence[Size], *, latent_cache: LatentCache | None = None,
                 random_crop: bool = False, flip_aug: bool = False, color_aug: bool = False,
                 shuffle_caption: bool = False, keep_tokens: int = 0, keep_tokens_separator: str = "",
                 caption_dropout_rate: float = 0.0, caption_tag_dropout_rate: float = 0.0,
                 caption_dropout_every_n_epochs: int = 0, wildcard: bool = False, caption_prefix: str = "",
                 caption_suffix: str = "", caption_separator: str = ",", secondary_separator: str = "",
                 token_warmup_min: int = 1, token_warmup_steps: float = 0, alpha_mask: bool = False, mask_dir: str = "",
                 interpolation: str = "auto", face_crop_aug_range: tuple[float, float] | None = None):
        if len(items) != len(bucket_of):
            raise ValueError("bucket_of must have one bucket per item")
        self.items = list(items)
        self.bucket_of = [tuple(b) for b in bucket_of]
        self.latent_cache = latent_cache
        self.random_crop, self.flip_aug, self.color_aug = random_crop, flip_aug, color_aug
        self.mask_dir = mask_dir  # mask pictures in place of the alpha channels (trainer.data.mask_pictures)
        self.alpha_mask = alpha_mask or bool(mask_dir)
        self.interpolation = interpolation  # the filter scaling pictures (and masks) to buckets: RESIZE_FILTERS
        self.face_crop_aug_range = face_crop_aug_range  # (lo, hi): crop around the face a file name gives
        self._cached_masks: dict[int, torch.Tensor] = {}  # item -> its upright mask, with cached latents
        self.caption_args = dict(shuffle=shuffle_caption, keep_tokens=keep_tokens,
                                 keep_tokens_separator=keep_tokens_separator,
                                 caption_dropout_rate=caption_dropout_rate,
                                 caption_tag_dropout_rate=caption_tag_dropout_rate, wildcard=wildcard,
                                 prefix=caption_prefix, suffix=caption_suffix, separator=caption_separator,
                                 secondary_separator=secondary_separator, warmup_min=token_warmup_min,
                                 warmup_steps=token_warmup_steps)
        self.caption_dropout_every_n_epochs = caption_dropout_every_n_epochs
        self.problems: list[Problem] = []
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: SampleKey | int) -> dict:
        index, epoch, sample_seed, step = (*key, 0)[:4] if isinstance(key, tuple) else (key, 0, key, 0)
        rng = random.Random(sample_seed)
        item, bucket = self.items[index], self.bucket_of[index]
        sample = self._latent_sample(index, rng) if self.latent_cache else self._pixel_sample(index, rng)
        text = "\n".join(item.caption_lines) if self.caption_args["wildcard"] and item.caption_lines \
            else item.caption
        drop_all = drops_all_captions(epoch + 1, self.caption_dropout_every_n_epochs)
        sample["caption"] = process_caption(text, rng=rng, drop_all=drop_all, step=step, **self.caption_args)
        sample["is_reg"] = bool(item.is_reg)
        sample["target_size"] = (bucket[1], bucket[0])
        return sample

    def _latent_sample(self, index: int, rng: random.Random) -> dict:
        item, bucket = self.items[index], self.bucket_of[index]
        flipped = self.flip_aug and rng.random() < 0.5
        latent = self.latent_cache.get(item, bucket, flipped)
        if latent is None:
            raise DatasetError(f"no cached latent for {item.path} at {bucket[0]}x{bucket[1]}"
                               f"{' (flipped)' if flipped else ''}: run fill_cache before training")
        sample = {"latents": latent, "original_size": (item.height, item.width), "path": item.path,
                  "flipped": flipped, "crop_top_left": centre_crop_geometry((item.width, item.height), bucket, flipped)}
        if self.alpha_mask:
            mask = self._cached_mask(index)
            sample["alpha_mask"] = mask.flip(-1) if flipped else mask
        return sample

    def _cached_mask(self, index: int) -> torch.Tensor:
        """The upright mask of an image whose latents are cached: centre-cropped as fill_cache cropped it."""
        if index not in self._cached_masks:
            bucket, path = self.bucket_of[index], self.items[index].path
            if self.mask_dir:
                alpha = mask_picture(path, self.mask_dir, (self.items[index].width, self.items[index].height))
            else:
                _, alpha = load_image_and_alpha(path) if has_alpha(path) else (None, None)  # a header, no decode
            fitted = None if alpha is None else fit_to_bucket(alpha, bucket, random_crop=False, rng=None,
                                                              interpolation=self.interpolation).image
            self._cached_masks[index] = mask_tensor(fitted, bucket)
        return self._cached_masks[index]

    def _pixel_sample(self, index: int, rng: random.Random) -> dict:
        bucket = self.bucket_of[index]
        path, img, alpha = self._load_or_substitute(index)
        fitted = self._fit(img, path, bucket, rng)
        image, flipped = augment(fitted.image, flip=self.flip_aug, color=self.color_aug, rng=rng)
        sample = {"pixel_values": to_tensor(image), "original_size": fitted.original_size, "path": path,
                  "flipped": flipped}
        if self.alpha_mask:
            fitted_alpha = None if alpha is None else scale_and_crop(alpha, bucket, fitted.crop_top_left,
                                                                     interpolation=self.interpolation,
                                                                     resized=fitted.resized)
            sample["alpha_mask"] = mask_tensor(fitted_alpha, bucket, flipped)
        top, left = fitted.crop_top_left
        if flipped:  # where the crop sits in the mirrored picture
            left = fitted.resized[0] - bucket[0] - left
        sample["crop_top_left"] = (top, left)
        return sample

    def _fit(self, img, path, bucket, rng: random.Random):
        """The picture at its bucket's size: cut around the face its file name gives (face_crop_aug_range), else
        scaled to cover the bucket and cropped."""
        face = face_in_name(path) if self.face_crop_aug_range else None
        if face is not None:
            return fit_around_face(img, bucket, face, self.face_crop_aug_range, random_crop=self.random_crop, rng=rng,
                                   interpolation=self.interpolation)
        return fit_to_bucket(img, bucket, random_crop=self.random_crop, rng=rng, interpolation=self.interpolation)

    def _load_or_substitute(self, index: int):
        loaded = self._try_load(index)
        if loaded is not None:
            return loaded
        bucket = self.bucket_of[index]
        same_bucket = [i for i in range(len(self.items)) if self.bucket_of[i] == bucket]
        start = same_bucket.index(index)
        for i in same_bucket[start + 1:] + same_bucket[:start]:  # the next image, deterministically
            loaded = self._try_load(i)
            if loaded is not None:
                return loaded
        raise DatasetError(f"no image of bucket {bucket[0]}x{bucket[1]} can be read; "
                           f"see: {'; '.join(str(p) for p in self.problems[-3:])}")

    def _try_load(self, index: int):
        if index in self._bad:
            return None
        try:
            path = self.items[index].path
            if self.mask_dir:
                img = load_image(path)
                return path, img, mask_picture(path, self.mask_dir, img.size)
            return (path, *load_image_and_alpha(path, alpha=self.alpha_mask))
        except ImageLoadError as exc:
            self._bad.add(index)
            self.problems.append(exc.problem)
            log.warning("skipping image: %s", exc.problem)
            return None


def collate_batch(samples: list[dict]) -> dict:
    """Stack one bucket's samples. Sizes are (height, width) and crops (top, left), SDXL's order."""
    batch = {
        "captions": [s["caption"] for s in samples],
        "is_reg": torch.tensor([s["is_reg"] for s in samples], dtype=torch.bool),
        "original_size": torch.tensor([s["original_size"] for s in samples], dtype=torch.long),
        "crop_top_left": torch.tensor([s["crop_top_left"] for s in samples], dtype=torch.long),
        "target_size": torch.tensor([s["target_size"] for s in samples], dtype=torch.long),
        "paths": [s["path"] for s in samples],
        "flipped": torch.tensor([s.get("flipped", False) for s in samples], dtype=torch.bool),
    }
    for key in ("latents", "pixel_values", "alpha_mask"):
        if key in samples[0]:
            batch["alpha_masks" if key == "alpha_mask" else key] = torch.stack([s[key] for s in samples])
    return batch
