"""load_sd15 / load_sdxl / load_flux: the parts training needs, and errors that say what to do instead."""

from __future__ import annotations

import json

import pytest
import torch
from diffusers import DDPMScheduler, FlowMatchEulerDiscreteScheduler
from safetensors.torch import save_file

from trainer.models.detect import ModelFormatError
from trainer.models.hub import ModelSourceError
from trainer.models.loading import WrongModelError, load_flux, load_sd15, load_sdxl, load_vae
from trainer.models.tiny import save_tiny


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {family: save_tiny(family, root / family) for family in ("sd15", "sdxl", "flux")}


def test_sd15_parts_train_with_ddpm_from_the_models_schedule(models, tmp_path):
    parts = load_sd15(str(models["sd15"]), cache_dir=tmp_path)
    assert isinstance(parts.noise_scheduler, DDPMScheduler)  # the folder ships PNDM for sampling
    assert parts.noise_scheduler.config.beta_schedule == "scaled_linear"
    assert parts.noise_scheduler.config.beta_end == 0.012
    ids = parts.tokenizer("a cat", padding="max_length", max_length=77, return_tensors="pt").input_ids
    hidden = parts.text_encoder(ids)[0]
    latents = parts.vae.encode(torch.zeros(1, 3, 64, 64)).latent_dist.mean
    noise_pred = parts.unet(latents, torch.tensor([500]), hidden).sample
    assert noise_pred.shape == latents.shape == (1, 4, 32, 32)
    assert (parts.family, parts.source_path) == ("sd15", models["sd15"])


def test_dtype_is_applied(models, tmp_path):
    parts = load_sd15(str(models["sd15"]), cache_dir=tmp_path, dtype=torch.bfloat16)
    assert parts.unet.dtype == parts.text_encoder.dtype == torch.bfloat16


def test_sdxl_parts(models, tmp_path):
    parts = load_sdxl(str(models["sdxl"]), cache_dir=tmp_path)
    assert isinstance(parts.noise_scheduler, DDPMScheduler)
    assert parts.unet.config.addition_embed_type == "text_time"
    assert parts.text_encoder_2.config.projection_dim == 32 and parts.tokenizer_2 is not None


def test_flux_parts(models, tmp_path):
    parts = load_flux(str(models["flux"]), cache_dir=tmp_path)
    assert isinstance(parts.noise_scheduler, FlowMatchEulerDiscreteScheduler)
    assert parts.noise_scheduler.config.use_dynamic_shifting
    assert parts.transformer.config.joint_attention_dim == parts.text_encoder_2.config.d_model
    assert parts.tokenizer_2("ok").input_ids[-1] == parts.tokenizer_2.eos_token_id


@pytest.mark.parametrize("given, loader, message", [
    ("sdxl", load_sd15, "is an SDXL model: choose the SDXL model type in the Expert tab"),
    ("flux", load_sd15, "is a Flux model: train it in the Flux tab"),
    ("sd15", load_sdxl, "is an SD1.5 model"),
    ("sd15", load_flux, "is an SD1.5 model"),
])
def test_wrong_family_says_which_it_is_and_where_to_go(models, tmp_path, given, loader, message):
    with pytest.raises(WrongModelError, match=message):
        loader(str(models[given]), cache_dir=tmp_path)


def test_sd2_is_refused(models, tmp_path):
    sd2 = tmp_path / "sd2"
    save_tiny("sd15", sd2)
    config = json.loads((sd2 / "unet" / "config.json").read_text())
    (sd2 / "unet" / "config.json").write_text(json.dumps({**config, "cross_attention_dim": 1024}))
    with pytest.raises(WrongModelError, match="SD 2.x"):
        load_sd15(str(sd2), cache_dir=tmp_path)


def test_lora_given_as_base_model(tmp_path):
    lora = tmp_path / "my_lora.safetensors"
    save_file({"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": torch.zeros(4, 32)}, str(lora))
    with pytest.raises(WrongModelError, match="my_lora.safetensors is a LoRA.*network_weights.*comparison grid"):
        load_sd15(str(lora), cache_dir=tmp_path)


def test_missing_base_model_is_named(tmp_path):
    with pytest.raises(ModelSourceError, match="not_here.safetensors"):
        load_sd15(str(tmp_path / "not_here.safetensors"), cache_dir=tmp_path)


def test_single_file_flux_is_not_supported_yet(tmp_path):
    flux = tmp_path / "flux1.safetensors"
    save_file({"double_blocks.0.img_attn.qkv.weight": torch.zeros(1)}, str(flux))
    with pytest.raises(WrongModelError, match="single-file Flux.*FLUX.1-dev"):
        load_flux(str(flux), cache_dir=tmp_path)


def test_a_torn_single_file_sdxl_is_named_with_the_fix(tmp_path):
    xl = tmp_path / "xl.safetensors"
    save_file({"conditioner.embedders.0.transformer.text_model.final_layer_norm.weight": torch.zeros(1)}, str(xl))
    with pytest.raises(ModelFormatError, match="(?s)xl.safetensors: could not load the model.*download the model again"):
        load_sdxl(str(xl), cache_dir=tmp_path)


def test_vae_folder_without_config_is_explained(tmp_path):
    (tmp_path / "novae").mkdir()
    with pytest.raises(WrongModelError, match="novae has no config.json"):
        load_vae(str(tmp_path / "novae"), cache_dir=tmp_path)


def test_folder_with_missing_weights_names_the_folder(tmp_path):
    broken = save_tiny("sd15", tmp_path / "broken")
    (broken / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(ModelFormatError, match="broken: could not load the model.*download the model again"):
        load_sd15(str(broken), cache_dir=tmp_path)
