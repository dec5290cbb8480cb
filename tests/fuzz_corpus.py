"""A corpus of hostile and odd inputs, generated (nothing binary is checked in). Add a maker here for every
bug an odd file ever caused, so every scanner is tried on it from then on.

`make_dataset(root)` writes a kohya dataset (root/10_fuzz/...) of images and captions;
`make_tomls(folder)` writes config files. Both are seeded: the same corpus on every run.
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

from PIL import Image

SEED = 11
CONTROL = "\x1b[31m\x07\x08\x00\u202e"


# ---- images -------------------------------------------------------------------------------------------
def _png(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **kw)
    return buf.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def huge_dimension_png(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG header claiming an enormous picture, with almost no data (a decompression bomb shape)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")


def images() -> dict[str, bytes]:
    rng = random.Random(SEED)
    rgb = Image.new("RGB", (96, 64), (200, 30, 30))
    good_png, buf = _png(rgb), io.BytesIO()
    rgb.save(buf, "JPEG")
    good_jpg = buf.getvalue()
    out = {
        "good.png": good_png,
        "zero.png": b"",
        "truncated.png": good_png[: len(good_png) // 2],
        "truncated.jpg": good_jpg[: len(good_jpg) // 3],
        "header_only.jpg": good_jpg[:20],
        "fake.png": b"this is text, not a picture\n",
        "html.webp": b"<html><body>not an image</body></html>",
        "png_named.jpg": good_png,
        "random.bmp": bytes(rng.randrange(256) for _ in range(512)),
        "huge.png": huge_dimension_png(),
        "wide.png": huge_dimension_png(1_000_000, 1),
        "sixteen_bit.png": _png(Image.new("I;16", (64, 64), 40000)),
        "palette.png": _png(Image.new("RGB", (64, 64), "blue").convert("P"), transparency=0),
        "one_bit.png": _png(Image.new("1", (64, 64), 1)),
        "la.png": _png(Image.new("LA", (64, 64), (128, 10))),
        "rgba.png": _png(Image.new("RGBA", (64, 64), (0, 0, 0, 0))),
        "float.png": _png(Image.new("I", (64, 64), 12345)),
    }
    buf = io.BytesIO()
    Image.new("CMYK", (64, 64), (0, 255, 0, 0)).save(buf, "JPEG")
    out["cmyk.jpg"] = buf.getvalue()
    frames = [Image.new("RGB", (64, 64), c) for c in ("red", "green", "blue")]
    buf = io.BytesIO()
    frames[0].save(buf, "WEBP", save_all=True, append_images=frames[1:], duration=100)
    out["animated.webp"] = buf.getvalue()
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:], duration=100)
    out["animated.png"] = buf.getvalue()
    buf = io.BytesIO()
    rgb.save(buf, "JPEG", exif=_exif_rotated())
    out["rotated.jpg"] = buf.getvalue()
    out[f"name{CONTROL.replace(chr(0), '')}\nline.png"] = good_png  # control characters in a file name
    out["名字 with spaces.png"] = good_png
    return out


def _exif_rotated() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6
    return exif.tobytes()


# ---- captions -----------------------------------------------------------------------------------------
def captions() -> dict[str, bytes]:
    """Caption bytes, keyed by the image stem they belong to (each gets a good.png twin)."""
    rng = random.Random(SEED)
    return {
        "cap_utf16": "cat, 猫".encode("utf-16"),
        "cap_utf16_nobom": "cat, dog".encode("utf-16-le"),
        "cap_gbk": "猫, 红色".encode("gbk"),
        "cap_latin1": "café, naïve".encode("latin-1"),
        "cap_bad_utf8": b"cat, \xff\xfe\xfd dog",
        "cap_nul": b"cat\x00dog, \x00",
        "cap_crlf": b"cat, dog\r\nsecond line\r\n",
        "cap_empty": b"",
        "cap_spaces": b"   \n\t\n",
        "cap_control": f"cat, {CONTROL}, dog".encode(),
        "cap_long": (", ".join(f"tag{i}" for i in range(50_000))).encode(),
        "cap_random": bytes(rng.randrange(256) for _ in range(300)),
        "cap_commas": b",,,, , ,,",
        "cap_brackets": b"(cat:1.2), [dog], {bird}, \\(x\\)",
    }


def make_dataset(root: Path) -> Path:
    """root/10_fuzz with every odd image and caption; returns the subset folder."""
    sub = Path(root) / "10_fuzz"
    sub.mkdir(parents=True, exist_ok=True)
    for name, data in images().items():
        (sub / name).write_bytes(data)
    good = images()["good.png"]
    for stem, data in captions().items():
        (sub / f"{stem}.png").write_bytes(good)
        (sub / f"{stem}.txt").write_bytes(data)
    (sub / "zero.txt").write_bytes(b"caption of an empty image")
    (sub / "caption_only.txt").write_bytes(b"no image for me")
    (sub / "folder.png").mkdir(exist_ok=True)  # a folder named like an image
    return sub


# ---- TOML ---------------------------------------------------------------------------------------------
def tomls() -> dict[str, str | bytes]:
    rng = random.Random(SEED)
    out: dict[str, str | bytes] = {
        "deep_array.toml": "a = " + "[" * 5000 + "]" * 5000,
        "deep_inline.toml": "x = " + "{a = " * 600 + "1" + "}" * 600,
        "deep_tables.toml": "".join(f"[{'.'.join(['t'] * n)}]\n" for n in (1, 200, 700)),
        "empty.toml": "",
        "binary.toml": bytes(rng.randrange(256) for _ in range(2000)),
        "utf16.toml": "[model]\nbase_model = \"x\"\n".encode("utf-16"),
        "wrong_types.toml": "[dataset]\nresolution = 5\n[training]\nmax_train_epochs = \"many\"\n",
        "unknown_keys.toml": "[nonsense]\nx = 1\n[dataset]\nresolutoin = \"512\"\n",
        "huge_numbers.toml": "[dataset]\nresolution = \"100000000,100000000\"\n[training]\nmax_train_epochs = "
                             "99999999999999999999\n",
        "bad_args.toml": "[optimizer]\noptimizer_args = [\"=\", \"a=b=c\"]\n",
        "bad_prompts.toml": "[sampling]\nsample_every_n_epochs = 1\nsample_prompts = \"cat --w abc --h 1e9\"\n",
        "control.toml": f"[caption]\ntrigger_word = \"{CONTROL.replace(chr(0), '')}\"\n".replace("\x1b", "\\u001b"),
        "kohya_like.toml": "pretrained_model_name_or_path = 5\nnetwork_dim = \"x\"\nlearning_rate = []\n",
    }
    for i in range(20):
        out[f"random_{i:02d}.toml"] = _random_toml(rng)
    return out


def _random_toml(rng: random.Random) -> str:
    """Random, mostly valid TOML built from Danlu's own group and key names and random values."""
    from trainer.config import all_params

    params = list(all_params())
    lines = []
    for _ in range(rng.randrange(1, 12)):
        p = rng.choice(params)
        value = rng.choice(['"x"', "-1", "0", "1e308", "nan", "inf", "true", "[]", '["a", 1]', "{a = 1}",
                            '"../../../etc"', '"' + "a" * 10_000 + '"', "1979-05-27", '"512,512"'])
        lines.append(f"[{p.group}]\n{p.name} = {value}")
    if rng.random() < 0.3:
        lines.insert(rng.randrange(len(lines) + 1), "".join(rng.choice("[]{}=\"',.\n ax1") for _ in range(40)))
    return "\n".join(lines) + "\n"


def make_tomls(folder: Path) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in tomls().items():
        path = folder / name
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths
