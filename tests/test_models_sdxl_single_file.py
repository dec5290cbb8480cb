"""SDXL single files (SGM layout, as Illustrious/Pony/NoobAI ship): written by Danlu, read back offline by diffusers
with configs and tokenizers from a local folder, identical to the diffusers folder; the shipped SDXL configs."""

from __future__ import annotations

import json

import pytest
import torch
from accelerate import init_empty_weights
from diffusers import UNet2DConditionModel
from safetensors import safe_open
from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPTokenizer

from trainer.models.detect import detect_family
from trainer.models.loading import SDXL_CONFIG, WrongModelError, load_sdxl
from trainer.models.tiny import save_tiny


@pytest.fixture(scope="module")
def tiny_single(tmp_path_factory):
    root = tmp_path_factory.mktemp("single-xl")
    return save_tiny("sdxl", root / "tinyxl", seed=3, single_file=True), root / "tinyxl"


def test_single_file_has_sgm_names_and_loads_offline_identical_to_the_folder(tiny_single, tmp_path, offline):
    file, folder = tiny_single
    assert detect_family(file) == "sdxl"
    with safe_open(str(file), "pt") as f:
        keys = set(f.keys())
    assert "model.diffusion_model.label_emb.0.0.weight" in keys
    assert "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn1.to_q.weight" in keys
    assert "conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_weight" in keys
    assert "conditioner.embedders.0.transformer.text_model.encoder.layers.0.mlp.fc1.weight" in keys
    from_file = load_sdxl(str(file), cache_dir=tmp_path, config=folder)
    from_folder = load_sdxl(str(folder), cache_dir=tmp_path)
    for part in ("unet", "vae", "text_encoder", "text_encoder_2"):
        a, b = getattr(from_file, part).state_dict(), getattr(from_folder, part).state_dict()
        assert a.keys() == b.keys(), part
        for k in a:
            assert torch.equal(a[k], b[k]), (part, k)
    assert from_file.tokenizer_2.pad_token == "!" and from_file.tokenizer.pad_token == "<|endoftext|>"


def test_an_sd15_file_given_as_sdxl_says_where_to_train_it(tmp_path):
    file = save_tiny("sd15", tmp_path / "tiny15", single_file=True)
    with pytest.raises(WrongModelError, match="is an SD1.5 model"):
        load_sdxl(str(file), cache_dir=tmp_path)


def test_shipped_sdxl_configs_have_the_sdxl_base_architecture():
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(SDXL_CONFIG / "unet"))
        te2 = CLIPTextModelWithProjection(CLIPTextConfig.from_pretrained(SDXL_CONFIG / "text_encoder_2"))
    # Public parameter counts of SDXL base 1.0: U-Net 2.567 B, OpenCLIP bigG text encoder 0.695 B.
    assert round(sum(p.numel() for p in unet.parameters()) / 1e9, 3) == 2.567
    assert round(sum(p.numel() for p in te2.parameters()) / 1e9, 3) == 0.695
    assert unet.config.cross_attention_dim == 768 + 1280 and unet.config.addition_embed_type == "text_time"
    index = json.loads((SDXL_CONFIG / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionXLPipeline"


def test_shipped_tokenizers_are_clip_bpe_with_bigg_padding_with_bang():
    one = CLIPTokenizer.from_pretrained(str(SDXL_CONFIG / "tokenizer"))
    two = CLIPTokenizer.from_pretrained(str(SDXL_CONFIG / "tokenizer_2"))
    assert len(one) == len(two) == 49408
    assert one("a photo of a cat").input_ids == two("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320,
                                                                                      2368, 49407]
    assert one.pad_token_id == 49407 and two.pad_token_id == 0  # "!" is token 0
