"""dataset.resize_interpolation: the filter that scales each picture to its bucket, as sd-scripts'.

sd-scripts (library/utils.py resize_image) scales with OpenCV for area, bilinear, bicubic and nearest (its exact
nearest), with PIL for lanczos and box; unset, it uses area where the picture shrinks and lanczos where it grows.
The references below are those library calls, so a test fails when Danlu's pixels differ from sd-scripts'."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from trainer.data.images import fit_to_bucket, scale_and_crop
from trainer.data.latent_cache import LatentCache, fill_cache
from trainer.data.loader import DanluDataset
from trainer.data.scan import scan_dataset
from trainer.data.tensors import to_tensor

CV2 = {"area": cv2.INTER_AREA, "bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC,
       "nearest": cv2.INTER_NEAREST_EXACT}
PIL = {"lanczos": Image.Resampling.LANCZOS, "box": Image.Resampling.BOX}
SHRINK, GROW = (90, 60), (30, 20)  # picture sizes that cover the bucket below after scaling down / up
BUCKET = (48, 32)


def _noise(size, mode="RGB", seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)


def sd_scripts_resize(img: Image.Image, size, method: str) -> Image.Image:
    """What sd-scripts' resize_image gives for `method` (None: its unset rule)."""
    if method is None:
        method = "area" if size[0] <= img.width and size[1] <= img.height else "lanczos"
    if method in PIL:
        return img.resize(size, PIL[method])
    return Image.fromarray(cv2.resize(np.asarray(img), size, interpolation=CV2[method]))


def _pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.int16)


@pytest.mark.parametrize("method", [*CV2, *PIL])
@pytest.mark.parametrize("size", [SHRINK, GROW])
def test_each_filter_gives_sd_scripts_pixels(method, size):
    img = _noise(size)
    expected = sd_scripts_resize(img, BUCKET, method)
    assert np.array_equal(_pixels(scale_and_crop(img, BUCKET, (0, 0), interpolation=method)), _pixels(expected))
    # the filter matters: every other one gives other pixels
    for other in (set(CV2) | set(PIL)) - {method}:
        if not (size == GROW and {method, other} == {"nearest", "box"}):  # a box enlarges as nearest does
            assert not np.array_equal(_pixels(sd_scripts_resize(img, BUCKET, other)), _pixels(expected)), other


@pytest.mark.parametrize("size, used", [(SHRINK, "area"), (GROW, "lanczos")])
def test_unset_shrinks_with_area_and_enlarges_with_lanczos(size, used):
    img = _noise(size)
    fitted = fit_to_bucket(img, BUCKET, random_crop=False, rng=None).image
    assert np.array_equal(_pixels(fitted), _pixels(sd_scripts_resize(img, BUCKET, used)))
    assert np.array_equal(_pixels(fitted), _pixels(sd_scripts_resize(img, BUCKET, None)))


def test_the_alpha_mask_is_scaled_with_the_same_filter():
    alpha = _noise(SHRINK, "L")
    got = scale_and_crop(alpha, BUCKET, (0, 0), interpolation="bicubic")
    assert got.mode == "L"
    assert np.array_equal(_pixels(got), _pixels(sd_scripts_resize(alpha, BUCKET, "bicubic")))


def test_an_unknown_filter_is_refused():
    with pytest.raises(ValueError, match="resize_interpolation"):
        scale_and_crop(_noise(SHRINK), BUCKET, (0, 0), interpolation="hamming")


def _dataset(root: Path, size=SHRINK, alpha=False) -> list:
    sub = root / "1_zk"
    sub.mkdir(parents=True)
    img = _noise(size)
    if alpha:
        img = Image.merge("RGBA", (*img.split(), _noise(size, "L", seed=1)))
    img.save(sub / "a.png")
    (sub / "a.txt").write_text("zk", encoding="utf-8")
    return scan_dataset(str(root)).items


