"""Cached VAE latents, in memory or on disk next to each image, reused across runs while still valid.

A disk cache file `<image stem>.danlu-latent.safetensors` holds one latent per (image, bucket size, flip)
plus JSON metadata: the VAE fingerprint, the resize filter (dataset.resize_interpolation), and per image its byte
size, mtime and a content hash. The file is stale for an image when its bytes change, and stale as a whole when
the VAE fingerprint or the filter changes (a file without a filter predates the setting: stale too); a new bucket
size simply has no entry yet. Images sharing a stem (a.png, a.jpg) share the file under their own
names, so they never evict each other. Files are written atomically (a crash leaves the old file). Reads
go through safetensors' memory map (safe_open); a file's header is parsed once per version of the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save

from trainer.data.buckets import Size, centre_crop, cover_size
from trainer.data.images import fit_to_bucket, load_image
from trainer.data.problems import ImageLoadError, Problem
from trainer.data.tensors import to_tensor
from trainer.textio import atomic_write_bytes

CACHE_SUFFIX = ".danlu-latent.safetensors"
FORMAT = "danlu-latent-1"
_HASH_SPAN = 1 << 20  # bytes hashed from each end of the file: fast, and covers small images entirely


def cache_path(image_path) -> Path:
    p = Path(image_path)
    return p.with_name(p.stem + CACHE_SUFFIX)


def file_fingerprint(path) -> dict:
    """Byte size, mtime and a hash of the head and tail of the file (a fast content check)."""
    st = os.stat(path)
    h = hashlib.blake2b(str(st.st_size).encode(), digest_size=16)
    with open(path, "rb") as fh:
        h.update(fh.read(_HASH_SPAN))
        if st.st_size > 2 * _HASH_SPAN:
            fh.seek(-_HASH_SPAN, os.SEEK_END)
            h.update(fh.read(_HASH_SPAN))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "hash": h.hexdigest()}


def _same_file(a: dict | None, b: dict) -> bool:
    # mtime is kept for people reading the file, not compared: a copy to another disk changes it.
    return a is not None and a.get("size") == b["size"] and a.get("hash") == b["hash"]


def _entry_key(image_name: str, bucket: Size, flip: bool) -> str:
    return f"{image_name}:{bucket[0]}x{bucket[1]}" + (":flip" if flip else "")


def _path_of(item) -> str:
    return str(getattr(item, "path", item))


class LatentCache:
    """get/put latents by (image, bucket (w, h), flip). `mode` is "memory" or "disk". `interpolation` is the filter
    (trainer.data.images.RESIZE_FILTERS) the pictures are scaled to their buckets with: other pixels, other latents."""

    def __init__(self, mode: str, vae_fingerprint: str, interpolation: str = "auto"):
        if mode not in ("memory", "disk"):
            raise ValueError(f"latent cache mode {mode!r}: use 'memory' or 'disk'")
        self.mode = mode
        self.vae_fingerprint = vae_fingerprint
        self.interpolation = interpolation
        self._memory: dict[tuple[str, Size, bool], torch.Tensor] = {}
        self._fingerprints: dict[str, dict] = {}  # images do not change during a run: hash each once
        self._metas: dict[str, tuple[tuple[int, int, int], dict | None]] = {}  # cache file -> (its stat, meta)

    def get(self, item, bucket: Size, flip: bool = False) -> torch.Tensor | None:
        path = _path_of(item)
        if self.mode == "memory":
            return self._memory.get((path, tuple(bucket), flip))
        meta = self._valid_meta(path)
        key = _entry_key(Path(path).name, bucket, flip)
        if meta is None or key not in meta["entries"]:
            return None
        with safe_open(str(cache_path(path)), framework="pt") as f:
            return f.get_tensor(key)

    def has(self, item, bucket: Size, flip: bool = False) -> bool:
        path = _path_of(item)
        if self.mode == "memory":
            return (path, tuple(bucket), flip) in self._memory
        meta = self._valid_meta(path)
        return meta is not None and _entry_key(Path(path).name, bucket, flip) in meta["entries"]

    def put(self, item, bucket: Size, latent: torch.Tensor, flip: bool = False,
            crop_top_left: tuple[int, int] | None = None, original_size: tuple[int, int] | None = None) -> None:
        path = _path_of(item)
        latent = latent.detach().to("cpu").contiguous().clone()  # own storage: safetensors needs it
        if self.mode == "memory":
            self._memory[(path, tuple(bucket), flip)] = latent
            return
        self._write_entry(path, tuple(bucket), flip, latent, crop_top_left, original_size)

    def _fingerprint(self, path: str) -> dict:
        if path not in self._fingerprints:
            self._fingerprints[path] = file_fingerprint(path)
        return self._fingerprints[path]

    def _read_meta(self, file: Path) -> dict | None:
        try:
            with safe_open(str(file), framework="pt") as f:
                meta = json.loads((f.metadata() or {}).get("danlu", "null"))
        except Exception:  # missing, torn or foreign file: treated as no cache
            return None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            return None
        return meta

    def _valid_meta(self, path: str) -> dict | None:
        meta = self._file_meta(cache_path(path))
        if not self._made_alike(meta):
            return None
        if not _same_file(meta.get("images", {}).get(Path(path).name), self._fingerprint(path)):
            return None
        return meta

    def _made_alike(self, meta: dict | None) -> bool:
        """Whether a cache file's latents came from this VAE and pictures scaled with this filter."""
        return meta is not None and meta.get("vae") == self.vae_fingerprint \
            and meta.get("resize_interpolation") == self.interpolation

    def _file_meta(self, file: Path) -> dict | None:
        """The cache file's metadata, parsed once per version of the file: an epoch then reads each latent with
        one stat and one memory-mapped open. Another process rewriting the file changes its size or mtime."""
        try:
            st = file.stat()
        except OSError:
            return None
        version = (st.st_size, st.st_mtime_ns, st.st_ino)
        known = self._metas.get(str(file))
        if known is None or known[0] != version:
            known = self._metas[str(file)] = (version, self._read_meta(file))
        return known[1]

    def _write_entry(self, path: str, bucket: Size, flip: bool, latent: torch.Tensor,
                     crop: tuple[int, int] | None, original: tuple[int, int] | None) -> None:
        file, name = cache_path(path), Path(path).name
        meta = self._read_meta(file)
        tensors: dict[str, torch.Tensor] = {}
        if not self._made_alike(meta):
            meta = {"format": FORMAT, "vae": self.vae_fingerprint, "resize_interpolation": self.interpolation,
                    "images": {}, "entries": {}}
        else:
            tensors = load_file(str(file))
        fingerprint = self._fingerprint(path)
        if not _same_file(meta["images"].get(name), fingerprint):
            stale = [k for k in meta["entries"] if k.startswith(name + ":")]
            for k in stale:
                meta["entries"].pop(k)
                tensors.pop(k, None)
        meta["images"][name] = fingerprint
        key = _entry_key(name, bucket, flip)
        tensors[key] = latent
        meta["entries"][key] = {"bucket": list(bucket), "flip": flip,
                                "crop_top_left": list(crop) if crop else None,
                                "original_size": list(original) if original else None}
        atomic_write_bytes(file, save(tensors, metadata={"danlu": json.dumps(meta)}))
        self._metas.pop(str(file), None)


