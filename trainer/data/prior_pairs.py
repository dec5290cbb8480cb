"""Prior preservation batches for Dreambooth: every batch holds its instance images and as many class
(regularisation) images, interleaved instance, class, instance, class ... as diffusers' Dreambooth script
concatenates them. Without it the class images are only balanced over the epoch (sd-scripts' rule for
LoRA), so a batch may hold none and a step pulls the model towards the subject alone.

A batch stacks one bucket's images, so class images pair with instance images of the same bucket; a
bucket without class images trains its batches without (build_data warns, naming the bucket). Like the
bucket sampler it extends, everything random follows from (seed, epoch), so a resume sees the same batches.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from trainer.data.buckets import Size, expanded_by_bucket
from trainer.data.loader import BucketBatchSampler, SampleKey, keyed_batches


class PriorPairSampler(BucketBatchSampler):
    """Batches of `batch_size` instance images (their repeats counted), each followed by a class image of
    its bucket; class images are drawn without replacement and reshuffled when a bucket's run out."""

    def __init__(self, bucket_of: Sequence[Size], is_reg: Sequence[bool], batch_size: int, seed: int, *,
                 repeats: Sequence[int], accumulation: int = 1):
        super().__init__(bucket_of, batch_size, seed, repeats=repeats, accumulation=accumulation)
        self.is_reg = list(is_reg)
        self.class_pool: dict[Size, list[int]] = {}
        for index, bucket in enumerate(self.bucket_of):
            if self.is_reg[index]:
                self.class_pool.setdefault(bucket, []).append(index)
        self.instance_repeats = [0 if r else n for r, n in zip(self.is_reg, self.repeats, strict=True)]

    def buckets_without_class_images(self) -> list[Size]:
        groups = expanded_by_bucket(self.bucket_of, self.instance_repeats)
        return sorted(b for b, members in groups.items() if members and b not in self.class_pool)

    def epoch_batches(self) -> list[list[SampleKey]]:
        rng = random.Random(f"danlu-prior-pairs:{self.seed}:{self.epoch}")
        groups = expanded_by_bucket(self.bucket_of, self.instance_repeats)
        batches: list[list[int]] = []
        for bucket in sorted(b for b, members in groups.items() if members):
            members, draw = groups[bucket], _Draw(self.class_pool.get(bucket, []), rng)
            rng.shuffle(members)
            for i in range(0, len(members), self.batch_size):
                batches.append([x for index in members[i:i + self.batch_size] for x in (index, *draw.one())])
        rng.shuffle(batches)
        return keyed_batches(batches, self.epoch, rng, self.accumulation)

    def __len__(self) -> int:
        groups = expanded_by_bucket(self.bucket_of, self.instance_repeats)
        total = sum(math.ceil(len(m) / self.batch_size) for m in groups.values() if m)
        return max(0, total - self.skip_batches)


class _Draw:
    """Class images of one bucket in shuffled passes: () when the bucket has none."""

    def __init__(self, pool: list[int], rng: random.Random):
        self.pool, self.rng, self.left = pool, rng, []

    def one(self) -> tuple[int, ...]:
        if not self.pool:
            return ()
        if not self.left:
            self.left = self.rng.sample(self.pool, len(self.pool))
        return (self.left.pop(),)