@pytest.mark.parametrize("method", ["nearest", "lanczos"])
def test_the_loader_trains_on_pixels_of_the_chosen_filter(tmp_path, method):
    items = _dataset(tmp_path, alpha=True)
    sample = DanluDataset(items, [BUCKET], alpha_mask=True, interpolation=method)[(0, 0, 0)]
    picture = Image.open(items[0].path)
    rgb = picture.convert("RGBA")
    white = Image.alpha_composite(Image.new("RGBA", rgb.size, (255, 255, 255, 255)), rgb).convert("RGB")
    assert torch.equal(sample["pixel_values"], to_tensor(sd_scripts_resize(white, BUCKET, method)))
    alpha = sd_scripts_resize(picture.getchannel("A"), BUCKET, method)
    expected_mask = torch.nn.functional.avg_pool2d(torch.from_numpy(np.asarray(alpha, np.float32) / 255)[None], 8)
    assert torch.allclose(sample["alpha_mask"], expected_mask)


def _encode(seen: list):
    def encode(pixels: torch.Tensor) -> torch.Tensor:
        seen.append(pixels.clone())
        return pixels[:, :, ::8, ::8].clone()
    return encode


def test_cached_latents_are_encoded_from_the_chosen_filter_and_not_reused_with_another(tmp_path):
    items = _dataset(tmp_path)
    seen: list = []
    area = LatentCache("disk", "vae-1", interpolation="area")
    assert fill_cache(area, [(items[0], BUCKET)], _encode(seen)).encoded == 1
    expected = to_tensor(sd_scripts_resize(Image.open(items[0].path), BUCKET, "area"))
    assert torch.equal(seen[0][0], expected)
    # the same filter reuses the file; another makes other pixels, so its latents are encoded afresh
    assert fill_cache(LatentCache("disk", "vae-1", interpolation="area"), [(items[0], BUCKET)], _encode(seen)).reused == 1
    bicubic = LatentCache("disk", "vae-1", interpolation="bicubic")
    assert not bicubic.has(items[0], BUCKET)
    assert fill_cache(bicubic, [(items[0], BUCKET)], _encode(seen)).encoded == 1
    assert torch.equal(seen[-1][0], to_tensor(sd_scripts_resize(Image.open(items[0].path), BUCKET, "bicubic")))
    assert not LatentCache("disk", "vae-1", interpolation="area").has(items[0], BUCKET)  # rewritten for bicubic


def test_a_cache_file_written_before_the_setting_existed_is_not_reused(tmp_path):
    """Danlu used to scale with lanczos down / bicubic up: such a file has no filter recorded."""
    import json

    from safetensors.torch import save_file

    from trainer.data.latent_cache import FORMAT, cache_path

    items = _dataset(tmp_path)
    cache = LatentCache("disk", "vae-1", interpolation="auto")
    fill_cache(cache, [(items[0], BUCKET)], _encode([]))
    file = cache_path(items[0].path)
    with __import__("safetensors").safe_open(str(file), framework="pt") as f:
        meta = json.loads(f.metadata()["danlu"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    assert meta["format"] == FORMAT
    del meta["resize_interpolation"]
    save_file(tensors, str(file), metadata={"danlu": json.dumps(meta)})
    assert not LatentCache("disk", "vae-1", interpolation="auto").has(items[0], BUCKET)


class _Config(dict):
    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class _IdentityVae(torch.nn.Module):
    """A 'VAE' whose latents are the pixels it is given: the cache then shows which pixels were encoded."""

    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))
        self.config = _Config(scaling_factor=1.0, shift_factor=0.0)

    def encode(self, pixels):
        from types import SimpleNamespace

        return SimpleNamespace(latent_dist=SimpleNamespace(mode=lambda: pixels))


class _Reporter:
    def status(self, *args, **kwargs):
        pass

    def warning(self, *args, **kwargs):
        pass


def _expected_fit(path, bucket, method) -> torch.Tensor:
    from trainer.data.buckets import centre_crop, cover_size

    img = Image.open(path).convert("RGB")
    resized = cover_size(img.size, bucket)
    top, left = centre_crop(resized, bucket)
    scaled = sd_scripts_resize(img, resized, method)
    return to_tensor(scaled.crop((left, top, left + bucket[0], top + bucket[1])))


