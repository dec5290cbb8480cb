"""glibc's malloc in a CPU run: freed blocks stay in the process for the next step instead of going back to the
kernel.

Why: a CPU training step allocates and frees the same large buffers every step (oneDNN's reordered copy of each
convolution's weights: 59 MB for a 1280x1280 3x3 kernel of SD's U-Net, 118 MB for the up blocks' 2560-channel
ones). glibc serves a request above its mmap threshold (at most 32 MiB) with a fresh mmap and unmaps it on free,
unless a free heap block happens to be big enough, so depending on how earlier frees left the heap a run
page-faults gigabytes in again every step or not at all. Measured on full-size SD1.5 (bench/host_memory.py,
bench/README.md "CPU allocator"): steps 1.6x as long in the faulting processes, the same peak RSS either way.

Only for a CPU run: on a GPU the host frees the loaded weights once they moved to the card, and a heap that keeps
freed blocks would hold gigabytes it no longer needs.
"""

from __future__ import annotations

import ctypes

M_TRIM_THRESHOLD = -1  # mallopt parameters (malloc.h)
M_MMAP_MAX = -4
KEEP_AT_TOP = 256 << 20  # free memory at the heap's top above this goes back to the kernel (glibc's default 128 KiB)


def _glibc():
    """The C library when it is glibc (mallopt with these meanings), else None (macOS, Windows, musl)."""
    try:
        libc = ctypes.CDLL(None)  # the symbols the process has loaded, the C library's among them
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
        return libc
    except (OSError, AttributeError, TypeError):
        return None


def keep_freed_blocks(device: str) -> str | None:
    """On a CPU run with glibc: large blocks come from the heap, not one mmap each, and the heap keeps up to
    KEEP_AT_TOP free at its top, so a step reuses the previous step's memory. Returns what was done (for the log),
    None when nothing was."""
    if device != "cpu":
        return None
    libc = _glibc()
    if libc is None or not (libc.mallopt(M_MMAP_MAX, 0) and libc.mallopt(M_TRIM_THRESHOLD, KEEP_AT_TOP)):
        return None
    return f"CPU run: malloc keeps freed blocks for reuse (no mmap per block, trim above {KEEP_AT_TOP >> 20} MiB)"
