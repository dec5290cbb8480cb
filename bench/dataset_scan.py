"""Dataset scan speed: Danlu's scan (image headers, captions, bucket assignment) against decoding every image
to learn its size, on a generated dataset.

    python bench/dataset_scan.py [--images 10000] [--dir DIR]

The images are small JPEGs and PNGs of mixed shapes (portrait, landscape, square) so the buckets differ;
decoding cost grows with pixels, so the ratio here understates what a real dataset of photos would show.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SHAPES = [(512, 768), (768, 512), (640, 640), (576, 1024), (1024, 576)]
RESOLUTION = (512, 512)


def generate(root: Path, n: int) -> Path:
    """n images (flat colour with a bar, so each encodes to a few kB) with one caption each, in one subset."""
    from PIL import Image, ImageDraw

    sub = root / "1_bench"
    sub.mkdir(parents=True, exist_ok=True)
    tiles = {}
    for i in range(n):
        w, h = SHAPES[i % len(SHAPES)]
        if (w, h) not in tiles:
            img = Image.new("RGB", (w, h), (40, 90, 160))
            ImageDraw.Draw(img).rectangle((w // 4, h // 4, w // 2, h // 2), fill=(230, 180, 30))
            tiles[(w, h)] = img
        path = sub / f"{i:05d}.{'png' if i % 5 == 0 else 'jpg'}"
        tiles[(w, h)].save(path, quality=85) if path.suffix == ".jpg" else tiles[(w, h)].save(path)
        (sub / f"{i:05d}.txt").write_text(f"bench, image {i}", encoding="utf-8")
    return root


def scan_with_headers(root: Path) -> dict:
    """Danlu's own path: scan (header sizes + captions), then bucket assignment."""
    from trainer.data.buckets import plan_buckets
    from trainer.data.scan import scan_dataset

    scan = scan_dataset(root)
    plan = plan_buckets(scan.items, resolution=RESOLUTION, min_reso=256, max_reso=1024)
    return {"images": len(scan.items), "buckets": len(set(plan.values())), "plan": [plan[i] for i in range(len(plan))]}


def scan_by_decoding(root: Path) -> dict:
    """The naive path: open and decode every image to learn its size, then assign buckets the same way."""
    from PIL import Image

    from trainer.data.buckets import plan_buckets
    from trainer.data.scan import scan_dataset

    scan = scan_dataset(root)  # the captions and file list, as above; the sizes come from decoding below
    sizes = []
    for item in scan.items:
        with Image.open(item.path) as img:
            sizes.append(img.convert("RGB").size)
    plan = plan_buckets(sizes, resolution=RESOLUTION, min_reso=256, max_reso=1024)
    return {"images": len(sizes), "buckets": len(set(plan.values())), "plan": [plan[i] for i in range(len(plan))]}


def measure(root: Path) -> dict:
    """CPU seconds of both paths (CPU time: other jobs on a shared machine skew wall time), checked to agree."""
    from PIL import Image

    import trainer.data.buckets
    import trainer.data.scan  # noqa: F401  (imports are not what is measured)

    Image.init()  # load Pillow's format plugins up front too
    out = {}
    for name, fn in (("headers", scan_with_headers), ("decode", scan_by_decoding)):
        c0, t0 = time.process_time(), time.perf_counter()
        result = fn(root)
        out[name] = {"cpu_s": time.process_time() - c0, "wall_s": time.perf_counter() - t0, **result}
    if out["headers"]["plan"] != out["decode"]["plan"]:
        raise RuntimeError("header sizes and decoded sizes gave different buckets")
    return {"images": out["headers"]["images"], "buckets": out["headers"]["buckets"],
            "headers_cpu_s": out["headers"]["cpu_s"], "decode_cpu_s": out["decode"]["cpu_s"],
            "headers_wall_s": out["headers"]["wall_s"], "decode_wall_s": out["decode"]["wall_s"],
            "speedup": out["decode"]["cpu_s"] / out["headers"]["cpu_s"]}


def run(n: int, folder: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="danlu-scanbench-") as tmp:
        root = folder or Path(tmp) / "dataset"
        t0 = time.perf_counter()
        if not (root / "1_bench").is_dir():
            generate(root, n)
        made = time.perf_counter() - t0
        result = measure(root)
    return {**result, "generate_s": made}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--dir", type=Path, help="keep the generated dataset here and reuse it")
    args = ap.parse_args(argv)
    r = run(args.images, args.dir)
    print(f"{r['images']} images in {r['buckets']} buckets (generated in {r['generate_s']:.1f} s)")
    print(f"scan with header reads + buckets: {r['headers_cpu_s']:.2f} s CPU ({r['headers_wall_s']:.2f} s wall)")
    print(f"decoding every image + buckets:   {r['decode_cpu_s']:.2f} s CPU ({r['decode_wall_s']:.2f} s wall)")
    print(f"speed-up of the header scan: {r['speedup']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
