"""detect_family reads only keys/configs and names every family; unknown input gets a clear error."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from trainer.models.detect import ModelFormatError, detect_family
from trainer.models.sd15_single_file import sd15_to_ldm_state_dict
from trainer.models.tiny import build_tiny_sd15, save_tiny


@pytest.fixture(scope="module")
def tiny_ldm():
    pipe = build_tiny_sd15(four_level=True)
    return sd15_to_ldm_state_dict(pipe.unet, pipe.vae, pipe.text_encoder)


def _file(tmp_path, name, state):
    path = tmp_path / name
    save_file({k: v.clone() for k, v in state.items()}, str(path))  # clone: safetensors refuses shared tensors
    return path


@pytest.mark.parametrize("family", ["sd15", "sdxl", "flux"])
def test_diffusers_folders(tmp_path, family):
    assert detect_family(save_tiny(family, tmp_path / family)) == family


def test_sd2_folder_is_told_apart_by_its_text_width(tmp_path):
    folder = save_tiny("sd15", tmp_path / "m")
    config_path = folder / "unet" / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "cross_attention_dim": 1024}))
    assert detect_family(folder) == "sd2"


def test_tiny_sd15_single_file_and_ckpt(tmp_path, tiny_ldm):
    assert detect_family(_file(tmp_path, "m.safetensors", tiny_ldm)) == "sd15"
    torch.save({"state_dict": tiny_ldm, "global_step": 1}, tmp_path / "m.ckpt")
    assert detect_family(tmp_path / "m.ckpt") == "sd15"


def test_sd2_single_file_by_openclip_or_width(tmp_path, tiny_ldm):
    openclip = {**tiny_ldm, "cond_stage_model.model.token_embedding.weight": torch.zeros(1)}
    assert detect_family(_file(tmp_path, "a.safetensors", openclip)) == "sd2"
    key = "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"
    wide = {**tiny_ldm, key: torch.zeros(8, 1024)}
    assert detect_family(_file(tmp_path, "b.safetensors", wide)) == "sd2"


def test_sdxl_single_files(tmp_path):
    # SGM layout: a full checkpoint has conditioner.embedders; a U-Net-only file has label_emb.
    full = {"conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias": torch.zeros(1),
            "model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1)}
    unet_only = {"model.diffusion_model.label_emb.0.0.weight": torch.zeros(1),
                 "model.diffusion_model.input_blocks.0.0.weight": torch.zeros(1)}
    assert detect_family(_file(tmp_path, "xl.safetensors", full)) == "sdxl"
    assert detect_family(_file(tmp_path, "xl_unet.safetensors", unet_only)) == "sdxl"


def test_flux_single_files_with_and_without_prefix(tmp_path):
    assert detect_family(_file(tmp_path, "f.safetensors", {"double_blocks.0.img_attn.qkv.weight": torch.zeros(1)})) == "flux"
    prefixed = {"model.diffusion_model.double_blocks.0.img_attn.qkv.weight": torch.zeros(1)}
    assert detect_family(_file(tmp_path, "g.safetensors", prefixed)) == "flux"


@pytest.mark.parametrize("key", [
    "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight",
    "lora_te_text_model_encoder_layers_0_self_attn_q_proj.hada_w1_a",
    "unet.down_blocks.0.attentions.0.proj_in.lora_A.weight",
    "transformer.single_transformer_blocks.0.proj_out.lora_B.weight",
])
def test_lora_files(tmp_path, key):
    assert detect_family(_file(tmp_path, "l.safetensors", {key: torch.zeros(1)})) == "lora"


def test_vae_file_is_refused_with_a_pointer_to_the_vae_field(tmp_path, tiny_ldm):
    vae = {k.removeprefix("first_stage_model."): v for k, v in tiny_ldm.items() if k.startswith("first_stage")}
    with pytest.raises(ModelFormatError, match="is a VAE.*VAE field"):
        detect_family(_file(tmp_path, "vae.safetensors", vae))


def test_unknown_and_broken_inputs_name_the_file(tmp_path):
    with pytest.raises(ModelFormatError, match="unknown.safetensors: unknown model layout"):
        detect_family(_file(tmp_path, "unknown.safetensors", {"foo.weight": torch.zeros(1)}))
    (tmp_path / "torn.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ModelFormatError, match="torn.safetensors.*download it again"):
        detect_family(tmp_path / "torn.safetensors")
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(ModelFormatError, match="notes.txt: not a model file"):
        detect_family(tmp_path / "notes.txt")
    with pytest.raises(FileNotFoundError, match="nowhere.safetensors"):
        detect_family(tmp_path / "nowhere.safetensors")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFormatError, match="no model_index.json"):
        detect_family(tmp_path / "empty")
