"""networks.oft on Flux (trainer/networks/oft_flux.py): sd-scripts' oft_flux key layout (`oft_unet_<BFL module>
.oft_blocks.<split>` [dim, split/dim, split/dim] and `.alpha`), the file applied to the fused BFL weights with
sd-scripts' per-split formula (re-written here in plain torch) equal to the trained split Linears, a file that loads
back, what is refused by name, and tiny Flux runs that write, continue and resume it."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from tests.engine_helpers import losses, make_dataset, save_tiny_flux, short_flux_config
from tests.engine_helpers import render_tiny_flux as _render
from trainer.engine.run import train
from trainer.events import read_events
from trainer.models.tiny import build_tiny_flux
from trainer.networks.factory import build_network
from trainer.networks.flux_names import DOUBLE, SINGLE
from trainer.networks.save import read_lora, save_lora

ALPHA = 1e-2


def _net(dim=4, alpha=ALPHA, args=()):
    return SimpleNamespace(network_module="networks.oft", network_dim=dim, network_alpha=alpha,
                           network_args=list(args), conv_dim=0, conv_alpha=1.0, network_dropout=0.0)


def _build(*args, dim=4, seed=0):
    pipe = build_tiny_flux(seed=0, blocks=(1, 1))
    net = build_network(_net(dim=dim, args=args), "flux", pipe.transformer, [pipe.text_encoder])
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():  # OFT starts at the identity: give every block a rotation
            p.normal_(std=0.05)
        net.parameters()[0].mul_(100)  # one split far past its constraint, so the clamp is exercised too
    return pipe, net


def _fused_weights(transformer) -> dict[str, torch.Tensor]:
    """BFL module name (oft_unet_...) -> its fused weight, the diffusers splits stacked as BFL stores them."""
    parts: dict[str, list] = {}
    for prefix, table in (("transformer_blocks.0.", DOUBLE), ("single_transformer_blocks.0.", SINGLE)):
        kind = "double" if table is DOUBLE else "single"
        for leaf, (name, index, n) in table.items():
            parts.setdefault(f"oft_unet_{kind}_blocks_0_{name}", [None] * n)[index] = \
                transformer.get_submodule(prefix + leaf).weight.detach()
    return {name: torch.cat(ws) for name, ws in parts.items()}


def _sd_scripts_apply(weight: torch.Tensor, tensors: dict, name: str) -> torch.Tensor:
    """sd-scripts' OFTModule on a fused Linear: for each split i, in order, Q = B - B^T with norm held to
    alpha * split rows, R = (I + Q)(I - Q)^-1, and each block of the split's rows W_k <- R_k^T W_k."""
    alpha, out, row, i = float(tensors[f"{name}.alpha"]), [], 0, 0
    while f"{name}.oft_blocks.{i}" in tensors:
        blocks = tensors[f"{name}.oft_blocks.{i}"].double()
        k, n, _ = blocks.shape
        q = blocks - blocks.transpose(1, 2)
        norm = q.flatten().norm()
        q = q * ((norm.clamp(max=alpha * k * n) + 1e-8) / (norm + 1e-8))
        eye = torch.eye(n, dtype=q.dtype).expand(k, n, n)
        r = (eye + q) @ torch.linalg.inv(eye - q)
        w = weight[row:row + k * n].double().reshape(k, n, -1)
        out.append(torch.einsum("knm,knp->kmp", r, w).reshape(k * n, -1))
        row, i = row + k * n, i + 1
    assert row == weight.shape[0], f"{name}: the splits cover {row} of {weight.shape[0]} rows"
    return torch.cat(out).float()


