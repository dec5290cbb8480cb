"""Preprocessing equals a plain numpy reference for every kind of image users have."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from trainer.tagger.preprocess import list_images, load_preprocessed, preprocess


def reference(img: Image.Image, size: int) -> np.ndarray:
    """Alpha over white, centred white square, bicubic resize, float 0..255, BGR — done by hand."""
    rgba = np.asarray(img.convert("RGBA"), dtype=np.float64)
    alpha = rgba[..., 3:] / 255.0
    flat = np.round(rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    h, w = flat.shape[:2]
    side = max(h, w)
    canvas = np.full((side, side, 3), 255, dtype=np.uint8)
    top, left = (side - h) // 2, (side - w) // 2
    canvas[top : top + h, left : left + w] = flat
    if side != size:
        canvas = np.asarray(Image.fromarray(canvas).resize((size, size), Image.Resampling.BICUBIC))
    return canvas.astype(np.float32)[:, :, ::-1]


def _noise(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def _palette_with_transparency():
    img = Image.fromarray(_noise((21, 30), 1) % 16, "L").convert("P")
    img.putpalette([v for i in range(16) for v in (i * 16, 255 - i * 16, (i * 40) % 256)])
    img.info["transparency"] = 3  # palette index 3 is see-through
    return img


CASES = {
    "rgb_square": lambda: Image.fromarray(_noise((40, 40, 3)), "RGB"),
    "rgb_wide": lambda: Image.fromarray(_noise((23, 57, 3), 2), "RGB"),
    "rgb_tall_small": lambda: Image.fromarray(_noise((9, 4, 3), 3), "RGB"),  # upscaled
    "rgba": lambda: Image.fromarray(_noise((33, 48, 4), 4), "RGBA"),
    "palette_transparent": _palette_with_transparency,
    "palette_opaque": lambda: Image.fromarray(_noise((30, 30, 3), 5), "RGB").quantize(32),
    "grayscale": lambda: Image.fromarray(_noise((50, 31), 6), "L"),
    "grayscale_alpha": lambda: Image.fromarray(_noise((20, 20, 2), 7), "LA"),
    "exact_size": lambda: Image.fromarray(_noise((32, 32, 3), 8), "RGB"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_preprocess_matches_reference(name):
    img = CASES[name]()
    out = preprocess(img, 32)
    assert out.shape == (32, 32, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out, reference(img, 32))


def test_transparent_pixels_become_white_and_channels_are_bgr():
    img = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    img.putpixel((0, 0), (255, 0, 0, 255))  # opaque red
    out = preprocess(img, 4)
    assert out[0, 0].tolist() == [0.0, 0.0, 255.0]  # B, G, R
    assert out[3, 3].tolist() == [255.0, 255.0, 255.0]


def test_load_preprocessed_reads_file_and_rejects_garbage(tmp_path):
    img = Image.fromarray(_noise((30, 20, 3), 9), "RGB")
    img.save(tmp_path / "a.png")
    np.testing.assert_array_equal(load_preprocessed(tmp_path / "a.png", 16), reference(img, 16))
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(OSError):
        load_preprocessed(tmp_path / "bad.jpg", 16)


def test_list_images_flat_recursive_and_excluded(tmp_path):
    for rel in ["a.png", "b.JPG", "notes.txt", "sub/c.webp", ".hidden/d.png", "backup/e.png"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    names = lambda paths: [p.relative_to(tmp_path).as_posix() for p in paths]  # noqa: E731
    assert names(list_images(tmp_path)) == ["a.png", "b.JPG"]
    assert names(list_images(tmp_path, recursive=True, exclude=tmp_path / "backup")) == ["a.png", "b.JPG", "sub/c.webp"]
    with pytest.raises(FileNotFoundError, match="missing"):
        list_images(tmp_path / "missing")
