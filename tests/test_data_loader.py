"""Bucket batch sampler (determinism, resume), dataset samples, collate, repeats and reg balancing."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from trainer.data.buckets import plan_buckets, steps_per_epoch
from trainer.data.latent_cache import LatentCache, fill_cache
from trainer.data.loader import BucketBatchSampler, DanluDataset, collate_batch
from trainer.data.problems import DatasetError
from trainer.data.scan import scan_dataset

BUCKETS = [(32, 32)] * 3 + [(64, 32)] * 2


def test_steps_per_epoch_counts_partial_batches():
    assert steps_per_epoch(BUCKETS, [2, 2, 2, 3, 1], batch_size=4) == 2 + 1
    assert steps_per_epoch(BUCKETS, [1] * 5, batch_size=1) == 5


def test_sampler_is_deterministic_single_bucket_and_expands_repeats():
    repeats = [2, 2, 2, 3, 1]
    a = BucketBatchSampler(BUCKETS, 2, seed=7, epoch=0, repeats=repeats)
    b = BucketBatchSampler(BUCKETS, 2, seed=7, epoch=0, repeats=repeats)
    batches = list(a)
    assert batches == list(b) == list(a)
    assert len(a) == len(batches) == 3 + 2
    assert sorted(len(x) for x in batches) == [2, 2, 2, 2, 2]
    assert Counter(key[0] for batch in batches for key in batch) == Counter({0: 2, 1: 2, 2: 2, 3: 3, 4: 1})
    assert all(len({BUCKETS[key[0]] for key in batch}) == 1 for batch in batches)
    assert all(key[1] == 0 for batch in batches for key in batch)
    a.set_epoch(1)
    assert list(a) != batches
    assert list(BucketBatchSampler(BUCKETS, 2, seed=8, repeats=repeats)) != batches


def test_partial_last_batch_is_kept():
    batches = list(BucketBatchSampler([(32, 32)] * 5, 2, seed=0))
    assert sorted(len(b) for b in batches) == [1, 2, 2]


def test_resume_mid_epoch_skips_exactly_the_batches_already_seen():
    full = list(BucketBatchSampler(BUCKETS, 1, seed=3, epoch=2, repeats=[2] * 5))
    resumed = BucketBatchSampler(BUCKETS, 1, seed=3, epoch=0, repeats=[2] * 5)
    resumed.set_epoch(2, skip_batches=4)
    assert list(resumed) == full[4:] and len(resumed) == len(full) - 4 == 6


def write_images(tmp_path):
    folder = tmp_path / "train" / "2_zk"
    folder.mkdir(parents=True)
    for name, color, size in [("a", (255, 0, 0), (64, 64)), ("b", (0, 255, 0), (64, 64)),
                              ("c", (0, 0, 255), (128, 64))]:
        Image.new("RGB", size, color).save(folder / f"{name}.png")
    (folder / "a.txt").write_text("zk, red, round, small", encoding="utf-8")
    return scan_dataset(tmp_path / "train")


def loader_for(scan, dataset_kwargs=None, seed=1, epoch=0, batch_size=2, latent_cache=None):
    plan = plan_buckets(scan.items, resolution=(96, 96), min_reso=32, max_reso=128, step=32)
    bucket_of = [plan[i] for i in range(len(scan.items))]
    ds = DanluDataset(scan.items, bucket_of, latent_cache=latent_cache, **(dataset_kwargs or {}))
    sampler = BucketBatchSampler(bucket_of, batch_size, seed=seed, epoch=epoch,
                                 repeats=[it.repeats for it in scan.items])
    return ds, DataLoader(ds, batch_sampler=sampler, collate_fn=collate_batch)


def test_batches_hold_pixels_captions_and_sdxl_sizes(tmp_path):
    scan = write_images(tmp_path)
    _, loader = loader_for(scan)
    batches = list(loader)
    assert len(batches) == 3  # 4 square samples in 2 batches, 2 wide samples in 1
    assert sorted(tuple(b["pixel_values"].shape) for b in batches) == [
        (2, 3, 64, 128), (2, 3, 96, 96), (2, 3, 96, 96)]
    wide = next(b for b in batches if b["pixel_values"].shape[-1] == 128)
    assert wide["pixel_values"].shape == (2, 3, 64, 128)
    assert wide["target_size"].tolist() == [[64, 128], [64, 128]]
    assert wide["original_size"].tolist() == [[64, 128], [64, 128]]
    assert wide["crop_top_left"].tolist() == [[0, 0], [0, 0]]
    assert wide["captions"] == ["zk", "zk"] and wide["is_reg"].tolist() == [False, False]
    assert wide["pixel_values"][0, 2].min().item() == 1.0  # blue channel of a blue image
    captions = Counter(c for b in batches for c in b["captions"])
    assert captions == Counter({"zk": 4, "zk, red, round, small": 2})


def test_samples_are_reproducible_with_augmentation_on(tmp_path):
    scan = write_images(tmp_path)
    options = dict(random_crop=True, flip_aug=True, color_aug=True, shuffle_caption=True, keep_tokens=1)
    first = list(loader_for(scan, options)[1])
    second = list(loader_for(scan, options)[1])
    for x, y in zip(first, second, strict=True):
        assert torch.equal(x["pixel_values"], y["pixel_values"]) and x["captions"] == y["captions"]
        assert torch.equal(x["crop_top_left"], y["crop_top_left"])


def test_caption_dropout_every_n_epochs_empties_the_nth_epoch(tmp_path):
    scan = write_images(tmp_path)
    options = dict(caption_dropout_every_n_epochs=2)
    assert all(c for b in loader_for(scan, options, epoch=0)[1] for c in b["captions"])
    assert all(c == "" for b in loader_for(scan, options, epoch=1)[1] for c in b["captions"])


def test_corrupt_image_is_replaced_from_its_bucket_and_reported(tmp_path):
    scan = write_images(tmp_path)
    path = tmp_path / "train" / "2_zk" / "b.png"
    path.write_bytes(path.read_bytes()[:60])
    ds, loader = loader_for(scan)
    batches = list(loader)
    square_paths = [p for b in batches for p in b["paths"] if not p.endswith("c.png")]
    assert square_paths == [str(tmp_path / "train" / "2_zk" / "a.png")] * 4
    assert [p.file for p in ds.problems] == [str(path)]


def test_cached_latents_replace_pixels(tmp_path):
    scan = write_images(tmp_path)
    plan = plan_buckets(scan.items, resolution=(96, 96), min_reso=32, max_reso=128, step=32)
    cache = LatentCache("memory", "fake")
    fill_cache(cache, [(it, plan[i]) for i, it in enumerate(scan.items)],
               lambda px: torch.nn.functional.avg_pool2d(px, 8).repeat(1, 2, 1, 1)[:, :4], batch_size=2)
    batches = list(loader_for(scan, latent_cache=cache)[1])
    assert sorted(tuple(b["latents"].shape) for b in batches) == [(2, 4, 8, 16), (2, 4, 12, 12), (2, 4, 12, 12)]
    assert all("pixel_values" not in b for b in batches)
    ds, _ = loader_for(scan, latent_cache=LatentCache("memory", "empty"))
    with pytest.raises(DatasetError, match="run fill_cache"):
        ds[(0, 0, 0)]


def test_reg_images_are_flagged_and_balanced_in_an_epoch(tmp_path):
    write_images(tmp_path)
    reg = tmp_path / "reg" / "1_person"
    reg.mkdir(parents=True)
    Image.new("RGB", (64, 64), (9, 9, 9)).save(reg / "r.png")
    scan = scan_dataset(tmp_path / "train", reg_dir=tmp_path / "reg")
    _, loader = loader_for(scan, batch_size=4)
    flags = Counter(flag for b in loader for flag in b["is_reg"].tolist())
    assert flags == Counter({False: 6, True: 6})