def _effective(linear: torch.nn.Linear) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight, bias) the wrapped Linear computes with, measured on the identity and on zero."""
    with torch.no_grad():
        bias = linear(torch.zeros(1, linear.in_features))[0]
        return (linear(torch.eye(linear.in_features)) - bias).T, bias


def test_the_file_has_sd_scripts_oft_flux_layout():
    _, net = _build()
    tensors = net.kohya_state_dict("flux")
    assert set(tensors) == {f"oft_unet_double_blocks_0_{m}.{k}" for m, n in
                            (("img_attn_qkv", 3), ("txt_attn_qkv", 3), ("img_attn_proj", 1), ("txt_attn_proj", 1))
                            for k in ["alpha", *(f"oft_blocks.{i}" for i in range(n))]}  # sd-scripts: attention only
    assert tensors["oft_unet_double_blocks_0_img_attn_qkv.oft_blocks.2"].shape == (4, 8, 8)  # dim blocks of 32/4
    assert float(tensors["oft_unet_double_blocks_0_img_attn_qkv.alpha"]) == pytest.approx(ALPHA)
    everything = build_network(_net(args=["enable_all_linear=True"]), "flux",
                               build_tiny_flux(seed=0).transformer, []).kohya_state_dict("flux")
    linear1 = sorted(k for k in everything if k.startswith("oft_unet_single_blocks_0_linear1."))
    assert linear1 == ["oft_unet_single_blocks_0_linear1.alpha"] + [
        f"oft_unet_single_blocks_0_linear1.oft_blocks.{i}" for i in range(4)]
    assert [tuple(everything[k].shape) for k in linear1[1:]] == [(4, 8, 8)] * 3 + [(4, 32, 32)]  # q, k, v, MLP 128
    assert {k.partition(".")[0] for k in everything} == set(_fused_weights(build_tiny_flux(seed=0).transformer))


@pytest.mark.parametrize("args", [[], ["enable_all_linear=True"]])
def test_sd_scripts_formula_on_the_fused_weights_gives_the_trained_split_linears(args):
    pipe, net = _build(*args)
    tensors = net.kohya_state_dict("flux")
    base = _fused_weights(build_tiny_flux(seed=0, blocks=(1, 1)).transformer)
    rotated = 0
    for prefix, table in (("transformer_blocks.0.", DOUBLE), ("single_transformer_blocks.0.", SINGLE)):
        kind = "double" if table is DOUBLE else "single"
        for name in {f"oft_unet_{kind}_blocks_0_{v[0]}" for v in table.values()} & {k.partition(".")[0] for k in tensors}:
            merged = _sd_scripts_apply(base[name], tensors, name)
            leaves = sorted((i, leaf) for leaf, (bfl, i, _) in table.items() if name.endswith("_" + bfl))
            live = [_effective(pipe.transformer.get_submodule(prefix + leaf)) for _, leaf in leaves]
            torch.testing.assert_close(torch.cat([w for w, _ in live]), merged, atol=1e-5, rtol=1e-5)
            original = [pipe.transformer.get_submodule(prefix + leaf).bias for _, leaf in leaves]
            torch.testing.assert_close(torch.cat([b for _, b in live]), torch.cat(original).detach())  # not rotated
            rotated += int((merged - base[name]).abs().max() > 1e-3)
    assert rotated == len({k.partition(".")[0] for k in tensors})  # every module's rotation is visible


def test_a_saved_file_loads_back_and_reproduces_the_output_and_a_wrong_file_is_refused(tmp_path):
    pipe, net = _build("enable_all_linear=True")
    trained = _render(pipe.transformer)
    path = save_lora(tmp_path / "f.safetensors", net.kohya_state_dict("flux"), {}, precision="float")
    tensors = read_lora(path)[0]
    fresh_pipe = build_tiny_flux(seed=0, blocks=(1, 1))
    fresh = build_network(_net(args=["enable_all_linear=True"]), "flux", fresh_pipe.transformer, [])
    assert fresh.load_weights(tensors, "flux") == []  # the file's alpha is the configured one: nothing to say
    torch.testing.assert_close(_render(fresh_pipe.transformer), trained, atol=1e-5, rtol=1e-5)
    # another configured alpha: the run keeps it as its constraint and saves it, as sd-scripts (and SD OFT) does
    other = build_network(_net(alpha=0.5, args=["enable_all_linear=True"]), "flux",
                          build_tiny_flux(seed=0, blocks=(1, 1)).transformer, [])
    (note,) = other.load_weights(tensors, "flux")
    assert f"{ALPHA:g}" in note and "0.5" in note
    assert float(other.kohya_state_dict()["oft_unet_single_blocks_0_linear1.alpha"]) == pytest.approx(0.5)
    assert all(m.constraint == pytest.approx(0.5 * m.dim) for m in other.network.loras)
    with pytest.raises(ValueError, match="network_dim"):
        build_network(_net(dim=2, args=["enable_all_linear=True"]), "flux",
                      build_tiny_flux(seed=0).transformer, []).load_weights(tensors, "flux")
    with pytest.raises(ValueError, match="does not have"):  # an all-linear file, an attention-only network
        build_network(_net(), "flux", build_tiny_flux(seed=0).transformer, []).load_weights(tensors, "flux")
    lora = {"lora_unet_double_blocks_0_img_attn_proj.lora_down.weight": torch.zeros(4, 32),
            "lora_unet_double_blocks_0_img_attn_proj.lora_up.weight": torch.zeros(32, 4)}
    with pytest.raises(ValueError, match="LoRA.*networks.oft"):
        fresh.load_weights(lora, "flux")


@pytest.mark.parametrize(("net", "t5", "words"), [
    (_net(dim=5), False, ("network.network_dim", "5 does not divide 32", "约数")),
    (_net(args=["enable_conv=True"]), False, ("network.network_args", "enable_conv")),
    (_net(), True, ("flux.train_t5xxl",)),
])
def test_what_flux_oft_cannot_do_is_refused_naming_the_field(net, t5, words):
    from trainer.models.tiny import tiny_t5_encoder

    pipe = build_tiny_flux(seed=0)
    with pytest.raises(ValueError) as err:
        build_network(net, "flux", pipe.transformer, [pipe.text_encoder, tiny_t5_encoder() if t5 else None])
    for word in words:
        assert word in str(err.value)


def test_config_check_takes_networks_oft_for_flux_and_refuses_train_t5xxl(tmp_path):
    from trainer.config import check

    def errors(**over):
        cfg = short_flux_config(tmp_path / "m", tmp_path / "d", network__network_module="networks.oft",
                                network__network_alpha=ALPHA, **{"training__network_train_unet_only": True, **over})
        return [(f.field, f.en) for f in check(cfg, for_training=False) if f.level == "error"]

    assert not errors()
    assert [f for f, _ in errors(flux__train_t5xxl=True, training__network_train_unet_only=False,
                                 speed__cache_text_encoder_outputs=False)] == ["flux.train_t5xxl"]


def test_a_flux_oft_run_writes_sd_scripts_oft_flux_and_continues_from_it(tmp_path):
    model = save_tiny_flux(tmp_path / "model")
    data = make_dataset(tmp_path / "data", n=2)
    common = dict(network__network_module="networks.oft", network__network_alpha=ALPHA,
                  training__network_train_unet_only=True)
    assert train(short_flux_config(model, data, **common), tmp_path / "run") == 0, read_events(tmp_path / "run")[0][-1]
    assert len(losses(tmp_path / "run")) == 3 and all(torch.isfinite(torch.tensor(losses(tmp_path / "run"))))
    tensors, meta = read_lora(tmp_path / "run" / "output" / "t.safetensors")
    assert tensors["oft_unet_double_blocks_0_img_attn_qkv.oft_blocks.1"].abs().max() > 0  # trained
    assert {k.split(".")[1] for k in tensors} == {"oft_blocks", "alpha"}
    assert meta["ss_network_module"] == "networks.oft_flux" and meta["ss_base_model_version"] == "flux1"
    more = short_flux_config(model, data, **common,
                             network__network_weights=str(tmp_path / "run" / "output" / "t.safetensors"))
    assert train(more, tmp_path / "more") == 0, read_events(tmp_path / "more")[0][-1]


def test_a_flux_oft_run_resumed_from_its_state_equals_the_uninterrupted_run(tmp_path):
    model = save_tiny_flux(tmp_path / "model")
    data = make_dataset(tmp_path / "data", n=2)
    common = dict(network__network_module="networks.oft", network__network_alpha=ALPHA,
                  training__network_train_unet_only=True, training__max_train_steps=4)
    assert train(short_flux_config(model, data, **common), tmp_path / "full") == 0
    first = short_flux_config(model, data, **{**common, "training__max_train_steps": 2}, save__save_state=True)
    assert train(first, tmp_path / "first") == 0
    second = short_flux_config(model, data, **common, save__resume=str(tmp_path / "first" / "output" / "t-state"))
    assert train(second, tmp_path / "second") == 0, read_events(tmp_path / "second")[0][-1]
    assert losses(tmp_path / "second") == pytest.approx(losses(tmp_path / "full")[2:], rel=1e-5)
    a, b = (read_lora(tmp_path / r / "output" / "t.safetensors")[0] for r in ("full", "second"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5)


def test_a_flux_oft_run_on_an_fp8_stored_transformer_trains_and_saves_the_same_keys(tmp_path):
    """OFT (lycoris' diag-OFT, not in bypass mode) rebuilds each weight from the base one, which fp8_base keeps in
    float8: it reads a compute-dtype copy (trainer/networks/fp8_reads.py; SD1.5/SDXL OFT in test_engine_fp8_lycoris)."""
    model = save_tiny_flux(tmp_path / "model")
    data = make_dataset(tmp_path / "data", n=2)
    common = dict(network__network_module="networks.oft", network__network_alpha=ALPHA,
                  training__network_train_unet_only=True)
    for name, fp8 in (("fp8", True), ("plain", False)):
        run = tmp_path / name
        assert train(short_flux_config(model, data, **common, speed__fp8_base=fp8), run) == 0, read_events(run)[0][-1]
        assert all(torch.isfinite(torch.tensor(losses(run))))
    fp8, plain = (read_lora(tmp_path / r / "output" / "t.safetensors")[0] for r in ("fp8", "plain"))
    assert {k: v.shape for k, v in fp8.items()} == {k: v.shape for k, v in plain.items()}
    assert losses(tmp_path / "fp8") == pytest.approx(losses(tmp_path / "plain"), rel=0.2)  # fp8 rounding only


def test_sd_scripts_oft_flux_module_imports_as_flux_oft_and_exports_back():
    """sd-scripts trains Flux OFT with networks.oft_flux; Danlu's networks.oft is that OFT for family flux."""
    from trainer.config import ConfigError
    from trainer.config.kohya import export_kohya, import_kohya

    cfg = import_kohya({"pretrained_model_name_or_path": "/m/flux1-dev.safetensors", "network_dim": 4,
                        "network_module": "networks.oft_flux", "network_alpha": ALPHA, "network_train_unet_only": True})
    assert (cfg.model.family, cfg.network.network_module) == ("flux", "networks.oft")
    assert export_kohya(cfg)["network_module"] == "networks.oft_flux"
    with pytest.raises(ConfigError) as exc:
        import_kohya({"model_train_type": "sdxl-lora", "network_module": "networks.oft_flux"})
    assert "flux OFT" in exc.value.findings[0].en and "use networks.oft" in exc.value.findings[0].en
