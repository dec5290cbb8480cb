"""Peak RAM while loading a single-file SD1.5 checkpoint the way a training run does, against the size of the
weights it ends up holding. One copy of the weights is the least any loader needs; two copies (a state dict
read whole, then converted into the model) would show as a ratio near 2.

    python bench/load_memory.py [--size tiny|full]

Each load runs in a fresh process: the growth of its peak resident set (VmHWM) over the load and a first read
of every weight is compared with the bytes of the loaded model's state dict. VmHWM also counts the checkpoint's
memory-mapped file pages (page cache, which the kernel drops under memory pressure, so a loaded machine reads
lower), so the peak growth of anonymous memory (RssAnon, sampled every 5 ms: what the process itself holds) is
reported beside it. The file is fp16 (as checkpoints are mostly
shared; the engine loads it in fp32, so the weights in memory are twice the file) or fp32 (--dtype fp32).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Peak growth / loaded weights. A file in the training precision: one copy (~1.0); two copies would be 2.0.
# An fp16 file loaded in fp32: the fp32 weights plus the file's half-size data while converting (~1.5); two
# fp32 copies would be 2.5.
TARGET = {"fp32": 1.2, "fp16": 1.6}


def write_checkpoint(path: Path, size: str, dtype: str = "fp16") -> Path:
    """An original-layout single file (fp16 or fp32) of the tiny (or real-architecture, random) SD1.5."""
    import torch
    from safetensors.torch import save_file

    from bench.models import full_sd15_pipeline
    from trainer.models.sd15_single_file import sd15_to_ldm_state_dict
    from trainer.models.tiny import build_tiny_sd15

    pipe = build_tiny_sd15(0, four_level=True) if size == "tiny" else full_sd15_pipeline()
    if size == "tiny":  # its configs: the full-size ones ship in assets/model_configs/sd15
        pipe.save_pretrained(path.with_suffix(".configs"))
    pipe.to(torch.float16 if dtype == "fp16" else torch.float32)
    state = sd15_to_ldm_state_dict(pipe.unet, pipe.vae, pipe.text_encoder)
    del pipe
    save_file(state, str(path), metadata={"format": "pt"})
    return path


def _status_gb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 2**20  # kB
    return 0.0


class AnonPeak:
    """The peak of this process's anonymous memory (RssAnon), sampled every 5 ms in a thread. Anonymous memory
    is what the process holds; file pages of a memory-mapped checkpoint also count in RSS (ru_maxrss) but are
    page cache the kernel can drop, so RSS alone varies with the machine's memory pressure."""

    def __init__(self):
        import threading

        self.peak, self._stop = _status_gb("RssAnon"), threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _status_gb("RssAnon"))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _status_gb("RssAnon"))


def child(path: Path, cache: Path) -> dict:
    """In a fresh process: load `path` with the engine's SD1.5 loader and report its memory before and after."""
    import diffusers.loaders.single_file_utils  # noqa: F401  (imports are not what is measured)
    import torch
    from diffusers import StableDiffusionPipeline  # noqa: F401

    from trainer.models.loading import load_sd15

    configs = path.with_suffix(".configs")  # the tiny model's own configs (full size: Danlu's shipped ones)
    anon_before, rss_before = _status_gb("RssAnon"), _status_gb("VmHWM")
    with AnonPeak() as anon:
        parts = load_sd15(str(path), cache_dir=cache, dtype=torch.float32,
                          config=configs if configs.is_dir() else None)
        tensors = [t for m in (parts.unet, parts.vae, parts.text_encoder) for t in m.state_dict().values()]
        with torch.no_grad():  # read every weight once, as the first step does: mapped pages become resident
            for t in tensors:
                t.sum()
    state = sum(t.numel() * t.element_size() for t in tensors) / 2**30
    rss = _status_gb("VmHWM") - rss_before  # counts mapped file pages: the conservative figure, used for the ratio
    return {"anon_growth_gb": anon.peak - anon_before, "rss_peak_growth_gb": rss, "state_gb": state,
            "file_gb": path.stat().st_size / 2**30, "ratio": rss / state}


def measure(size: str, tmp: Path, dtype: str = "fp16") -> dict:
    path = tmp / f"sd15-{size}-{dtype}.safetensors"
    if not path.exists():  # written in its own process too, so that its memory is returned at once
        subprocess.run([sys.executable, __file__, "--write", str(path), "--size", size, "--dtype", dtype],
                       check=True, cwd=ROOT)
    proc = subprocess.run([sys.executable, __file__, "--child", str(path), "--cache", str(tmp / "hub")],
                          capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise RuntimeError(f"loading {path} failed: {proc.stderr[-1500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=("tiny", "full"), default="tiny")
    ap.add_argument("--dtype", choices=("fp16", "fp32"), default="fp16", help="the file's precision")
    ap.add_argument("--keep", type=Path, help="write (and reuse) the checkpoint in this folder")
    ap.add_argument("--write", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--cache", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.write:
        write_checkpoint(args.write, args.size, args.dtype)
        return 0
    if args.child:
        print(json.dumps(child(args.child, args.cache)))
        return 0
    with tempfile.TemporaryDirectory(prefix="danlu-loadmem-") as tmp:
        r = measure(args.size, Path(args.keep or tmp), args.dtype)
    print(f"{args.size} SD1.5 single file ({r['file_gb']:.2f} GB {args.dtype}) loaded in fp32: weights {r['state_gb']:.2f} GB, "
          f"peak RSS growth {r['rss_peak_growth_gb']:.2f} GB (anonymous memory {r['anon_growth_gb']:.2f} GB), ratio {r['ratio']:.2f} (target <= {TARGET[args.dtype]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