@dataclass
class FillReport:
    encoded: int = 0  # latents computed now
    reused: int = 0  # latents already cached and valid
    problems: list[Problem] = field(default_factory=list)  # images that could not be read (skipped)

    @property
    def failed_paths(self) -> set[str]:
        return {p.file for p in self.problems}


def fill_cache(cache: LatentCache, items_with_buckets: Iterable[tuple[object, Size]],
               encode_fn: Callable[[torch.Tensor], torch.Tensor], batch_size: int = 1,
               progress: Callable[[int, int], None] | None = None, *, flip_aug: bool = False) -> FillReport:
    """Encode the latents `cache` lacks, `batch_size` same-bucket images per encode_fn call.

    encode_fn takes pixels [B, 3, H, W] in -1..1 (float32, CPU) and returns latents [B, C, H/8, W/8];
    moving to the VAE's device and dtype, and any scaling, is the caller's choice. Images are centre-
    cropped (random crop cannot be cached). With flip_aug the mirrored latent is cached too.
    progress(done, total) is called after each batch with counts of latents to encode.
    """
    report = FillReport()
    todo: dict[Size, list[tuple[object, bool]]] = {}
    for item, bucket in items_with_buckets:
        for flip in ((False, True) if flip_aug else (False,)):
            if cache.has(item, bucket, flip):
                report.reused += 1
            else:
                todo.setdefault(tuple(bucket), []).append((item, flip))
    total = sum(len(v) for v in todo.values())
    done = 0
    for bucket in sorted(todo):
        for start in range(0, len(todo[bucket]), max(1, batch_size)):
            chunk = todo[bucket][start:start + max(1, batch_size)]
            _encode_chunk(cache, bucket, chunk, encode_fn, report)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return report


def _encode_chunk(cache: LatentCache, bucket: Size, chunk: Sequence[tuple[object, bool]],
                  encode_fn: Callable[[torch.Tensor], torch.Tensor], report: FillReport) -> None:
    pixels, kept, geometry = [], [], {}
    for item, flip in chunk:
        path = _path_of(item)
        if path in report.failed_paths:
            continue
        try:
            img = load_image(path)
        except ImageLoadError as exc:
            report.problems.append(exc.problem)
            continue
        fitted = fit_to_bucket(img, bucket, random_crop=False, rng=None, interpolation=cache.interpolation)
        tensor = to_tensor(fitted.image)
        pixels.append(torch.flip(tensor, dims=[-1]) if flip else tensor)
        kept.append((item, flip))
        geometry[path] = (img.size, fitted.original_size)
    if not pixels:
        return
    latents = encode_fn(torch.stack(pixels))
    if latents.shape[0] != len(pixels):
        raise ValueError(f"encode_fn returned {latents.shape[0]} latents for {len(pixels)} images")
    for (item, flip), latent in zip(kept, latents, strict=True):
        size, original = geometry[_path_of(item)]
        crop = centre_crop_geometry(size, bucket, flip)
        cache.put(item, bucket, latent, flip=flip, crop_top_left=crop, original_size=original)
        report.encoded += 1


def centre_crop_geometry(size: Size, bucket: Size, flip: bool = False) -> tuple[int, int]:
    """(top, left) that fill_cache used for an upright image of `size` (w, h), mirrored when flip."""
    resized = cover_size(size, bucket)
    top, left = centre_crop(resized, bucket)
    return (top, resized[0] - bucket[0] - left) if flip else (top, left)
