"""SD1.5 original-layout single files: written by Danlu, read back by diffusers, identical to the folder."""

from __future__ import annotations

import pytest
import torch
from accelerate import init_empty_weights
from diffusers import AutoencoderKL, UNet2DConditionModel
from diffusers.loaders.single_file_utils import (
    convert_ldm_clip_checkpoint,
    convert_ldm_unet_checkpoint,
    convert_ldm_vae_checkpoint,
)
from safetensors.torch import load_file, save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from trainer.models.detect import ModelFormatError, detect_family, family_from_keys
from trainer.models.loading import SD15_CONFIG, load_sd15, load_vae
from trainer.models.sd15_single_file import text_encoder_to_ldm, unet_to_ldm, vae_to_ldm
from trainer.models.tiny import save_tiny


@pytest.fixture(scope="module")
def tiny_single(tmp_path_factory):
    root = tmp_path_factory.mktemp("single")
    file = save_tiny("sd15", root / "tiny4", seed=3, single_file=True)
    return file, root / "tiny4"


def _unet_out(unet):
    torch.manual_seed(0)
    latents, text = torch.randn(2, 4, 8, 8), torch.randn(2, 77, 32)
    with torch.no_grad():
        return unet(latents, torch.tensor([10, 900]), text).sample


def test_single_file_round_trip_matches_the_folder(tiny_single, tmp_path):
    file, folder = tiny_single
    assert file.parent == folder.parent and file.suffix == ".safetensors"
    assert detect_family(file) == "sd15"
    from_folder = load_sd15(str(folder), cache_dir=tmp_path)
    from_file = load_sd15(str(file), cache_dir=tmp_path, config=folder)
    for name in ("unet", "vae", "text_encoder"):
        a, b = getattr(from_folder, name).state_dict(), getattr(from_file, name).state_dict()
        assert a.keys() == b.keys()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    torch.testing.assert_close(_unet_out(from_file.unet), _unet_out(from_folder.unet))
    assert from_file.tokenizer("a cat").input_ids == from_folder.tokenizer("a cat").input_ids
    assert from_file.noise_scheduler.config.num_train_timesteps == 1000
    assert from_file.source_path == file


def test_single_file_uses_original_key_names(tiny_single):
    keys = set(load_file(str(tiny_single[0])))
    assert "model.diffusion_model.output_blocks.11.0.skip_connection.weight" in keys  # diffusers' v1 marker
    assert "first_stage_model.decoder.up.3.upsample.conv.weight" in keys
    assert "cond_stage_model.transformer.text_model.final_layer_norm.weight" in keys
    assert not any(k.startswith(("unet.", "down_blocks", "vae.")) for k in keys)


@pytest.mark.parametrize("prefixed", [True, False])
def test_single_vae_file_loads_with_and_without_prefix(tiny_single, tmp_path, prefixed):
    file, folder = tiny_single
    state = load_file(str(file))
    vae_state = {(k if prefixed else k.removeprefix("first_stage_model.")): v
                 for k, v in state.items() if k.startswith("first_stage_model.")}
    save_file(vae_state, str(tmp_path / "vae.safetensors"))
    vae = load_vae(str(tmp_path / "vae.safetensors"), cache_dir=tmp_path, config=folder)
    expected = AutoencoderKL.from_pretrained(folder, subfolder="vae").state_dict()
    assert all(torch.equal(v, expected[k]) for k, v in vae.state_dict().items())


def test_vae_override_replaces_the_models_vae(tiny_single, tmp_path):
    file, folder = tiny_single
    other = tmp_path / "other"
    save_tiny("sd15", other, seed=9, single_file=True)
    parts = load_sd15(str(file), cache_dir=tmp_path, config=folder, vae=str(other / "vae"))
    assert torch.equal(parts.vae.encoder.conv_in.weight,
                       AutoencoderKL.from_pretrained(other / "vae").encoder.conv_in.weight)


def test_real_sd15_configs_have_the_sd15_architecture_and_convert_both_ways():
    with init_empty_weights():
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(SD15_CONFIG, subfolder="unet"))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(SD15_CONFIG, subfolder="vae"))
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(SD15_CONFIG, subfolder="text_encoder"))
    # Parameter counts of the published SD1.5 U-Net, VAE and CLIP ViT-L/14 text encoder.
    assert sum(p.numel() for p in unet.parameters()) == 859_520_964
    assert sum(p.numel() for p in vae.parameters()) == 83_653_863
    assert sum(p.numel() for p in text.parameters()) == 123_060_480
    ldm = {**unet_to_ldm(unet), **vae_to_ldm(vae), **text_encoder_to_ldm(text)}
    assert family_from_keys({k: tuple(v.shape) for k, v in ldm.items()}) == "sd15"
    # diffusers' own original->diffusers converters map every name back to the module it came from.
    assert set(convert_ldm_unet_checkpoint(ldm, unet.config)) == set(unet.state_dict())
    assert set(convert_ldm_vae_checkpoint(ldm, vae.config)) == set(vae.state_dict())
    assert {"text_model." + k for k in text.state_dict()} == set(convert_ldm_clip_checkpoint(ldm))


def test_shipped_clip_tokenizer_is_clip_vit_l():
    tok = CLIPTokenizer.from_pretrained(str(SD15_CONFIG / "tokenizer"))
    assert len(tok) == 49408 and tok.model_max_length == 77
    # Token ids of OpenAI's CLIP tokenizer (lower-cased; "a</w>" is 320, "photo</w>" 1125, "cat</w>" 2368).
    assert tok("A photo of a CAT").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_single_file_without_a_text_encoder_is_explained(tiny_single, tmp_path):
    file, folder = tiny_single
    unet_and_vae = {k: v for k, v in load_file(str(file)).items() if not k.startswith("cond_stage_model.")}
    save_file(unet_and_vae, str(tmp_path / "no_te.safetensors"))
    with pytest.raises(ModelFormatError, match="no_te.safetensors: could not load the model"):
        load_sd15(str(tmp_path / "no_te.safetensors"), cache_dir=tmp_path, config=folder)
