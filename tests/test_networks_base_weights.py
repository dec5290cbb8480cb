"""base_weights: a LoRA or LyCORIS file merged into the base model computes what the file computes as an adapter."""

from __future__ import annotations

import pytest
import torch

from tests.test_networks_lycoris import _build, _forward, _train_a_little
from trainer.models.tiny import build_tiny_sd15, build_tiny_sdxl
from trainer.networks.base_weights import merge_base_weights
from trainer.networks.inject import add_lora
from trainer.networks.save import save_lora


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
@pytest.mark.parametrize("algo", ["lora", "locon", "loha", "lokr"])
def test_merged_file_equals_the_file_as_adapter(tmp_path, family, algo):
    build = build_tiny_sd15 if family == "sd15" else build_tiny_sdxl
    if algo == "lora":
        pipe = build(seed=0)
        tes = [pipe.text_encoder] if family == "sd15" else [pipe.text_encoder, pipe.text_encoder_2]
        net = add_lora(pipe.unet, tes, dim=4, alpha=2.0, conv_dim=2, conv_alpha=1.0)
    else:
        pipe, net = _build(family, algo)
    _train_a_little(net)
    with_adapter = _forward(pipe, family)
    path = save_lora(tmp_path / "a.safetensors", net.kohya_state_dict(family), {}, precision="float")

    base = build(seed=0)
    base_out = _forward(base, family)
    tes = [base.text_encoder] if family == "sd15" else [base.text_encoder, base.text_encoder_2]
    lines = merge_base_weights([str(path)], [1.0], base.unet, tes, family)
    assert "a.safetensors" in lines[0]
    merged = _forward(base, family)
    assert not torch.allclose(merged, base_out, atol=1e-4)
    torch.testing.assert_close(merged, with_adapter, atol=2e-4, rtol=1e-3)

    half = build(seed=0)  # the multiplier scales each kind's merge as it scales the adapter
    half_tes = [half.text_encoder] if family == "sd15" else [half.text_encoder, half.text_encoder_2]
    merge_base_weights([str(path)], [0.5], half.unet, half_tes, family)
    net.set_scale(0.5)
    torch.testing.assert_close(_forward(half, family), _forward(pipe, family), atol=2e-4, rtol=1e-3)


def test_multiplier_scales_the_merge_and_a_foreign_file_is_named(tmp_path):
    pipe = build_tiny_sd15(seed=0)
    net = add_lora(pipe.unet, [pipe.text_encoder], dim=4, alpha=2.0)
    _train_a_little(net)
    path = save_lora(tmp_path / "a.safetensors", net.kohya_state_dict("sd15"), {}, precision="float")
    half, full = build_tiny_sd15(seed=0), build_tiny_sd15(seed=0)
    merge_base_weights([str(path)], [0.5], half.unet, [half.text_encoder], "sd15")
    merge_base_weights([str(path)], [], full.unet, [full.text_encoder], "sd15")  # missing multiplier: 1
    net.set_scale(0.5)
    torch.testing.assert_close(_forward(half, "sd15"), _forward(pipe, "sd15"), atol=2e-4, rtol=1e-3)
    assert not torch.allclose(_forward(full, "sd15"), _forward(half, "sd15"), atol=1e-4)

    xl = build_tiny_sdxl(seed=0)
    xl_net = add_lora(xl.unet, [xl.text_encoder, xl.text_encoder_2], dim=2, alpha=1.0)
    xl_path = save_lora(tmp_path / "xl.safetensors", xl_net.kohya_state_dict("sdxl"), {}, precision="float")
    with pytest.raises(ValueError, match=r"xl\.safetensors names .* layers this sd15 model does not have"):
        merge_base_weights([str(xl_path)], [1.0], build_tiny_sd15(seed=0).unet, [pipe.text_encoder], "sd15")


def test_files_that_cannot_be_merged_exactly_are_refused_by_name(tmp_path):
    base = build_tiny_sd15(seed=0)
    for algo, args, words in (("ia3", [], "IA3 module"), ("loha", ["dora_wd=True"], "DoRA")):
        _, net = _build("sd15", algo, network_args=["preset=attn-mlp", *args])
        path = save_lora(tmp_path / f"{algo}.safetensors", net.kohya_state_dict("sd15"), {}, precision="float")
        with pytest.raises(ValueError, match=f"{algo}.safetensors.*{words}"):
            merge_base_weights([str(path)], [1.0], base.unet, [base.text_encoder], "sd15")
