"""Image decoding (orientation, transparency, odd modes, corrupt files), fitting, tensors, augmentation."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from PIL import Image

from trainer.data.images import augment, fit_to_bucket, hue_shift, load_image
from trainer.data.problems import ImageLoadError
from trainer.data.tensors import to_tensor


def pixel(img, xy):
    return img.getpixel(xy)


def close(a, b, tol=12):
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def test_exif_rotated_jpeg_comes_out_upright(tmp_path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (20, 0, 40, 20))  # left half red, right half blue
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    img.save(tmp_path / "r.jpg", exif=exif, quality=95)
    out = load_image(tmp_path / "r.jpg")
    assert out.size == (20, 40) and out.mode == "RGB"
    assert close(pixel(out, (10, 5)), (255, 0, 0)) and close(pixel(out, (10, 35)), (0, 0, 255))


def test_rgba_transparent_pixels_become_white(tmp_path):
    img = Image.new("RGBA", (4, 1), (0, 0, 0, 0))
    img.putpixel((1, 0), (255, 0, 0, 255))
    img.putpixel((2, 0), (255, 0, 0, 128))
    img.save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert pixel(out, (0, 0)) == (255, 255, 255)
    assert pixel(out, (1, 0)) == (255, 0, 0)
    assert close(pixel(out, (2, 0)), (255, 127, 127), tol=1)


def test_palette_with_transparency_and_la_composite_on_white(tmp_path):
    pal = Image.new("P", (2, 1))
    pal.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    pal.putpixel((1, 0), 1)
    pal.save(tmp_path / "p.png", transparency=0)
    assert [pixel(load_image(tmp_path / "p.png"), (x, 0)) for x in (0, 1)] == [(255, 255, 255), (0, 255, 0)]
    la = Image.new("LA", (2, 1), (0, 0))
    la.putpixel((1, 0), (50, 255))
    la.save(tmp_path / "la.png")
    assert [pixel(load_image(tmp_path / "la.png"), (x, 0)) for x in (0, 1)] == [(255, 255, 255), (50, 50, 50)]


def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path):
    arr = np.array([[0, 25700, 65535]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    out = load_image(tmp_path / "g16.png")
    assert [pixel(out, (x, 0)) for x in range(3)] == [(0, 0, 0), (100, 100, 100), (255, 255, 255)]


def test_cmyk_and_greyscale_convert(tmp_path):
    cmyk = Image.new("CMYK", (8, 8), (0, 255, 255, 0))
    cmyk.save(tmp_path / "c.jpg", quality=95)
    assert Image.open(tmp_path / "c.jpg").mode == "CMYK"
    assert close(pixel(load_image(tmp_path / "c.jpg"), (4, 4)), (255, 0, 0))
    Image.new("L", (3, 3), 77).save(tmp_path / "l.bmp")
    assert pixel(load_image(tmp_path / "l.bmp"), (1, 1)) == (77, 77, 77)


def test_corrupt_image_raises_an_error_naming_file_and_reason(tmp_path):
    Image.new("RGB", (64, 64), (9, 9, 9)).save(tmp_path / "ok.png")
    data = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError) as err:
        load_image(tmp_path / "cut.png")
    assert err.value.path == str(tmp_path / "cut.png")
    assert err.value.reason and err.value.problem.file == str(tmp_path / "cut.png")
    assert "cannot read image" in err.value.problem.reason
    assert pixel(load_image(tmp_path / "ok.png"), (0, 0)) == (9, 9, 9)


def test_fit_to_bucket_centre_crop():
    img = Image.new("RGB", (1920, 1080), (10, 20, 30))
    fitted = fit_to_bucket(img, (640, 384), random_crop=False, rng=random.Random(0))
    assert fitted.image.size == (640, 384)
    assert fitted.crop_top_left == (0, 21)
    assert fitted.original_size == (1080, 1920)


def test_fit_to_bucket_random_crop_is_seeded_and_in_range():
    img = Image.new("RGB", (200, 100))  # covers (64, 64) at 128 x 64: left may be 0..64
    crops = {fit_to_bucket(img, (64, 64), random_crop=True, rng=random.Random(s)).crop_top_left
             for s in range(30)}
    assert all(top == 0 and 0 <= left <= 64 for top, left in crops) and len(crops) > 5
    again = fit_to_bucket(img, (64, 64), random_crop=True, rng=random.Random(3))
    assert again.image.size == (64, 64)
    assert again.crop_top_left == fit_to_bucket(img, (64, 64), random_crop=True, rng=random.Random(3)).crop_top_left


def test_to_tensor_range_and_layout():
    img = Image.new("RGB", (3, 2), (255, 255, 255))
    img.putpixel((0, 0), (0, 0, 0))
    t = to_tensor(img)
    assert t.shape == (3, 2, 3) and t.dtype == torch.float32
    assert t[:, 0, 0].tolist() == [-1.0, -1.0, -1.0] and t[:, 1, 2].tolist() == [1.0, 1.0, 1.0]


def test_flip_mirrors_images_about_half_the_time():
    img = Image.new("RGB", (2, 1), (0, 0, 0))
    img.putpixel((1, 0), (255, 255, 255))
    seen = set()
    for seed in range(20):
        out, flipped = augment(img, flip=True, color=False, rng=random.Random(seed))
        assert pixel(out, (0, 0)) == ((255, 255, 255) if flipped else (0, 0, 0))
        seen.add(flipped)
    assert seen == {True, False}
    assert augment(img, flip=False, color=False, rng=random.Random(0)) == (img, False)


def test_hue_shift_turns_the_colour_wheel_and_keeps_grey():
    red = Image.new("RGB", (1, 1), (255, 0, 0))
    assert close(pixel(hue_shift(red, 120), (0, 0)), (0, 255, 0), tol=4)
    grey = Image.new("RGB", (1, 1), (90, 90, 90))
    assert pixel(hue_shift(grey, 7), (0, 0)) == (90, 90, 90)
    out, _ = augment(red, flip=False, color=True, rng=random.Random(1))
    r, g, b = pixel(out, (0, 0))
    assert r == 255 and g + b <= 40 and (g, b) != (0, 0)  # a small turn, not a new colour
