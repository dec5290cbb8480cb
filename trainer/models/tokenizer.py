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


# CLIP's BPE file lists 49152 - 256 - 2 merges after its header line; the vocab is the 512 byte symbols, one
# entry per merge, then the two specials: 49408 tokens, the text encoder's vocab_size.
CLIP_MERGES = 49152 - 256 - 2


def write_clip_tokenizer_from_bpe(bpe_gz: Path, out_dir: Path, model_max_length: int = 77) -> Path:
    """Write the real CLIP ViT-L/14 tokenizer (vocab.json, merges.txt) from OpenAI's BPE merges file.

    `bpe_simple_vocab_16e6.txt.gz` ships in the open_clip_torch wheel; assets/model_configs/sd15/tokenizer
    was made with this function so that SD1.5 single files load without any download.
    """
    import gzip

    lines = gzip.open(bpe_gz, "rt", encoding="utf-8").read().split("\n")[1:CLIP_MERGES + 1]
    merges = [tuple(line.split()) for line in lines]
    if len(merges) != CLIP_MERGES or any(len(m) != 2 for m in merges):
        raise ValueError(f"{bpe_gz}: not CLIP's BPE merges file (expected {CLIP_MERGES} pairs after a header)")
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges] + [BOS, EOS]
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / "vocab.json", json.dumps({t: i for i, t in enumerate(tokens)}, ensure_ascii=False))
    atomic_write_text(out_dir / "merges.txt", MERGES_HEADER + "\n".join(" ".join(m) for m in merges) + "\n")
    config = {"tokenizer_class": "CLIPTokenizer", "model_max_length": model_max_length, "do_lower_case": True,
              "bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}
    atomic_write_text(out_dir / "tokenizer_config.json", json.dumps(config, indent=2))
    return out_dir
