"""dataset.alpha_mask: each image's transparency is its loss mask (sd-scripts' alpha_mask), so only the opaque parts
train. The mask follows the image through the bucket's scale and crop, the flip and the latent cache, reaches the
loss at the latents' size, and an sd-scripts config that sets it (or masked_loss) imports as it trains there."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from tests.engine_helpers import losses, save_tiny_sd15, tiny_config
from trainer.config import ConfigError
from trainer.config.kohya import export_kohya, import_kohya
from trainer.data.latent_cache import LatentCache, fill_cache
from trainer.data.loader import DanluDataset
from trainer.data.scan import scan_dataset
from trainer.engine.noise import per_sample_loss
from trainer.engine.run import train


def _rgba(path: Path, size: tuple[int, int], opaque_columns: int | None) -> Path:
    """A red picture whose first `opaque_columns` columns are opaque and the rest transparent (None: no alpha)."""
    w, h = size
    if opaque_columns is None:
        Image.new("RGB", size, (200, 30, 30)).save(path)
    else:
        alpha = np.zeros((h, w), np.uint8)
        alpha[:, :opaque_columns] = 255
        rgb = np.full((h, w, 3), (200, 30, 30), np.uint8)
        Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(path)
    path.with_suffix(".txt").write_text("zk, red", encoding="utf-8")
    return path


def _items(root: Path, *images: tuple[str, tuple[int, int], int | None]):
    sub = root / "1_zk"
    sub.mkdir(parents=True)
    for name, size, opaque in images:
        _rgba(sub / name, size, opaque)
    return scan_dataset(str(root)).items


def _sample(dataset: DanluDataset, index: int, flipped: bool) -> dict:
    """A sample of item `index` whose flip coin came out `flipped` (flip_aug on)."""
    for seed in range(100):
        sample = dataset[(index, 0, seed)]
        if sample["flipped"] == flipped:
            return sample
    raise AssertionError("no seed gave that flip")


def test_the_mask_is_the_alpha_at_the_latents_size_and_follows_the_flip(tmp_path):
    items = _items(tmp_path, ("a.png", (64, 64), 32))
    dataset = DanluDataset(items, [(64, 64)], flip_aug=True, alpha_mask=True)
    upright, mirrored = _sample(dataset, 0, False)["alpha_mask"], _sample(dataset, 0, True)["alpha_mask"]
    left_half = torch.zeros(1, 8, 8)
    left_half[..., :4] = 1.0
    assert torch.equal(upright, left_half)
    assert torch.equal(mirrored, left_half.flip(-1))
    assert "alpha_mask" not in DanluDataset(items, [(64, 64)])[(0, 0, 0)]  # off: no mask at all


def test_the_mask_follows_a_random_crop(tmp_path):
    """A 128x64 picture in a 64x64 bucket: the crop's left edge decides which latent columns are opaque."""
    items = _items(tmp_path, ("wide.png", (128, 64), 48))
    dataset = DanluDataset(items, [(64, 64)], random_crop=True, alpha_mask=True)
    lefts = set()
    for seed in range(12):
        sample = dataset[(0, 0, seed)]
        left = sample["crop_top_left"][1]
        lefts.add(left)
        opaque = np.zeros(128, np.float32)
        opaque[:48] = 1.0
        expected = torch.from_numpy(opaque[left:left + 64].reshape(8, 8).mean(axis=1))  # area: 8 columns a cell
        assert torch.allclose(sample["alpha_mask"][0], expected.expand(8, 8), atol=1e-6), (left, sample["alpha_mask"])
    assert len(lefts) > 2  # the crops did move


def test_cached_latents_get_the_same_mask_as_pixels(tmp_path):
    items = _items(tmp_path, ("a.png", (64, 64), 16), ("b.png", (64, 64), None))
    buckets = [(64, 64), (64, 64)]
    cache = LatentCache("memory", "test-vae")
    fill_cache(cache, zip(items, buckets, strict=True), lambda px: torch.nn.functional.avg_pool2d(px, 8)[:, :1],
               flip_aug=True)
    cached = DanluDataset(items, buckets, latent_cache=cache, flip_aug=True, alpha_mask=True)
    pixels = DanluDataset(items, buckets, flip_aug=True, alpha_mask=True)
    for flipped in (False, True):
        assert torch.equal(_sample(cached, 0, flipped)["alpha_mask"], _sample(pixels, 0, flipped)["alpha_mask"])
        assert _sample(cached, 0, flipped)["alpha_mask"].sum() == 16  # 2 of 8 columns opaque
    assert torch.equal(cached[(1, 0, 0)]["alpha_mask"], torch.ones(1, 8, 8))  # no alpha channel: all of it trains


