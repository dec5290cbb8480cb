"""Draw the bundled demo dataset: small coloured shapes on plain backgrounds, each with a caption file.

Run `python assets/demo_dataset/make_demo.py` to rebuild 10_demo/ (the "10_" prefix means 10 repeats per
epoch, the sd-scripts folder convention). The pictures are drawn, not downloaded, so the repository carries
only this script's output and the images are free of any licence question.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parent / "10_demo"
COLOURS = {
    "red": (220, 40, 40), "blue": (40, 80, 220), "green": (40, 170, 70), "yellow": (240, 210, 40),
    "purple": (140, 60, 180), "orange": (245, 140, 30), "white": (250, 250, 250), "black": (20, 20, 20),
    "grey": (128, 128, 128), "pink": (245, 170, 200), "cyan": (60, 200, 210),
}
# (shape, colour, background, width, height): mostly square, a few wide and tall ones so buckets differ.
IMAGES = [
    ("circle", "red", "white", 96, 96), ("square", "blue", "white", 96, 96),
    ("triangle", "green", "yellow", 96, 96), ("circle", "purple", "grey", 96, 96),
    ("square", "orange", "black", 96, 96), ("triangle", "red", "cyan", 96, 96),
    ("circle", "blue", "pink", 96, 96), ("square", "green", "white", 96, 96),
    ("circle", "yellow", "blue", 128, 96), ("square", "red", "grey", 128, 96),
    ("triangle", "blue", "white", 96, 128), ("circle", "green", "black", 96, 128),
]


def draw(shape: str, colour: str, background: str, width: int, height: int) -> Image.Image:
    img = Image.new("RGB", (width, height), COLOURS[background])
    d = ImageDraw.Draw(img)
    size = min(width, height) * 0.6
    cx, cy = width / 2, height / 2
    box = (cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)
    fill = COLOURS[colour]
    if shape == "circle":
        d.ellipse(box, fill=fill)
    elif shape == "square":
        d.rectangle(box, fill=fill)
    else:
        d.polygon([(cx, box[1]), (box[2], box[3]), (box[0], box[3])], fill=fill)
    return img


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for i, (shape, colour, background, w, h) in enumerate(IMAGES, start=1):
        stem = OUT / f"{i:02d}_{colour}_{shape}"
        draw(shape, colour, background, w, h).save(stem.with_suffix(".png"), optimize=True)
        stem.with_suffix(".txt").write_text(f"demo, {colour} {shape}, {background} background\n", encoding="utf-8")


if __name__ == "__main__":
    main()
