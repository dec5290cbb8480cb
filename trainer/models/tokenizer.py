"""Tokenizers built offline: a byte-level CLIP tokenizer and a ByT5 tokenizer, no hub access.

The tiny CLIP vocabulary is the 256 byte symbols of GPT-2/CLIP byte-level BPE, the same symbols with the
end-of-word marker `</w>`, then the two CLIP special tokens. With no merges every character is one token,
so any text (Chinese included) tokenizes without an unknown token.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from transformers import ByT5Tokenizer, CLIPTokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode

from trainer.textio import atomic_write_text

BOS = "<|startoftext|>"
EOS = "<|endoftext|>"
# The merges file of an empty BPE: only the version header that CLIP's merges.txt starts with.
MERGES_HEADER = "#version: 0.2\n"


def tiny_clip_vocab() -> dict[str, int]:
    """The 514-entry byte-level vocab: byte symbols, byte symbols + `</w>`, BOS, EOS."""
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + [BOS, EOS]
    return {token: i for i, token in enumerate(tokens)}


def write_tiny_clip_tokenizer_files(out_dir: Path, model_max_length: int = 77) -> Path:
    """Write vocab.json, merges.txt and tokenizer_config.json that `CLIPTokenizer.from_pretrained` reads."""
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / "vocab.json", json.dumps(tiny_clip_vocab(), ensure_ascii=False))
    atomic_write_text(out_dir / "merges.txt", MERGES_HEADER)
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": model_max_length,
              "bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}
    atomic_write_text(out_dir / "tokenizer_config.json", json.dumps(config, indent=2))
    return out_dir


def tiny_clip_tokenizer(model_max_length: int = 77) -> CLIPTokenizer:
    """A working CLIPTokenizer with the tiny byte-level vocab (len 514), built from files in a temp dir."""
    with tempfile.TemporaryDirectory(prefix="danlu-tok-") as tmp:
        folder = write_tiny_clip_tokenizer_files(Path(tmp), model_max_length)
        # The fast tokenizer keeps everything in memory, so the folder may go away afterwards.
        return CLIPTokenizer.from_pretrained(str(folder), model_max_length=model_max_length)


def tiny_t5_tokenizer(model_max_length: int = 77) -> ByT5Tokenizer:
    """ByT5's tokenizer needs no vocab files: bytes + 3 specials + 125 extra ids (vocab 384)."""
    return ByT5Tokenizer(model_max_length=model_max_length)
