"""Keep library start-up quiet and offline: what the libraries print or fetch at import that means nothing to a
Danlu user. Installed once from trainer/__init__.py, before any of them is imported; imports none of them.

Each filter names one library message; warnings that matter to the user (a real deprecation in our own use,
an out-of-memory hint, a bad config) still show.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys

# logger name -> fragments of the messages dropped from it. A filter on a logger sees exactly the records
# created by that logger, so each entry touches one library module's own messages.
NOISE = {
    # The CPU 4-bit kernel it could not fetch (see below): Danlu never needs it.
    "bitsandbytes.backends.cpu.ops": ("Failed to load CPU gemm_4bit_forward",),
    # CLIP/SigLIP image processors fall back to PIL without torchvision; Danlu uses neither.
    "transformers.utils.import_utils": ("requires torchvision (not installed); falling back to",),
    # Printed on every dtype cast of a model that has no float32-only module at all (the list is empty).
    "diffusers.models.modeling_utils": ("that should be kept in float32: [].",),
}


class _DropNoise(logging.Filter):
    def __init__(self, fragments: tuple[str, ...]):
        super().__init__()
        self.fragments = fragments

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(f in message for f in self.fragments)

# bitsandbytes' CPU backend fetches a 4-bit CPU matmul kernel from the Hugging Face Hub while it is imported
# (on CPUs with AVX512-BF16), and diffusers imports bitsandbytes whenever it is installed: a network request
# on every start, which hangs for minutes on a network that drops packets. Danlu never runs 4-bit matmuls on a
# CPU (bitsandbytes is here for 8-bit optimizers), so that one module is imported without `kernels`.
_BNB_CPU_OPS = "bitsandbytes.backends.cpu.ops"


class _WithoutKernels(importlib.abc.Loader):
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        saved = sys.modules.get("kernels", _MISSING)
        sys.modules["kernels"] = None  # `from kernels import get_kernel` raises ImportError, which it handles
        try:
            self.loader.exec_module(module)
        finally:
            if saved is _MISSING:
                sys.modules.pop("kernels", None)
            else:
                sys.modules["kernels"] = saved


_MISSING = object()


class _BitsandbytesOffline(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != _BNB_CPU_OPS:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is not None and spec.loader is not None:
            spec.loader = _WithoutKernels(spec.loader)
        return spec


def install() -> None:
    """Idempotent: safe to call from every entry point."""
    if not any(isinstance(f, _BitsandbytesOffline) for f in sys.meta_path):
        sys.meta_path.insert(0, _BitsandbytesOffline())
    for name, fragments in NOISE.items():
        logger = logging.getLogger(name)  # the same object the library gets when it imports later
        if not any(isinstance(f, _DropNoise) for f in logger.filters):
            logger.addFilter(_DropNoise(fragments))
