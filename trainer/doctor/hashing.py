"""Exact duplicates (file hash) and near duplicates (perceptual hash) among dataset images.

Everything here only reads files. Perceptual hashes are 64-bit pHashes (imagehash); two images whose hashes
differ in at most NEAR_DISTANCE bits (of 64) look alike to a person (resized, re-encoded, lightly edited copies),
while unrelated photos differ in about 32 bits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

NEAR_DISTANCE = 4


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def phash64(image) -> int:
    """64-bit perceptual hash of a PIL image as an int."""
    import imagehash

    bits = imagehash.phash(image).hash.flatten()
    return int("".join("1" if b else "0" for b in bits), 2)


def exact_groups(digests: dict[str, str]) -> list[list[str]]:
    """Groups (2+) of paths whose file hashes are equal, each sorted, in path order."""
    by_digest: dict[str, list[str]] = {}
    for path, digest in digests.items():
        by_digest.setdefault(digest, []).append(path)
    return sorted(sorted(g) for g in by_digest.values() if len(g) > 1)


def near_groups(hashes: dict[str, int], digests: dict[str, str],
                max_distance: int = NEAR_DISTANCE) -> list[tuple[list[str], int]]:
    """Groups of images within `max_distance` bits of each other (linked pairs), with their largest
    linked distance. Byte-identical files are left to `exact_groups`, so a pair of copies is reported once."""
    paths = sorted(hashes)
    values = np.array([hashes[p] for p in paths], dtype=np.uint64)
    parent = list(range(len(paths)))
    worst: dict[int, int] = {}

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i in range(len(paths) - 1):
        # One vectorised row at a time keeps thousands of images to a second or two.
        dist = np.bitwise_count(values[i] ^ values[i + 1:])
        for j in np.nonzero(dist <= max_distance)[0]:
            k = i + 1 + int(j)
            if digests.get(paths[i]) == digests.get(paths[k]):
                continue
            a, b = root(i), root(k)
            parent[b] = a
            worst[a] = max(worst.get(a, 0), worst.pop(b, 0), int(dist[j]))
    groups: dict[int, list[str]] = {}
    for i, path in enumerate(paths):
        groups.setdefault(root(i), []).append(path)
    return [(g, worst.get(r, 0)) for r, g in groups.items() if len(g) > 1]


def hash_images(paths: Sequence[str], load: Callable, progress: Callable[[int, int], None] | None = None,
                ) -> tuple[dict[str, str], dict[str, int], dict[str, str]]:
    """(file digests, perceptual hashes, {path: reason} for images that failed to decode)."""
    digests: dict[str, str] = {}
    hashes: dict[str, int] = {}
    failed: dict[str, str] = {}
    for n, path in enumerate(paths, 1):
        digests[path] = file_digest(path)
        try:
            hashes[path] = phash64(load(path))
        except OSError as exc:  # ImageLoadError is an OSError and carries the reason
            failed[path] = getattr(exc, "reason", str(exc))
        if progress:
            progress(n, len(paths))
    return digests, hashes, failed


def duplicate_groups(paths: Sequence[str], load: Callable, near_distance: int = NEAR_DISTANCE,
                     progress: Callable[[int, int], None] | None = None):
    """(exact groups, near groups with their distance, {path: reason} for undecodable images): what the doctor
    reports and the Dataset tab's quarantine acts on."""
    digests, hashes, failed = hash_images(sorted(set(paths)), load, progress)
    return exact_groups(digests), near_groups(hashes, digests, near_distance), failed
