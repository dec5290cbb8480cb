"""Latent cache: hits, misses and invalidation (image, bucket, VAE), batching; text-encoder cache."""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from PIL import Image

from trainer.data.latent_cache import LatentCache, cache_path, centre_crop_geometry, fill_cache
from trainer.data.tensor_cache import TensorCache


class CountingEncoder:
    """A fake VAE: 8x average pooling plus a mean channel; remembers each batch's shape."""

    def __init__(self):
        self.batches: list[tuple[int, ...]] = []

    def __call__(self, pixels: torch.Tensor) -> torch.Tensor:
        self.batches.append(tuple(pixels.shape))
        pooled = F.avg_pool2d(pixels, 8)
        return torch.cat([pooled, pooled.mean(dim=1, keepdim=True)], dim=1)

    @property
    def images(self) -> int:
        return sum(b[0] for b in self.batches)


def make_image(path, size, color):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", size, color)
    img.putpixel((0, 0), (255, 255, 255))  # not symmetric, so a flip shows
    img.save(path)
    return str(path)


def dataset(tmp_path):
    square = [make_image(tmp_path / f"s{i}.png", (64, 64), (40 * i, 0, 0)) for i in range(3)]
    wide = [make_image(tmp_path / f"w{i}.png", (96, 48), (0, 50 * i, 0)) for i in range(2)]
    return [(p, (32, 32)) for p in square] + [(p, (64, 32)) for p in wide]


def test_disk_cache_is_filled_in_same_bucket_batches_and_reused_by_a_new_run(tmp_path):
    items = dataset(tmp_path)
    enc = CountingEncoder()
    report = fill_cache(LatentCache("disk", "vae-a"), items, enc, batch_size=2)
    assert enc.batches == [(2, 3, 32, 32), (1, 3, 32, 32), (2, 3, 32, 64)]
    assert (report.encoded, report.reused, report.problems) == (5, 0, [])
    assert sorted(p.name for p in tmp_path.iterdir() if "danlu" in p.name) == [
        f"{n}.danlu-latent.safetensors" for n in ("s0", "s1", "s2", "w0", "w1")]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]

    again = CountingEncoder()
    cache = LatentCache("disk", "vae-a")
    report = fill_cache(cache, items, again, batch_size=2)
    assert (again.batches, report.encoded, report.reused) == ([], 0, 5)
    latent = cache.get(items[1][0], (32, 32))
    assert latent.shape == (4, 4, 4)
    assert torch.equal(latent, enc(torch.stack([_pixels(items[1][0], (32, 32))]))[0])


def _pixels(path, bucket):
    from trainer.data.images import fit_to_bucket, load_image
    from trainer.data.tensors import to_tensor

    return to_tensor(fit_to_bucket(load_image(path), bucket, random_crop=False, rng=None).image)


def test_changed_image_is_re_encoded_alone(tmp_path):
    items = dataset(tmp_path)
    fill_cache(LatentCache("disk", "vae-a"), items, CountingEncoder(), batch_size=4)
    make_image(tmp_path / "s1.png", (64, 64), (1, 2, 3))
    enc = CountingEncoder()
    cache = LatentCache("disk", "vae-a")
    assert cache.get(items[1][0], (32, 32)) is None
    assert cache.get(items[0][0], (32, 32)) is not None
    report = fill_cache(cache, items, enc, batch_size=4)
    assert (enc.batches, report.encoded, report.reused) == ([(1, 3, 32, 32)], 1, 4)


def test_new_bucket_size_misses_and_old_entry_stays(tmp_path):
    items = dataset(tmp_path)[:1]
    fill_cache(LatentCache("disk", "vae-a"), items, CountingEncoder())
    enc = CountingEncoder()
    cache = LatentCache("disk", "vae-a")
    report = fill_cache(cache, [(items[0][0], (64, 64))], enc)
    assert (enc.images, report.encoded) == (1, 1)
    assert cache.get(items[0][0], (64, 64)).shape == (4, 8, 8)
    assert cache.get(items[0][0], (32, 32)).shape == (4, 4, 4)


def test_other_vae_fingerprint_invalidates_everything(tmp_path):
    items = dataset(tmp_path)
    fill_cache(LatentCache("disk", "vae-a"), items, CountingEncoder(), batch_size=8)
    enc = CountingEncoder()
    report = fill_cache(LatentCache("disk", "vae-b"), items, enc, batch_size=8)
    assert (enc.images, report.reused) == (5, 0)
    assert LatentCache("disk", "vae-a").get(items[0][0], (32, 32)) is None  # file now belongs to vae-b


