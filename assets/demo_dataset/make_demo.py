"""Draw the bundled demo dataset: coloured shapes on plain backgrounds, each picture with a caption file.

Run `python assets/demo_dataset/make_demo.py` to rebuild 6_demo/ (the "6_" prefix means 6 repeats per epoch,
the sd-scripts folder convention). The pictures are drawn, not downloaded, so the repository carries only
this script's output and the images are free of any licence question.

It is meant to pass Danlu's own dataset doctor (`python -m trainer check-data assets/demo_dataset`) without a
finding: 20 pictures (the doctor's useful minimum), none smaller than a 512 px bucket, and layouts that differ
(one to three shapes of several sizes at seeded random places), so no two look alike to the perceptual hash.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent
OUT = ROOT / "6_demo"
COLOURS = {
    "red": (220, 40, 40), "blue": (40, 80, 220), "green": (40, 170, 70), "yellow": (240, 210, 40),
    "purple": (140, 60, 180), "orange": (245, 140, 30), "white": (250, 250, 250), "black": (20, 20, 20),
    "grey": (128, 128, 128), "pink": (245, 170, 200), "cyan": (60, 200, 210),
}
SHAPES = ("circle", "square", "triangle")
BACKGROUNDS = ("white", "black", "grey", "pink", "cyan", "yellow")
# Mostly square; a few wide and tall ones (each exactly its 512 px bucket) so buckets differ.
SIZES = [(512, 512)] * 16 + [(576, 448)] * 2 + [(448, 576)] * 2
SEED = 7


def draw_shape(d: ImageDraw.ImageDraw, shape: str, box: tuple[float, float, float, float], fill) -> None:
    if shape == "circle":
        d.ellipse(box, fill=fill)
    elif shape == "square":
        d.rectangle(box, fill=fill)
    else:
        d.polygon([((box[0] + box[2]) / 2, box[1]), (box[2], box[3]), (box[0], box[3])], fill=fill)


def picture(rng: random.Random, width: int, height: int) -> tuple[Image.Image, list[str]]:
    """A background and one to three shapes; returns the image and its caption tags."""
    background = rng.choice(BACKGROUNDS)
    img = Image.new("RGB", (width, height), COLOURS[background])
    d = ImageDraw.Draw(img)
    tags = []
    for _ in range(rng.randint(1, 3)):
        shape = rng.choice(SHAPES)
        colour = rng.choice([c for c in COLOURS if c not in (background, "white", "black", "grey")])
        size = rng.uniform(0.25, 0.6) * min(width, height)
        x, y = rng.uniform(0, width - size), rng.uniform(0, height - size)
        draw_shape(d, shape, (x, y, x + size, y + size), COLOURS[colour])
        tags.append(f"{colour} {shape}")
    return img, list(dict.fromkeys(tags)) + [f"{background} background"]


def main() -> None:
    for old in ROOT.iterdir():  # an older layout of the demo (another repeats prefix) must not linger
        if old.is_dir() and old.name.endswith("_demo"):
            shutil.rmtree(old)
    OUT.mkdir(parents=True)
    rng = random.Random(SEED)
    for i, (w, h) in enumerate(SIZES, start=1):
        img, tags = picture(rng, w, h)
        stem = OUT / f"{i:02d}_{tags[0].replace(' ', '_')}"
        img.save(stem.with_suffix(".png"), optimize=True)
        stem.with_suffix(".txt").write_text(", ".join(["demo", *tags]) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
