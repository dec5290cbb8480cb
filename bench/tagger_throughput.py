"""Tagger throughput: the full pipeline (decode + preprocess in threads, batched onnxruntime) against bare
onnxruntime inference on batches that were decoded and preprocessed beforehand.

The model is a random-weight ViT-B/16-like network at 448x448 (the size of wd-vit-tagger-v3), exported
to ONNX with torch. Run: `python bench/tagger_throughput.py [--images 200] [--depth 12]`.
Prints both rates and their ratio (the pipeline should reach >= 0.9 of bare inference).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from trainer.tagger.models import CHARACTER, GENERAL, RATING  # noqa: E402
from trainer.tagger.tiny import tags_csv  # noqa: E402
from trainer.textio import atomic_write_text  # noqa: E402

SIZE, PATCH = 448, 16


def build_vit(dim: int, depth: int, heads: int, num_tags: int):
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
            self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
            self.mlp = nn.Sequential(nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim))

        def forward(self, x):
            n, t, _ = x.shape
            q, k, v = self.qkv(self.norm1(x)).reshape(n, t, 3, heads, dim // heads).permute(2, 0, 3, 1, 4)
            h = torch.nn.functional.scaled_dot_product_attention(q, k, v)
            x = x + self.proj(h.transpose(1, 2).reshape(n, t, dim))
            return x + self.mlp(self.norm2(x))

    class ViTTagger(nn.Module):  # NHWC BGR 0..255 in, sigmoid probabilities out, like the WD taggers
        def __init__(self):
            super().__init__()
            self.patch = nn.Conv2d(3, dim, PATCH, PATCH)
            self.pos = nn.Parameter(torch.randn(1, (SIZE // PATCH) ** 2, dim) * 0.02)
            self.blocks = nn.Sequential(*[Block() for _ in range(depth)])
            self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, num_tags)

        def forward(self, x):
            x = self.patch(x.permute(0, 3, 1, 2) / 255.0).flatten(2).transpose(1, 2) + self.pos
            x = self.norm(self.blocks(x)).mean(dim=1)
            return torch.sigmoid(self.head(x))

    return ViTTagger().eval()


def export_model(folder: Path, dim: int, depth: int, heads: int, num_tags: int) -> None:
    import torch

    tags = [(n, RATING) for n in ("general", "sensitive", "questionable", "explicit")]
    tags += [(f"tag_{i}", CHARACTER if i % 10 == 0 else GENERAL) for i in range(num_tags - 4)]
    torch.manual_seed(0)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(
            build_vit(dim, depth, heads, num_tags), (torch.zeros(1, SIZE, SIZE, 3),), str(folder / "model.onnx"),
            input_names=["input"], output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
            opset_version=17, dynamo=False,
        )
    atomic_write_text(folder / "selected_tags.csv", tags_csv(tags))


def make_images(folder: Path, count: int) -> list[Path]:
    """Photos-sized noisy images of mixed shapes and formats, so decoding costs what it costs for users."""
    from PIL import Image

    rng = np.random.default_rng(0)
    shapes = [(768, 1024), (1024, 768), (900, 900), (1200, 800)]
    paths = []
    for i in range(count):
        w, h = shapes[i % len(shapes)]
        base = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
        img = Image.fromarray(base).resize((w, h), Image.Resampling.BILINEAR)
        path = folder / f"img_{i:04d}.{'jpg' if i % 2 else 'png'}"
        img.save(path, quality=90) if i % 2 else img.save(path)
        paths.append(path)
    return paths


def time_bare(model, paths: list[Path], batch: int) -> float:
    """Seconds for onnxruntime alone on batches decoded and preprocessed beforehand."""
    from trainer.tagger.preprocess import load_preprocessed

    arrays = np.stack([load_preprocessed(p, model.size) for p in paths])
    t0 = time.perf_counter()
    for start in range(0, len(arrays), batch):
        model.run(arrays[start : start + batch])
    return time.perf_counter() - t0


def time_pipeline(model, paths: list[Path], batch: int) -> float:
    from trainer.tagger.pipeline import predict_files

    t0 = time.perf_counter()
    done = sum(1 for r in predict_files(model, paths, batch) if r.probs is not None)
    if done != len(paths):
        raise RuntimeError(f"pipeline produced {done} of {len(paths)} results")
    return time.perf_counter() - t0


def measure(images: int = 240, rounds: int = 4, batch: int = 8, dim: int = 768, depth: int = 12, heads: int = 12,
            tags: int = 10861, provider: str = "auto", threads: int = 0, log=print) -> dict:
    """Images per second of bare onnxruntime and of the full pipeline, interleaved over `rounds`."""
    from trainer.tagger.preprocess import load_preprocessed
    from trainer.tagger.session import load_model

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        export_model(tmp, dim, depth, heads, tags)
        log(f"exported ViT {dim}x{depth} in {time.perf_counter() - t0:.1f}s")
        (tmp / "images").mkdir()
        paths = make_images(tmp / "images", images)
        model = load_model(tmp, provider, threads)
        log(f"provider {model.describe()}, {len(paths)} images, batch {batch}, {rounds} rounds")
        model.run(np.stack([load_preprocessed(paths[0], model.size)] * batch))  # warm-up
        bare_s = piped_s = 0.0
        for r in range(rounds):  # interleaved, so load from other processes hits both sides alike
            chunk = paths[r :: rounds]
            b, p = time_bare(model, chunk, batch), time_pipeline(model, chunk, batch)
            log(f"round {r + 1}: bare {len(chunk) / b:.3f} images/s, pipeline {len(chunk) / p:.3f} images/s")
            bare_s, piped_s = bare_s + b, piped_s + p
    bare, piped = len(paths) / bare_s, len(paths) / piped_s
    return {"bare_images_s": bare, "pipeline_images_s": piped, "ratio": piped / bare}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=240)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--depth", type=int, default=12)
    ap.add_argument("--heads", type=int, default=12)
    ap.add_argument("--tags", type=int, default=10861)  # wd-vit-tagger-v3's tag count
    ap.add_argument("--provider", default="auto")
    ap.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0: its default)")
    args = ap.parse_args()
    r = measure(args.images, args.rounds, args.batch_size, args.dim, args.depth, args.heads, args.tags,
                args.provider, args.threads)
    print(f"bare onnxruntime on pre-decoded batches: {r['bare_images_s']:.3f} images/s")
    print(f"pipeline (decode + preprocess + inference): {r['pipeline_images_s']:.3f} images/s")
    print(f"ratio pipeline/bare: {r['ratio']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
