"""The grid picture keeps every label whole (issue 10.8): nothing cut at the image edge or painted over by
the cells, at the small cell sizes of the demo model."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from trainer.grid.render import BACKGROUND, font_size_for, label_font, render_block


def ink(img: Image.Image, cell_rgb=None) -> int:
    """Pixels that are neither background nor cell colour: the drawn text."""
    a = np.asarray(img.convert("RGB")).astype(int)
    mask = np.any(a != BACKGROUND, axis=-1)
    if cell_rgb is not None:
        mask &= np.any(a != cell_rgb, axis=-1)
    return int(mask.sum())


def alone(text: str, size: int) -> int:
    canvas = Image.new("RGB", (2000, 200), BACKGROUND)
    ImageDraw.Draw(canvas).text((50, 50), text, fill=(20, 20, 20), font=label_font(size))
    return ink(canvas)


@pytest.mark.parametrize("cell", [64, 128, 512])
def test_every_label_is_drawn_whole(cell):
    cols = ["w = 0", "w = 0.75", "w = 1.25"]
    rows = ["zk-000001", "zk"]
    red = (255, 0, 0)
    cells = [[Image.new("RGB", (cell, cell), red) for _ in cols] for _ in rows]
    block = render_block(cells, rows, cols, title="a red circle")
    expected = sum(alone(text, font_size_for(cell)) for text in [*cols, *rows, "a red circle"])
    got = ink(block, red)
    assert got >= expected * 0.98, f"{expected - got} pixels of label text are missing (clipped or covered)"