@pytest.mark.parametrize("cache", [False, True])
def test_a_run_scales_with_the_configured_filter(tmp_path, cache):
    from types import SimpleNamespace

    from tests.engine_helpers import tiny_config
    from trainer.engine.data import build_data

    _dataset(tmp_path / "data", size=(150, 100))
    _dataset(tmp_path / "reg", size=(40, 90))  # class images (Dreambooth's prior) go the same way
    cfg = tiny_config(tmp_path / "model", tmp_path / "data", dataset__resize_interpolation="bilinear",
                      dataset__reg_data_dir=str(tmp_path / "reg"), speed__cache_latents=cache,
                      speed__cache_latents_to_disk=cache)
    data = build_data(cfg, SimpleNamespace(vae=_IdentityVae()), _Reporter())
    assert sorted(it.is_reg for it in data.dataset.items) == [False, True]
    for index, item in enumerate(data.dataset.items):
        sample = data.dataset[(index, 0, 0)]
        got = sample["latents"] if cache else sample["pixel_values"]
        assert torch.equal(got, _expected_fit(item.path, data.dataset.bucket_of[index], "bilinear"))


def test_the_filters_are_the_settings_choices():
    from typing import get_args

    from trainer.config.groups_core import DatasetGroup
    from trainer.data.images import RESIZE_FILTERS

    assert get_args(DatasetGroup.model_fields["resize_interpolation"].annotation) == RESIZE_FILTERS


@pytest.mark.parametrize("written, read", [("linear", "bilinear"), ("cubic", "bicubic"), ("area", "area"),
                                           ("LANCZOS", "lanczos"), ("box", "box")])
def test_sd_scripts_names_import_and_export(written, read):
    from trainer.config.kohya import export_kohya, import_kohya

    cfg = import_kohya({"train_data_dir": "img", "resize_interpolation": written})
    assert cfg.dataset.resize_interpolation == read
    assert export_kohya(cfg)["resize_interpolation"] == read


def test_unset_in_sd_scripts_is_auto_and_auto_is_not_written():
    from trainer.config import config_from_dict
    from trainer.config.kohya import export_kohya, import_kohya

    assert import_kohya({"train_data_dir": "img"}).dataset.resize_interpolation == "auto"
    assert config_from_dict({}).dataset.resize_interpolation == "auto"
    assert "resize_interpolation" not in export_kohya(config_from_dict({}))  # sd-scripts has no "auto"


def test_an_unknown_filter_in_a_config_names_the_key():
    from trainer.config import ConfigError
    from trainer.config.kohya import import_kohya

    with pytest.raises(ConfigError, match="resize_interpolation"):
        import_kohya({"train_data_dir": "img", "resize_interpolation": "hamming"})


DATASET = """\
[general]
{general}

[[datasets]]
resolution = 512
{dataset}

  [[datasets.subsets]]
  image_dir = '{root}/img/10_a'
  num_repeats = 10
  {first}

  [[datasets.subsets]]
  image_dir = '{root}/img/3_b'
  num_repeats = 3
  {second}
"""


def _dataset_file(tmp_path, general="", dataset="", first="", second="") -> str:
    for sub in ("img/10_a", "img/3_b"):
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
    (tmp_path / "dataset.toml").write_text(DATASET.format(root=tmp_path, general=general, dataset=dataset,
                                                          first=first, second=second), encoding="utf-8")
    (tmp_path / "train.toml").write_text('pretrained_model_name_or_path = "m.safetensors"\n'
                                         'dataset_config = "dataset.toml"\n', encoding="utf-8")
    return str(tmp_path / "train.toml")


@pytest.mark.parametrize("where", [
    dict(general='resize_interpolation = "cubic"'),
    dict(dataset='resize_interpolation = "cubic"'),
    dict(first='resize_interpolation = "cubic"', second='resize_interpolation = "cubic"'),
    # a subset without its own value takes the dataset's, as in sd-scripts
    dict(dataset='resize_interpolation = "cubic"', first='resize_interpolation = "cubic"'),
    dict(general='resize_interpolation = "nearest"', dataset='resize_interpolation = "cubic"'),
])
def test_a_dataset_file_sets_it_at_any_level(tmp_path, where):
    from trainer.config import load_config

    assert load_config(_dataset_file(tmp_path, **where)).dataset.resize_interpolation == "bicubic"


def test_subsets_that_scale_differently_are_an_error_naming_the_key(tmp_path):
    from trainer.config import ConfigError, load_config

    path = _dataset_file(tmp_path, dataset='resize_interpolation = "cubic"', first='resize_interpolation = "area"')
    with pytest.raises(ConfigError, match="subsets differ in resize_interpolation"):
        load_config(path)
