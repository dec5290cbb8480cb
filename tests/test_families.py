"""Model families: the registry, sd-scripts' long-prompt chunking and SDXL's size/crop time ids."""

from __future__ import annotations

import pytest
import torch

from trainer.engine.textenc import merge_chunks, tokenize
from trainer.families import get_family
from trainer.families.sdxl.engine import sd_scripts_crop_top_left, time_ids
from trainer.models.tokenizer import BOS, EOS, tiny_clip_tokenizer


def test_registry_names_each_family_and_refuses_unknown_ones():
    assert get_family("sd15").base_model_version == "sd_v1"
    assert get_family("sdxl").base_model_version == "sdxl_base_v1-0"
    with pytest.raises(ValueError, match="model.family 'sd3'"):
        get_family("sd3")


def _pad_bang(tok):
    """SDXL's second tokenizer: the same BPE, padded with '!' instead of <EOS>."""
    tok.pad_token = "!"
    return tok


@pytest.mark.parametrize("length,chunks", [(75, 1), (150, 2), (225, 3)])
def test_long_captions_reach_the_encoder_as_75_token_chunks(length, chunks):
    tok = tiny_clip_tokenizer()
    bos, eos = tok.convert_tokens_to_ids([BOS, EOS])
    caption = "a" * 300  # one token per character with the tiny vocab: longer than any limit
    ids = tokenize(tok, [caption], length)
    assert ids.shape == (1, chunks, 77)
    for chunk in ids[0]:
        assert chunk[0] == bos and chunk[-1] == eos and (chunk[1:-1] != eos).all()
    # sd-scripts: chunk k holds tokens 75k+1 .. 75k+75 of the caption
    full = tok([caption], truncation=True, max_length=length + 2).input_ids[0]
    assert torch.equal(torch.cat([c[1:-1] for c in ids[0]]), torch.tensor(full[1:-1]))


def test_a_short_caption_with_pad_bang_keeps_bos_eos_in_every_chunk():
    tok = _pad_bang(tiny_clip_tokenizer())
    bos, eos, pad = tok.convert_tokens_to_ids([BOS, EOS, "!"])
    ids = tokenize(tok, ["ab"], 150)[0]
    assert ids[0].tolist()[:4] == [bos, tok.convert_tokens_to_ids("a"), tok.convert_tokens_to_ids("b</w>"), eos]
    assert ids[1].tolist()[:3] == [bos, eos, pad]  # an empty chunk reads like an empty prompt
    cut = tokenize(tok, ["x" * 200], 150)[0]
    assert cut[0, -1] == eos and cut[1, -1] == eos  # a cut-off chunk still ends with <EOS>


def test_merged_chunks_keep_first_bos_inner_tokens_and_last_vector():
    hidden = torch.arange(3 * 77, dtype=torch.float32).reshape(3, 77, 1)  # one caption, three chunks
    merged = merge_chunks(hidden, 1, 225)[0, :, 0]
    assert merged.shape[0] == 227
    assert merged[0] == 0 and merged[1] == 1 and merged[75] == 75 and merged[76] == 78 and merged[-1] == 230


# Worked by hand from sd-scripts' BucketManager.get_crop_ltrb (the image fitted inside the bucket, offsets
# floored) and the flipped branch of BaseDataset.__getitem__ (left = bucket width - crop right).
@pytest.mark.parametrize("original_hw,bucket_hw,flipped,expected", [
    ((600, 800), (448, 640), False, (0, 21)),  # bucket wider: width 448*4/3 = 597.3, left (640-597.3)//2
    ((800, 600), (640, 448), False, (21, 0)),  # bucket taller: height 597.3, top 21
    ((512, 1000), (512, 960), False, (10, 0)),  # height 960/1.953 = 491.5, top 10
    ((448, 597), (448, 640), False, (0, 21)),  # width exactly 597: left 43//2 = 21 ...
    ((448, 597), (448, 640), True, (0, 22)),  # ... mirrored: 640 - (21 + 597) = 22
    ((1000, 512), (1024, 512), True, (12, 0)),
])
def test_time_ids_equal_sd_scripts_values(original_hw, bucket_hw, flipped, expected):
    assert sd_scripts_crop_top_left(original_hw, bucket_hw, flipped) == expected
    batch = {"original_size": torch.tensor([original_hw]), "target_size": torch.tensor([bucket_hw]),
             "flipped": torch.tensor([flipped])}
    assert time_ids(batch).tolist() == [[*original_hw, *expected, *bucket_hw]]
