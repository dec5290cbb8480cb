"""Errors the engine reports to the user: what happened, and what to change."""

from __future__ import annotations


class EngineError(Exception):
    """A failure with a plain-language hint; the run ends with an `error` event carrying both."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.message, self.hint = message, hint


def hint_for(exc: BaseException) -> str:
    """A best-effort hint for an unexpected exception."""
    text = str(exc).lower()
    if "out of memory" in text or isinstance(exc, MemoryError):
        return ("The GPU ran out of memory: lower train_batch_size or resolution, turn on "
                "gradient_checkpointing and cache_latents, or pick a smaller memory preset.")
    if "no such file" in text or isinstance(exc, FileNotFoundError):
        return "A path in the config does not exist: check base_model, vae, train_data_dir and network_weights."
    if "bitsandbytes" in text:
        return "bitsandbytes failed to load: choose optimizer_type AdamW instead of an 8-bit optimizer."
    return "See train.log in the run folder for the full traceback."


class StopRequested(Exception):
    """A stop request arrived before the first step (while loading or caching): nothing is trained, so
    nothing is saved; the run ends "stopped"."""
