"""Injecting adapters: what trains, separate parameter groups, scale, LoCon ranks, continuing from a file."""

from __future__ import annotations

import pytest
import torch

from trainer.models.tiny import build_tiny_sd15
from trainer.networks.inject import add_lora
from trainer.networks.kohya_format import to_kohya_state_dict
from trainer.networks.save import save_lora


def _inputs(pipe, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    latents = torch.randn(2, 4, 8, 8, generator=gen)  # smallest size the 2-level U-Net takes
    ids = pipe.tokenizer(["a red circle", "a blue square"], padding="max_length", max_length=77,
                         return_tensors="pt").input_ids
    return latents, ids


def _forward(pipe, latents, ids):
    hidden = pipe.text_encoder(ids)[0]
    return pipe.unet(latents, torch.tensor([10, 500]), hidden).sample


def _lora(pipe, **kw):
    args = dict(dim=4, alpha=2.0, dropout=0.0, train_unet=True, train_text_encoder=True) | kw
    return add_lora(pipe.unet, [pipe.text_encoder], **args)


def test_only_lora_params_train():
    pipe = build_tiny_sd15(seed=0)
    lora = _lora(pipe)
    base_before = {n: p.detach().clone() for n, p in pipe.unet.named_parameters() if "lora_" not in n}
    te_before = {n: p.detach().clone() for n, p in pipe.text_encoder.named_parameters() if "lora_" not in n}
    trainable = [n for m in (pipe.unet, pipe.text_encoder) for n, p in m.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)

    opt = torch.optim.AdamW([{"params": lora.unet_params(), "lr": 1e-2},
                             {"params": lora.text_encoder_params(), "lr": 1e-2}])
    latents, ids = _inputs(pipe)
    for _ in range(2):  # the first step moves only lora_B (lora_A's grad is zero while B is zero)
        loss = _forward(pipe, latents, ids).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    for n, p in pipe.unet.named_parameters():
        if n in base_before:
            assert torch.equal(p, base_before[n]), n
    for n, p in pipe.text_encoder.named_parameters():
        if n in te_before:
            assert torch.equal(p, te_before[n]), n
    ups = [layer.lora_B[lora.adapter_name].weight for c in lora.models for layer in lora.layers(c).values()]
    assert all(up.abs().sum() > 0 for up in ups)


def test_param_groups_are_disjoint_and_complete():
    pipe = build_tiny_sd15(seed=0)
    lora = _lora(pipe)
    unet_ids = {id(p) for p in lora.unet_params()}
    te_ids = {id(p) for p in lora.text_encoder_params()}
    assert unet_ids and te_ids and not unet_ids & te_ids
    assert unet_ids == {id(p) for p in pipe.unet.parameters() if p.requires_grad}
    assert te_ids == {id(p) for p in pipe.text_encoder.parameters() if p.requires_grad}
    state = lora.state_dict()  # peft-format weights, for training-state checkpoints
    modules = sum(len(lora.layers(c)) for c in lora.models)
    assert len(state) == 2 * modules and all(".lora_A." in k or ".lora_B." in k for k in state)
    assert {k.split(".")[0] for k in state} == {"unet", "text_encoder"}


def test_unet_only_leaves_text_encoder_frozen_and_unadapted():
    pipe = build_tiny_sd15(seed=0)
    lora = _lora(pipe, train_text_encoder=False)
    assert lora.text_encoder_params() == []
    assert not any(p.requires_grad for p in pipe.text_encoder.parameters())
    assert not any(k.startswith("lora_te") for k in to_kohya_state_dict(lora))


def test_scale_follows_alpha_over_rank():
    pipe = build_tiny_sd15(seed=0)
    latents, ids = _inputs(pipe)
    with torch.no_grad():
        base = _forward(pipe, latents, ids)
    lora = _lora(pipe, dim=4, alpha=2.0)
    with torch.no_grad():
        assert torch.allclose(_forward(pipe, latents, ids), base, atol=1e-6)  # up starts at zero
        for c in lora.models:
            for layer in lora.layers(c).values():
                assert layer.scaling[lora.adapter_name] == pytest.approx(2.0 / 4)
                layer.lora_B[lora.adapter_name].weight.normal_()
        assert not torch.allclose(_forward(pipe, latents, ids), base, atol=1e-3)
        lora.set_scale(0.0)
        assert torch.allclose(_forward(pipe, latents, ids), base, atol=1e-6)
        lora.set_scale(0.5)
        assert all(layer.scaling[lora.adapter_name] == pytest.approx(0.5 * 2.0 / 4)
                   for layer in lora.layers("unet").values())


def test_locon_convs_get_their_own_rank_and_alpha():
    pipe = build_tiny_sd15(seed=0)
    lora = _lora(pipe, dim=4, alpha=2.0, conv_dim=3, conv_alpha=1.0)
    sd = to_kohya_state_dict(lora)
    conv1 = "lora_unet_down_blocks_0_resnets_0_conv1"
    base = pipe.unet.down_blocks[0].resnets[0].conv1.base_layer
    assert sd[f"{conv1}.lora_down.weight"].shape == (3, base.in_channels, 3, 3)
    assert sd[f"{conv1}.lora_up.weight"].shape == (base.out_channels, 3, 1, 1)
    assert sd[f"{conv1}.alpha"].item() == 1.0
    assert "lora_unet_down_blocks_0_downsamplers_0_conv.alpha" in sd
    assert sd["lora_unet_down_blocks_0_attentions_0_proj_in.alpha"].item() == 2.0
    assert not any("conv_in" in k or "conv_out" in k for k in sd)
    plain = to_kohya_state_dict(_lora(build_tiny_sd15(seed=0)))
    assert not any("resnets" in k or "samplers" in k for k in plain)


def _trained_file(tmp_path, **kw):
    pipe = build_tiny_sd15(seed=0)
    lora = _lora(pipe, **kw)
    with torch.no_grad():
        for c in lora.models:
            for layer in lora.layers(c).values():
                layer.lora_B[lora.adapter_name].weight.normal_()
    path = save_lora(tmp_path / "prev.safetensors", to_kohya_state_dict(lora), {}, precision="float")
    return pipe, path


def test_load_kohya_continues_from_a_file(tmp_path):
    trained, path = _trained_file(tmp_path, alpha=3.0)
    latents, ids = _inputs(trained)
    with torch.no_grad():
        expected = _forward(trained, latents, ids)
    fresh = build_tiny_sd15(seed=0)
    lora = _lora(fresh, alpha=1.0)  # the file's alpha (3.0) wins: the network computes what was saved
    lora.load_kohya(path)
    with torch.no_grad():
        torch.testing.assert_close(_forward(fresh, latents, ids), expected, atol=1e-5, rtol=1e-5)
    assert all(p.requires_grad for p in lora.unet_params())
    assert to_kohya_state_dict(lora)["lora_unet_mid_block_attentions_0_proj_out.alpha"].item() == 3.0


def test_load_kohya_names_dim_mismatch(tmp_path):
    _, path = _trained_file(tmp_path, dim=4)
    lora = _lora(build_tiny_sd15(seed=0), dim=8)
    with pytest.raises(ValueError, match=r"attn1_to_q: file has down/up \(\(4, 32\)") as err:
        lora.load_kohya(path)
    assert "network_dim" in str(err.value)


def test_load_kohya_names_missing_and_unexpected_modules(tmp_path):
    _, path = _trained_file(tmp_path, train_text_encoder=False)
    lora = _lora(build_tiny_sd15(seed=0))
    with pytest.raises(ValueError, match="missing in the file for text_encoder: lora_te_text_model_encoder_layers_0"):
        lora.load_kohya(path)
    _, with_te = _trained_file(tmp_path / "te")
    unet_only = _lora(build_tiny_sd15(seed=0), train_text_encoder=False)
    with pytest.raises(ValueError, match="lora_te_text_model_encoder_layers_0"):
        unet_only.load_kohya(with_te)


def test_nothing_to_train_is_an_error():
    pipe = build_tiny_sd15(seed=0)
    with pytest.raises(ValueError, match="nothing to train"):
        _lora(pipe, train_unet=False, train_text_encoder=False)


def test_network_dropout_drops_rank_activations_as_sd_scripts_does():
    """network_dropout acts on lora_down's output (sd-scripts' neuron dropout), only while training."""
    torch.manual_seed(0)
    pipe = build_tiny_sd15(seed=0)
    lora = add_lora(pipe.unet, [pipe.text_encoder], dim=2, alpha=2.0, dropout=0.5, train_text_encoder=False)
    name, layer = next((n, m) for n, m in lora.layers("unet").items() if isinstance(m.base_layer, torch.nn.Linear))
    down, up = layer.lora_A[lora.adapter_name], layer.lora_B[lora.adapter_name]
    with torch.no_grad():
        up.weight.copy_(torch.randn(up.weight.shape))
    x = torch.randn(1, down.in_features)
    scale = layer.scaling[lora.adapter_name]
    h = torch.nn.functional.linear(x, down.weight)  # the rank activations, without going through the hook
    base, full = layer.base_layer(x), torch.nn.functional.linear(h, up.weight) * scale
    layer.train()
    seen = set()
    for _ in range(30):
        delta = layer(x) - base
        # dropping whole rank activations: the change is one of the 4 masked versions, scaled by 1/(1-p)
        options = [torch.nn.functional.linear(h * torch.tensor(m), up.weight) * 2 * scale
                   for m in ([0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0])]
        match = [i for i, o in enumerate(options) if torch.allclose(delta, o, atol=1e-5)]
        assert match, name
        seen.add(match[0])
    assert len(seen) > 1
    layer.eval()
    assert torch.allclose(layer(x) - base, full, atol=1e-6)
