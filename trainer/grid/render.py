"""Drawing a labelled image grid with PIL: rows = LoRA files, columns = weights, one block per prompt."""

from __future__ import annotations

import textwrap
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
PAD = 6
# Fonts with CJK glyphs, tried in order, so Chinese file names and prompts do not render as boxes.
CJK_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/System/Library/Fonts/PingFang.ttc",
    "C:/Windows/Fonts/msyh.ttc",
)


@lru_cache(maxsize=8)
def label_font(size: int) -> ImageFont.ImageFont:
    for path in CJK_FONTS:
        if Path(path).is_file():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size=size)


def font_size_for(cell_width: int) -> int:
    """Readable at 64 px cells and not shouting at 1024 px ones."""
    return max(11, min(28, cell_width // 6))


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=font)
    return right - left, bottom - top


def _put(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, font) -> None:
    """Draw `text` with its ink's top-left corner at `xy`. PIL places the font's ascender line there, so the
    ink starts lower than the measured box; unshifted, the cells pasted below covered the labels' feet."""
    left, top, _, _ = draw.multiline_textbbox((0, 0), text, font=font)
    draw.multiline_text((xy[0] - left, xy[1] - top), text, fill=INK, font=font)


def _wrap(text: str, width_chars: int) -> str:
    return "\n".join(textwrap.wrap(text, width_chars, break_long_words=True)) or text


def render_block(cells: list[list[Image.Image]], row_labels: list[str], col_labels: list[str],
                 title: str = "") -> Image.Image:
    """One labelled grid. cells[row][col] all share one size."""
    cw, ch = cells[0][0].size
    font = label_font(font_size_for(cw))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    rows = [_wrap(label, 22) for label in row_labels]
    label_w = max(_text_size(probe, r, font)[0] for r in rows) + 2 * PAD
    col_h = max(_text_size(probe, c, font)[1] for c in col_labels) + 2 * PAD
    title_text = _wrap(title, max(20, (label_w + cw * len(col_labels)) // max(1, font.size // 2 + 1)))
    title_h = _text_size(probe, title_text, font)[1] + 2 * PAD if title else 0
    out = Image.new("RGB", (label_w + cw * len(col_labels), title_h + col_h + ch * len(rows)), BACKGROUND)
    draw = ImageDraw.Draw(out)
    if title:
        _put(draw, (PAD, PAD), title_text, font)
    for j, text in enumerate(col_labels):
        tw = _text_size(draw, text, font)[0]
        _put(draw, (label_w + j * cw + max(0, (cw - tw) // 2), title_h + PAD), text, font)
    for i, text in enumerate(rows):
        top = title_h + col_h + i * ch
        th = _text_size(draw, text, font)[1]
        _put(draw, (PAD, top + max(0, (ch - th) // 2)), text, font)
        for j, cell in enumerate(cells[i]):
            out.paste(cell.convert("RGB"), (label_w + j * cw, top))
    return out


def stack(blocks: list[Image.Image]) -> Image.Image:
    """Blocks one under another (one per prompt), left-aligned, with a gap."""
    width = max(b.width for b in blocks)
    out = Image.new("RGB", (width, sum(b.height for b in blocks) + PAD * 2 * (len(blocks) - 1)), BACKGROUND)
    y = 0
    for block in blocks:
        out.paste(block, (0, y))
        y += block.height + PAD * 2
    return out


def weight_label(weight: float) -> str:
    return f"{weight:g}"