def test_the_loss_counts_only_the_masked_part():
    g = torch.Generator().manual_seed(0)
    pred, target = torch.randn(2, 4, 8, 8, generator=g), torch.randn(2, 4, 8, 8, generator=g)
    mask = torch.zeros(2, 1, 8, 8)
    mask[0, :, :, :4] = 1.0
    mask[1] = 0.5
    masked = per_sample_loss(pred, target, "l2", 0.1, mask=mask)
    by_hand = (((pred - target) ** 2) * mask).mean(dim=(1, 2, 3))
    assert torch.allclose(masked, by_hand)
    assert torch.allclose(per_sample_loss(pred, target, "l2", 0.1, mask=torch.ones(2, 1, 8, 8)),
                          per_sample_loss(pred, target, "l2", 0.1))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_sd15(tmp_path_factory.mktemp("model") / "tiny-sd15")


@pytest.fixture(scope="module")
def transparent_set(tmp_path_factory) -> Path:
    """Four pictures that are transparent all over."""
    root = tmp_path_factory.mktemp("transparent")
    _items(root, *[(f"{i}.png", (64, 64), 0) for i in range(4)])
    return root


def _lora(run: Path) -> dict[str, torch.Tensor]:
    with safe_open(str(run / "output" / "t.safetensors"), "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (safe_open is no dict)


@pytest.mark.parametrize("cache_latents", [False, True])
def test_a_wholly_transparent_dataset_trains_nothing(tiny_model, transparent_set, tmp_path, cache_latents):
    masked = tiny_config(tiny_model, transparent_set, dataset__alpha_mask=True, speed__cache_latents=cache_latents,
                         training__max_train_epochs=1)
    assert train(masked, tmp_path / "masked") == 0
    assert losses(tmp_path / "masked") and set(losses(tmp_path / "masked")) == {0.0}
    ups = [v for k, v in _lora(tmp_path / "masked").items() if k.endswith("lora_up.weight")]
    assert ups and all(torch.count_nonzero(v) == 0 for v in ups)  # zero at the start, never moved
    plain = tiny_config(tiny_model, transparent_set, speed__cache_latents=cache_latents, training__max_train_epochs=1)
    assert train(plain, tmp_path / "plain") == 0
    assert min(losses(tmp_path / "plain")) > 0  # the same pictures, composited on white, do train


def test_images_without_alpha_are_named_in_a_warning(tiny_model, tmp_path):
    """alpha_mask on a set of JPEG-like pictures would change nothing without a word: the run says which train
    whole."""
    from trainer.events import read_events

    root = tmp_path / "data"
    _items(root, ("cut.png", (64, 64), 32), ("photo.png", (64, 64), None))
    cfg = tiny_config(tiny_model, root, dataset__alpha_mask=True, training__max_train_steps=1)
    assert train(cfg, tmp_path / "run") == 0
    warned = [e["message"] for e in read_events(tmp_path / "run")[0] if e["type"] == "warning"]
    assert [m for m in warned if "alpha_mask" in m and "1 of 2" in m and "photo.png" in m], warned
    assert train(tiny_config(tiny_model, root, training__max_train_steps=1), tmp_path / "off") == 0
    assert not [e for e in read_events(tmp_path / "off")[0] if e["type"] == "warning" and "alpha" in e["message"]]


def test_sd_scripts_alpha_mask_imports_and_exports():
    cfg = import_kohya({"pretrained_model_name_or_path": "m.safetensors", "train_data_dir": "img",
                        "alpha_mask": True, "masked_loss": True})
    assert cfg.dataset.alpha_mask is True
    assert export_kohya(cfg)["alpha_mask"] is True
    assert import_kohya({"train_data_dir": "img"}).dataset.alpha_mask is False


def test_masked_loss_without_alpha_mask_names_the_way_danlu_reads_masks():
    with pytest.raises(ConfigError) as exc:
        import_kohya({"train_data_dir": "img", "masked_loss": True})
    text = str(exc.value)
    assert "masked_loss" in text and "conditioning_data_dir" in text and "alpha_mask" in text


def test_the_mask_sits_where_random_crop_put_the_picture():
    """Guard for the geometry the tests above rely on: the mask and the picture share one crop."""
    rng = random.Random(3)
    from trainer.data.images import fit_to_bucket, scale_and_crop

    img = Image.new("RGB", (128, 64))
    alpha = Image.fromarray(np.tile(np.arange(128, dtype=np.uint8), (64, 1)), "L")
    fitted = fit_to_bucket(img, (64, 64), random_crop=True, rng=rng)
    mask = scale_and_crop(alpha, (64, 64), fitted.crop_top_left)
    left = fitted.crop_top_left[1]
    assert np.asarray(mask)[0, 0] == left and mask.size == (64, 64)
