"""augment.face_crop_aug_range: sd-scripts' crop around a face whose place the file name gives.

sd-scripts (library/train_util.py, load_image_with_face_info and crop_target) reads `<name>_<cx>_<cy>_<w>_<h>` (the
face's centre and size in pixels), scales the picture so that the target's short side is between lo and hi face
sizes (never enlarging it, never below covering the target), and crops the target around the face: shifted a
little at random when lo != hi and the face is large, or anywhere the face stays in when random_crop is on. It
does so only without buckets and without cached latents. The expectations below are worked out by hand from that
description."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trainer.data.face_crop import Face, face_in_name, fit_around_face
from trainer.data.images import resize
from trainer.data.loader import DanluDataset
from trainer.data.scan import scan_dataset
from trainer.data.tensors import to_tensor

TARGET = (100, 100)


def _noise(size, mode="RGB", seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)


def _same(a: Image.Image, b: Image.Image) -> bool:
    return a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("name, face", [
    ("photo_200_150_50_40.png", Face(200, 150, 50, 40)),
    ("a_b_200_150_50_40.jpg", Face(200, 150, 50, 40)),
    ("photo.png", None), ("a_1_2_3.png", None),  # fewer than five parts
    ("my_cat_photo_2023_01.png", None),  # not four numbers: sd-scripts stops with a ValueError
    ("x_0_150_50_40.png", None),  # sd-scripts reads a centre at x 0 as "no face"
    ("x_10_10_0_0.png", None),  # a face of no size would divide by zero there
])
def test_the_face_is_read_from_the_file_name(name, face):
    assert face_in_name(f"/data/10_x/{name}") == face


def test_a_face_one_half_of_the_target_is_cropped_around_unscaled():
    img = _noise((400, 300))
    fitted = fit_around_face(img, TARGET, Face(200, 150, 50, 50), (2.0, 2.0), random_crop=False, rng=random.Random(0))
    # target 100 / (face 50 x 2.0) = scale 1: the picture is not scaled; the crop is centred on the face
    assert _same(fitted.image, img.crop((150, 100, 250, 200)))
    assert fitted.crop_top_left == (100, 150) and fitted.resized == (400, 300)
    assert fitted.original_size == (300, 400)


@pytest.mark.parametrize("interpolation", ["area", "bicubic"])
def test_a_face_one_quarter_of_the_target_halves_the_picture_with_the_run_filter(interpolation):
    img = _noise((400, 300))
    fitted = fit_around_face(img, TARGET, Face(200, 150, 50, 50), (4.0, 4.0), random_crop=False,
                             rng=random.Random(0), interpolation=interpolation)
    # scale 100 / (50 x 4) = 0.5: 200x150, the face at (100, 75), the crop at left 50, top 25
    assert fitted.resized == (200, 150) and fitted.crop_top_left == (25, 50)
    assert _same(fitted.image, resize(img, (200, 150), interpolation).crop((50, 25, 150, 125)))


def test_the_picture_is_never_enlarged_for_a_small_face_nor_shrunk_below_the_target():
    img = _noise((400, 300))
    # the face would need scale 2 to fill a quarter: sd-scripts keeps scale 1
    assert fit_around_face(img, TARGET, Face(200, 150, 10, 10), (4.0, 4.0), random_crop=False,
                           rng=random.Random(0)).resized == (400, 300)
    # a face as large as the picture would need scale 1/6: the picture still covers the target (scale 1/3)
    assert fit_around_face(img, TARGET, Face(200, 150, 300, 300), (2.0, 2.0), random_crop=False,
                           rng=random.Random(0)).resized == (133, 100)


def test_a_range_draws_the_scale_and_shifts_a_large_face_a_little():
    img = _noise((800, 600))
    face = Face(400, 300, 100, 100)
    seen = set()
    for seed in range(60):
        fitted = fit_around_face(img, (200, 200), face, (2.0, 4.0), random_crop=False, rng=random.Random(seed))
        scale = fitted.resized[0] / 800
        assert 0.5 - 1e-3 <= scale <= 1.0 + 1e-3  # 200 / (100 x 4) .. 200 / (100 x 2)
        cx, cy = int(400 * scale + 0.5), int(300 * scale + 0.5)
        top, left = fitted.crop_top_left
        # a face of 100 px (> 1/10 of the target and >= 40) moves up to 100 // 20 = 5 px from the centre (+1: the
        # centre here is rounded from the scale read back)
        assert abs(left - (cx - 100)) <= 6 and abs(top - (cy - 100)) <= 6
        seen.add(fitted.resized)
    assert len(seen) > 20


def test_the_crop_stays_inside_the_picture():
    img = _noise((400, 300))
    fitted = fit_around_face(img, TARGET, Face(10, 290, 50, 50), (2.0, 2.0), random_crop=False, rng=random.Random(0))
    assert fitted.crop_top_left == (200, 0)
    assert _same(fitted.image, img.crop((0, 200, 100, 300)))


def test_random_crop_moves_the_crop_anywhere_around_the_face():
    img = _noise((400, 300))
    places = {fit_around_face(img, TARGET, Face(200, 150, 50, 50), (2.0, 2.0), random_crop=True,
                              rng=random.Random(seed)).crop_top_left for seed in range(80)}
    assert len(places) > 40
    assert all(0 <= top <= 200 and 0 <= left <= 300 for top, left in places)


def test_a_picture_of_the_target_size_is_left_as_it_is():
    img = _noise(TARGET)
    fitted = fit_around_face(img, TARGET, Face(20, 20, 30, 30), (4.0, 4.0), random_crop=False, rng=random.Random(0))
    assert _same(fitted.image, img) and fitted.crop_top_left == (0, 0)


def test_a_picture_smaller_than_the_target_is_enlarged_to_cover_it():
    """sd-scripts stops there (an assertion); Danlu enlarges it, as it does every picture without a face."""
    img = _noise((80, 60))
    fitted = fit_around_face(img, TARGET, Face(40, 30, 20, 20), (2.0, 4.0), random_crop=False, rng=random.Random(0))
    assert fitted.image.size == TARGET and fitted.resized == (133, 100)


def _dataset(root: Path, names: list[str], size=(400, 300)) -> list:
    sub = root / "1_zk"
    sub.mkdir(parents=True)
    for i, name in enumerate(names):
        img = Image.merge("RGBA", (*_noise(size, seed=i).split(), _noise(size, "L", seed=10 + i)))
        img.save(sub / name)
        (sub / name).with_suffix(".txt").write_text("zk", encoding="utf-8")
    return scan_dataset(str(root)).items


def _white(path) -> Image.Image:
    rgba = Image.open(path).convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")


def test_the_loader_crops_pictures_named_with_a_face_and_their_masks_alike(tmp_path):
    items = _dataset(tmp_path, ["a_200_150_50_50.png", "b.png"])
    dataset = DanluDataset(items, [TARGET, TARGET], alpha_mask=True, face_crop_aug_range=(4.0, 4.0),
                           interpolation="bicubic")
    face = dataset[(0, 0, 0)]
    assert torch.equal(face["pixel_values"], to_tensor(resize(_white(items[0].path), (200, 150), "bicubic")
                                                       .crop((50, 25, 150, 125))))
    alpha = resize(Image.open(items[0].path).getchannel("A"), (200, 150), "bicubic").crop((50, 25, 150, 125))
    mask = torch.nn.functional.avg_pool2d(torch.from_numpy(np.asarray(alpha, np.float32) / 255)[None], 8)
    assert torch.allclose(face["alpha_mask"], mask)
    assert face["crop_top_left"] == (25, 50)
    # a picture without a face in its name is fitted as always: scaled to cover, centre-cropped
    plain = dataset[(1, 0, 0)]
    expected = resize(_white(items[1].path), (133, 100), "bicubic").crop((16, 0, 116, 100))
    assert torch.equal(plain["pixel_values"], to_tensor(expected))


def test_a_flipped_face_crop_reports_where_the_crop_sits_in_the_mirrored_picture(tmp_path):
    items = _dataset(tmp_path, ["a_200_150_50_50.png"])
    dataset = DanluDataset(items, [TARGET], flip_aug=True, face_crop_aug_range=(4.0, 4.0))
    flipped = next(s for s in (dataset[(0, 0, seed)] for seed in range(50)) if s["flipped"])
    assert flipped["crop_top_left"] == (25, 200 - 100 - 50)


class _Reporter:
    def __init__(self):
        self.warnings = []

    def status(self, *args, **kwargs):
        pass

    def warning(self, *args, **kwargs):
        self.warnings.append(args)


@pytest.mark.parametrize("enable_bucket, cropped", [(False, True), (True, False)])
def test_a_run_crops_around_faces_only_without_buckets(tmp_path, enable_bucket, cropped):
    from types import SimpleNamespace

    from tests.engine_helpers import tiny_config
    from trainer.engine.data import build_data

    items = _dataset(tmp_path / "data", ["a_200_150_50_50.png"])
    cfg = tiny_config(tmp_path / "model", tmp_path / "data", dataset__resolution="128,128",
                      dataset__enable_bucket=enable_bucket, augment__face_crop_aug_range="4.0,4.0",
                      speed__cache_latents=False, speed__cache_latents_to_disk=False)
    data = build_data(cfg, SimpleNamespace(), _Reporter())
    got = data.dataset[(0, 0, 0)]["pixel_values"]
    bucket = data.dataset.bucket_of[0]
    if cropped:  # 128 / (50 x 4) = 0.64: 256x192, the face at (128, 96)
        expected = resize(_white(items[0].path), (256, 192), "auto").crop((64, 32, 192, 160))
    else:  # sd-scripts ignores the face with buckets: scaled to cover its bucket, centre-cropped
        from trainer.data.images import fit_to_bucket

        expected = fit_to_bucket(_white(items[0].path), bucket, random_crop=False, rng=None).image
    assert torch.equal(got, to_tensor(expected))


NO_CACHE = {"cache_latents": False, "cache_latents_to_disk": False}


def _check(**groups):
    from trainer.config import check, config_from_dict

    return check(config_from_dict({"dataset": {"train_data_dir": "img", **groups.pop("dataset", {})}, **groups}))


@pytest.mark.parametrize("text", ["abc", "4,2", "0,2", "2", "1,2,3", "-1,2"])
def test_a_range_that_is_not_two_positive_numbers_lo_to_hi_is_an_error(text):
    findings = _check(augment={"face_crop_aug_range": text}, dataset={"enable_bucket": False})
    assert [f for f in findings if f.field == "augment.face_crop_aug_range" and f.level == "error"], findings


def test_a_good_range_without_buckets_or_cache_is_fine():
    findings = _check(augment={"face_crop_aug_range": "2, 4"}, dataset={"enable_bucket": False}, speed=NO_CACHE)
    assert not [f for f in findings if f.field == "augment.face_crop_aug_range"], findings


@pytest.mark.parametrize("setting, named", [
    ({"dataset": {"enable_bucket": True}, "speed": NO_CACHE}, "dataset.enable_bucket"),
    ({"dataset": {"enable_bucket": False}, "speed": {**NO_CACHE, "cache_latents": True}}, "speed.cache_latents"),
    ({"dataset": {"enable_bucket": False}, "speed": {**NO_CACHE, "cache_latents_to_disk": True}}, "speed.cache_latents"),
])
def test_buckets_or_cached_latents_leave_faces_uncropped_with_a_warning(setting, named):
    findings = _check(augment={"face_crop_aug_range": "2,4"}, **setting)
    found = [f for f in findings if f.field == "augment.face_crop_aug_range"]
    assert len(found) == 1 and found[0].level == "warning" and named in found[0].en, findings


def test_sd_scripts_ranges_import_and_export(tmp_path):
    from trainer.config import load_config
    from trainer.config.kohya import export_kohya, import_kohya

    cfg = import_kohya({"train_data_dir": "img", "face_crop_aug_range": "2.0,4.0"})
    assert cfg.augment.face_crop_aug_range == "2.0,4.0"
    assert export_kohya(cfg)["face_crop_aug_range"] == "2.0,4.0"
    assert import_kohya({"train_data_dir": "img"}).augment.face_crop_aug_range == ""
    assert "face_crop_aug_range" not in export_kohya(import_kohya({"train_data_dir": "img"}))
    # a dataset file gives it as a list
    (tmp_path / "img/10_a").mkdir(parents=True)
    (tmp_path / "dataset.toml").write_text(f"[[datasets]]\n[[datasets.subsets]]\nimage_dir = '{tmp_path}/img/10_a'\n"
                                           "num_repeats = 10\nface_crop_aug_range = [2.0, 3.5]\n", encoding="utf-8")
    (tmp_path / "train.toml").write_text('dataset_config = "dataset.toml"\n', encoding="utf-8")
    assert load_config(str(tmp_path / "train.toml")).augment.face_crop_aug_range == "2.0,3.5"


def test_a_run_whose_names_give_no_face_says_so(tmp_path):
    from types import SimpleNamespace

    from tests.engine_helpers import tiny_config
    from trainer.engine.data import build_data

    _dataset(tmp_path / "data", ["a.png"])
    cfg = tiny_config(tmp_path / "model", tmp_path / "data", dataset__resolution="128,128",
                      dataset__enable_bucket=False, augment__face_crop_aug_range="2,4",
                      speed__cache_latents=False, speed__cache_latents_to_disk=False)
    reporter = _Reporter()
    build_data(cfg, SimpleNamespace(), reporter)
    assert [w for w in reporter.warnings if "face_crop_aug_range" in w[0]]


def test_the_lora_header_writes_the_range_as_sd_scripts_does():
    """sd-scripts parses "lo,hi" into a tuple before it writes ss_face_crop_aug_range: "(2.0, 4.0)"."""
    from tests.test_networks_save import _run_facts
    from trainer.config import config_from_dict
    from trainer.networks.metadata import training_header

    def header(**augment):
        cfg = config_from_dict({"augment": augment, "dataset": {"resize_interpolation": "lanczos"}})
        return training_header(cfg, _run_facts(), steps=1, epoch=1)

    assert header(face_crop_aug_range="2,4")["ss_face_crop_aug_range"] == "(2.0, 4.0)"
    assert header()["ss_face_crop_aug_range"] == "None"
    assert header()["ss_resize_interpolation"] == "lanczos"


@pytest.mark.parametrize("fields, face, filter_", [
    ({"face_crop_aug_range": "2.0,4.0", "resize_interpolation": "cubic"}, "2.0,4.0", "bicubic"),
    ({"face_crop_aug_range": "", "resize_interpolation": ""}, "", "auto"),  # the GUI's empty fields: unset
])
def test_a_kohya_ss_gui_save_brings_both_image_options(tmp_path, fields, face, filter_):
    from tests.test_config_kohya_ss_json import LOCON, load

    cfg, _ = load(tmp_path, {**LOCON, **fields})
    assert cfg.augment.face_crop_aug_range == face and cfg.dataset.resize_interpolation == filter_
