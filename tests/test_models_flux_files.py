"""Flux from the separate files users download: a BFL transformer file (also fp8-stored), ae, clip_l and t5xxl,
loaded offline through diffusers' single-file loaders with local configs; dev/schnell told apart; clear errors
for a missing part or a file of another kind."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from safetensors.torch import save_file

from tests.flux_files import write_flux_files
from trainer.models.detect import ModelFormatError
from trainer.models.flux_single_file import CONFIG_ROOT, check_files, load_flux_files, variant_of


def model_cfg(files: dict, **over) -> SimpleNamespace:
    base = {"base_model": str(files["flux1"]), "ae": str(files["ae"]), "clip_l": str(files["clip_l"]),
            "t5xxl": str(files["t5xxl"])}
    return SimpleNamespace(**{**base, **over})


@pytest.mark.slow  # ~480M parameters: diffusers' converter needs FLUX.1's real block width
def test_fp8_stored_bfl_transformer_and_separate_files_load_offline_equal_to_the_source(tmp_path, offline):
    files = write_flux_files(tmp_path / "f", dev=True, fp8=True)
    assert not (files["configs"] / "tokenizer_2").exists()  # T5's tokenizer comes from what Danlu ships
    parts = load_flux_files(model_cfg(files), config_root=files["configs"], dtype=torch.bfloat16)
    source = files["pipe"]
    pairs = {"transformer": (parts.transformer, source.transformer, torch.float8_e4m3fn),
             "vae": (parts.vae, source.vae, torch.bfloat16), "clip_l": (parts.text_encoder, source.text_encoder,
                                                                        torch.bfloat16),
             "t5xxl": (parts.text_encoder_2, source.text_encoder_2, torch.bfloat16)}
    for name, (loaded, original, stored) in pairs.items():
        got, want = loaded.state_dict(), original.state_dict()
        assert got.keys() == want.keys(), name
        for key, value in want.items():  # what the file stored, computed in bf16
            assert torch.equal(got[key].float(), value.to(stored).float()), (name, key)
    assert parts.transformer.config.guidance_embeds is True
    assert parts.transformer.dtype == torch.bfloat16
    assert parts.noise_scheduler.config.use_dynamic_shifting is True
    assert len(parts.tokenizer_2) == 32100
    assert parts.tokenizer_2("Das Haus ist wunderbar.").input_ids == [644, 4598, 229, 19250, 5, 1]


def _keys_only(path: Path, keys: list[str]) -> Path:
    save_file({k: torch.zeros(1) for k in keys}, str(path))
    return path


def test_dev_and_schnell_are_told_apart_by_the_guidance_embedder(tmp_path):
    dev = _keys_only(tmp_path / "dev.safetensors", ["double_blocks.0.img_attn.qkv.weight", "guidance_in.in_layer.weight"])
    schnell = _keys_only(tmp_path / "schnell.safetensors", ["double_blocks.0.img_attn.qkv.weight"])
    assert (variant_of(dev), variant_of(schnell)) == ("dev", "schnell")


@pytest.mark.parametrize("part", ["ae", "clip_l", "t5xxl"])
def test_a_missing_part_is_named_with_the_field_and_what_it_should_be(tmp_path, part):
    flux = _keys_only(tmp_path / "flux1-dev.safetensors", ["double_blocks.0.img_attn.qkv.weight"])
    others = {n: str(_keys_only(tmp_path / f"{n}.safetensors", ["x"])) for n in ("ae", "clip_l", "t5xxl")}
    with pytest.raises(ModelFormatError, match=f"model.{part} is empty"):
        check_files(SimpleNamespace(base_model=str(flux), **{**others, part: ""}))
    with pytest.raises(FileNotFoundError, match=f"model.{part}: .*does not exist"):
        check_files(SimpleNamespace(base_model=str(flux), **{**others, part: str(tmp_path / "gone.safetensors")}))


def test_a_file_of_another_family_or_a_vae_as_the_transformer_is_refused_by_name(tmp_path):
    sd = _keys_only(tmp_path / "sd15.safetensors", ["model.diffusion_model.input_blocks.0.0.weight"])
    with pytest.raises(ModelFormatError, match="'sd15' model, not a Flux transformer"):
        check_files(SimpleNamespace(base_model=str(sd), ae="", clip_l="", t5xxl=""))
    ae = _keys_only(tmp_path / "ae.safetensors", ["encoder.conv_in.weight"])
    with pytest.raises(ModelFormatError, match="is a VAE"):
        check_files(SimpleNamespace(base_model=str(ae), ae="", clip_l="", t5xxl=""))


def test_shipped_configs_describe_full_size_flux_dev_and_schnell():
    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from transformers import CLIPTextConfig, T5Config

    for variant, guidance in (("dev", True), ("schnell", False)):
        config = FluxTransformer2DModel.load_config(CONFIG_ROOT / f"transformer_{variant}")
        assert config["guidance_embeds"] is guidance
        assert config["num_attention_heads"] * config["attention_head_dim"] == 3072
        assert (config["num_layers"], config["num_single_layers"], config["in_channels"]) == (19, 38, 64)
    vae = AutoencoderKL.load_config(CONFIG_ROOT / "vae")
    assert (vae["latent_channels"], vae["scaling_factor"], vae["shift_factor"]) == (16, 0.3611, 0.1159)
    assert T5Config.from_pretrained(CONFIG_ROOT / "text_encoder_2").d_model == 4096
    assert CLIPTextConfig.from_pretrained(CONFIG_ROOT / "text_encoder").hidden_size == 768