def test_flip_aug_caches_the_mirrored_latent_too(tmp_path):
    items = dataset(tmp_path)[:1]
    cache = LatentCache("memory", "vae-a")
    enc = CountingEncoder()
    report = fill_cache(cache, items, enc, flip_aug=True)
    assert report.encoded == 2 and enc.images == 2
    plain, mirrored = cache.get(items[0][0], (32, 32)), cache.get(items[0][0], (32, 32), flip=True)
    assert torch.allclose(mirrored, torch.flip(plain, dims=[-1]))
    assert not torch.equal(mirrored, plain)
    assert fill_cache(cache, items, enc, flip_aug=True).reused == 2


def test_corrupt_image_is_reported_and_the_rest_cached(tmp_path):
    items = dataset(tmp_path)
    data = (tmp_path / "s2.png").read_bytes()
    (tmp_path / "s2.png").write_bytes(data[:40])
    progress = []
    report = fill_cache(LatentCache("memory", "v"), items, CountingEncoder(), batch_size=2,
                        progress=lambda done, total: progress.append((done, total)))
    assert report.encoded == 4
    assert [p.file for p in report.problems] == [str(tmp_path / "s2.png")]
    assert "cannot read image" in report.problems[0].reason
    assert progress == [(2, 5), (3, 5), (5, 5)]


def test_images_sharing_a_stem_share_one_file_without_evicting(tmp_path):
    png = make_image(tmp_path / "a.png", (64, 64), (200, 0, 0))
    jpg = make_image(tmp_path / "a.jpg", (64, 64), (0, 0, 200))
    cache = LatentCache("disk", "v")
    fill_cache(cache, [(png, (32, 32)), (jpg, (32, 32))], CountingEncoder())
    assert cache_path(png) == cache_path(jpg)
    assert not torch.equal(cache.get(png, (32, 32)), cache.get(jpg, (32, 32)))


def test_touching_an_image_without_changing_it_keeps_the_cache(tmp_path):
    items = dataset(tmp_path)[:1]
    fill_cache(LatentCache("disk", "v"), items, CountingEncoder())
    os.utime(items[0][0], (1_000_000, 1_000_000))
    assert LatentCache("disk", "v").get(items[0][0], (32, 32)) is not None


def test_torn_cache_file_is_ignored_and_rewritten(tmp_path):
    items = dataset(tmp_path)[:1]
    cache_path(items[0][0]).write_bytes(b"garbage")
    enc = CountingEncoder()
    assert fill_cache(LatentCache("disk", "v"), items, enc).encoded == 1
    assert LatentCache("disk", "v").get(items[0][0], (32, 32)) is not None


def test_text_encoder_cache_memory_and_disk(tmp_path):
    tensors = {"hidden": torch.arange(6.0).reshape(1, 2, 3), "pooled": torch.ones(1, 3)}
    for cache in (TensorCache("memory", "clip-a"), TensorCache("disk", "clip-a", tmp_path / "te")):
        assert cache.get("a cat") is None
        cache.put("a cat", tensors)
        got = cache.get("a cat")
        assert set(got) == {"hidden", "pooled"} and torch.equal(got["hidden"], tensors["hidden"])
        assert cache.get("a dog") is None
    assert TensorCache("disk", "clip-a", tmp_path / "te").get("a cat") is not None
    assert TensorCache("disk", "clip-b", tmp_path / "te").get("a cat") is None


def test_crop_geometry_of_cached_latents_mirrors_with_flip():
    assert centre_crop_geometry((1920, 1080), (640, 384)) == (0, 21)
    assert centre_crop_geometry((1920, 1080), (640, 384), flip=True) == (0, 22)


def test_disk_cache_parses_a_file_header_once_and_sees_another_process_rewrite_it(tmp_path, monkeypatch):
    items = dataset(tmp_path)
    fill_cache(LatentCache("disk", "vae-a"), items, CountingEncoder(), batch_size=4)
    reader = LatentCache("disk", "vae-a")
    parsed, real = [], LatentCache._read_meta
    monkeypatch.setattr(LatentCache, "_read_meta", lambda self, file: parsed.append(file) or real(self, file))
    first = reader.get(items[0][0], (32, 32))
    assert torch.equal(reader.get(items[0][0], (32, 32)), first) and len(parsed) == 1  # an epoch re-reads no header
    assert reader.get(items[0][0], (64, 64)) is None
    LatentCache("disk", "vae-a").put(items[0][0], (64, 64), torch.full_like(first, 7.0))  # another process
    assert torch.equal(reader.get(items[0][0], (64, 64)), torch.full_like(first, 7.0))
