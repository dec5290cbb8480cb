"""LoKr and DoRA on Flux (trainer/networks/flux_sliced.py): one module per diffusers Linear, saved as
`lycoris_<diffusers path>`, the names ComfyUI and Forge map to a slice (rows) of BFL's fused weight.

The ComfyUI side is re-written here in plain torch from comfy/lora.py (model_lora_keys_unet's Flux branch),
comfy/utils.py (flux_to_diffusers: q/k/v at rows 0, h, 2h of img_attn.qkv / txt_attn.qkv / linear1, proj_mlp at
3h with 4h rows) and comfy/weight_adapter (lokr/lora/loha calculate_weight, base.weight_decompose), applied to the
fused BFL weights of the untrained transformer; the result must equal the trained network's effective weights."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch

from tests.engine_helpers import losses, make_dataset, save_tiny_flux, short_flux_config
from tests.engine_helpers import render_tiny_flux as _render
from tests.flux_files import DOUBLE, SINGLE, bfl_state_dict
from trainer.engine.run import train
from trainer.events import read_events
from trainer.models.tiny import build_tiny_flux
from trainer.networks.factory import build_network
from trainer.networks.save import read_lora, save_lora

KINDS = {  # id -> (network_module, lycoris_algo, network_args, network_dim)
    "lokr": ("lycoris.kohya", "lokr", [], 4),  # rank 4 on 32/128-wide Linears: lycoris keeps w2 whole (scale 1)
    "lokr-rank": ("lycoris.kohya", "lokr", ["factor=4", "decompose_both=True"], 1),  # w1 and w2 as factor pairs
    "dora": ("networks.lora", "", ["dora_wd=True"], 4),
    "lokr-dora": ("lycoris.kohya", "lokr", ["dora_wd=True"], 2),
    "loha-dora": ("lycoris.kohya", "loha", ["dora_wd=True"], 2),
    "glora": ("lycoris.kohya", "glora", [], 4),
    "diag-oft": ("lycoris.kohya", "diag-oft", [], 4),  # block size 4: the tiny's 32/128-wide slices split evenly
}


def _net(kind, *extra, dropout=0.0):
    module, algo, args, dim = KINDS[kind]
    return SimpleNamespace(network_module=module, lycoris_algo=algo, network_dim=dim, network_alpha=2.0,
                           network_args=[*args, *extra], conv_dim=0, conv_alpha=0.0, network_dropout=dropout)


def _build(kind, seed=0):
    pipe = build_tiny_flux(seed=0, blocks=(1, 1))
    net = build_network(_net(kind), "flux", pipe.transformer, [pipe.text_encoder])
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():  # lycoris starts with a zero delta (and dora_scale = the norms): move them all
            p.add_(torch.randn_like(p) * 0.3)
    return pipe, net


def _comfy_key_map(transformer) -> dict[str, tuple[str, tuple[int, int] | None]]:
    """ComfyUI's `lycoris_<diffusers path>` -> (BFL weight, (row offset, rows) or None) for a Flux model."""
    h = transformer.config.num_attention_heads * transformer.config.attention_head_dim
    out = {}
    for i in range(transformer.config.num_layers):
        d = f"transformer_blocks.{i}"
        for leaf, bfl in DOUBLE.items():
            if not leaf.endswith(".weight"):
                out[f"{d}.{leaf}"] = (f"double_blocks.{i}.{bfl}.weight", None)
        for j, leaf in enumerate(("to_q", "to_k", "to_v")):
            out[f"{d}.attn.{leaf}"] = (f"double_blocks.{i}.img_attn.qkv.weight", (j * h, h))
        for j, leaf in enumerate(("add_q_proj", "add_k_proj", "add_v_proj")):
            out[f"{d}.attn.{leaf}"] = (f"double_blocks.{i}.txt_attn.qkv.weight", (j * h, h))
    for i in range(transformer.config.num_single_layers):
        s = f"single_transformer_blocks.{i}"
        for leaf, bfl in SINGLE.items():
            if not leaf.endswith(".weight"):
                out[f"{s}.{leaf}"] = (f"single_blocks.{i}.{bfl}.weight", None)
        for j, leaf in enumerate(("attn.to_q", "attn.to_k", "attn.to_v")):
            out[f"{s}.{leaf}"] = (f"single_blocks.{i}.linear1.weight", (j * h, h))
        out[f"{s}.proj_mlp"] = (f"single_blocks.{i}.linear1.weight", (3 * h, 4 * h))
    return {"lycoris_" + path.replace(".", "_"): target for path, target in out.items()}


def _mm(t, name):
    return t[f"{name}_a"] @ t[f"{name}_b"]


def _diff(t: dict[str, torch.Tensor], shape) -> tuple[torch.Tensor, float]:
    """(the module's product, the alpha factor ComfyUI multiplies it by)."""
    alpha = float(t["alpha"]) if "alpha" in t else None
    if "lokr_w1" in t or "lokr_w1_a" in t:
        rank = t["lokr_w2_b"].shape[0] if "lokr_w2" not in t else t["lokr_w1_b"].shape[0] if "lokr_w1" not in t \
            else None
        w1 = t["lokr_w1"] if "lokr_w1" in t else _mm(t, "lokr_w1")
        w2 = t["lokr_w2"] if "lokr_w2" in t else _mm(t, "lokr_w2")
        return torch.kron(w1, w2).reshape(shape), (alpha / rank if alpha is not None and rank else 1.0)
    if "hada_w1_a" in t:
        return (_mm(t, "hada_w1") * _mm(t, "hada_w2")).reshape(shape), alpha / t["hada_w1_b"].shape[0]
    return (t["lora_up.weight"] @ t["lora_down.weight"]).reshape(shape), alpha / t["lora_down.weight"].shape[0]


def _comfyui_apply(bfl: dict[str, torch.Tensor], tensors: dict[str, torch.Tensor], key_map) -> set[str]:
    """Apply the file's transformer modules to the BFL weights at strength 1 as ComfyUI does; the keys used."""
    used = set()
    for name, (key, rows) in key_map.items():
        t = {k.partition(".")[2]: v.float() for k, v in tensors.items() if k.startswith(name + ".")}
        if not t:
            continue
        used |= {f"{name}.{suffix}" for suffix in t}
        weight = bfl[key] if rows is None else bfl[key].narrow(0, *rows)  # a view: patched in place
        calc = _adapted(t, weight)
        if "dora_scale" in t:
            scale = t["dora_scale"]
            if scale.shape[0] == calc.shape[0]:  # the output-axis branch divides by the BASE weight's norm
                norm = weight.norm(dim=1, keepdim=True)
            else:
                norm = calc.norm(dim=0, keepdim=True)
            calc = calc * (scale / (norm + torch.finfo(weight.dtype).eps))
        weight.copy_(calc)
    return used


def _adapted(t: dict[str, torch.Tensor], weight: torch.Tensor) -> torch.Tensor:
    """One module applied to `weight` (a row slice of a fused BFL weight, or a whole unfused one) by ComfyUI's rule."""
    if "a1.weight" in t:  # glora.py: shapes a1 [in, r], a2 [r, in], b1 [out, r], b2 [r, in] (not the old layout)
        a1, a2, b1, b2 = (t[f"{k}.weight"] for k in ("a1", "a2", "b1", "b2"))
        assert a1.shape[0] == a2.shape[1] == weight.shape[1] and b1.shape[0] == weight.shape[0]
        return weight + (weight @ a1 @ a2 + b1 @ b2) * (float(t["alpha"]) / a2.shape[0])
    if "oft_blocks" in t:  # oft.py: alpha is the constraint (0: none); each block of rows turned by R^T
        blocks, constraint = t["oft_blocks"], float(t["alpha"])
        q = blocks - blocks.transpose(1, 2)
        if 0 < constraint < q.norm() + 1e-8:
            q = q * constraint / (q.norm() + 1e-8)
        eye = torch.eye(blocks.shape[1])
        r = (eye + q) @ torch.linalg.inv(eye - q)
        return torch.einsum("knm,kni->kmi", r, weight.reshape(*blocks.shape[:2], -1)).reshape(weight.shape)
    diff, alpha = _diff(t, weight.shape)
    return weight + diff * alpha


def _live_weight(linear: torch.nn.Linear) -> torch.Tensor:
    """The weight the trained layer computes with, measured on the identity."""
    with torch.no_grad():
        out = linear(torch.eye(linear.in_features))
    return (out - (linear.bias if linear.bias is not None else 0)).T


@pytest.mark.parametrize("kind", list(KINDS))
def test_comfyui_applies_the_file_to_slices_of_the_fused_weights_as_trained(kind, tmp_path):
    base = build_tiny_flux(seed=0, blocks=(1, 1)).transformer
    pipe, net = _build(kind)
    tensors, _ = read_lora(save_lora(tmp_path / "f.safetensors", net.kohya_state_dict("flux"), {}, "float"))
    key_map = _comfy_key_map(base)
    unet_names = {k.partition(".")[0] for k in tensors if not k.startswith("lora_te1_")}
    assert unet_names == set(key_map)  # every block Linear, each under its ComfyUI slice name
    assert any(k.startswith("lora_te1_text_model_encoder_layers_0_") for k in tensors)

    bfl = {k: v.clone().float() for k, v in bfl_state_dict(base).items()}
    used = _comfyui_apply(bfl, tensors, key_map)
    assert used == {k for k in tensors if not k.startswith("lora_te1_")}  # no key ComfyUI would leave unloaded
    for name, (key, rows) in key_map.items():
        path = name.removeprefix("lycoris_")
        linear = pipe.transformer.get_submodule(_diffusers_path(pipe.transformer, path))
        applied = bfl[key] if rows is None else bfl[key].narrow(0, *rows)
        torch.testing.assert_close(applied, _live_weight(linear), atol=1e-5, rtol=1e-5)

    comfy = build_tiny_flux(seed=0, blocks=(1, 1)).transformer  # the applied weights, put back by the same map
    with torch.no_grad():
        for name, (key, rows) in key_map.items():
            linear = comfy.get_submodule(_diffusers_path(comfy, name.removeprefix("lycoris_")))
            linear.weight.copy_(bfl[key] if rows is None else bfl[key].narrow(0, *rows))
    trained = _render(pipe.transformer)
    assert (trained - _render(base)).abs().max() > 1e-2
    torch.testing.assert_close(_render(comfy), trained, atol=1e-5, rtol=1e-5)


def _diffusers_path(transformer, underscored: str) -> str:
    """`transformer_blocks_0_attn_to_q` -> `transformer_blocks.0.attn.to_q` (the module whose name matches)."""
    return next(p for p, _ in transformer.named_modules() if p.replace(".", "_") == underscored)


@pytest.mark.parametrize(("kind", "suffixes", "shape"), [
    ("lokr", {"lokr_w1", "lokr_w2", "alpha"}, None),
    ("lokr-rank", {"lokr_w1_a", "lokr_w1_b", "lokr_w2_a", "lokr_w2_b", "alpha"}, None),
    ("dora", {"lora_down.weight", "lora_up.weight", "alpha", "dora_scale"}, (1, 32)),
])
def test_file_keys_and_shapes(kind, suffixes, shape):
    _, net = _build(kind)
    tensors = net.kohya_state_dict("flux")
    q = "lycoris_transformer_blocks_0_attn_to_q"
    assert {k.partition(".")[2] for k in tensors if k.startswith(q + ".")} == suffixes
    assert not any(k.startswith("lora_unet_") for k in tensors)
    if shape:  # DoRA: one magnitude per input column of the split (ComfyUI's column-norm branch)
        assert tensors[f"{q}.dora_scale"].shape == shape
        assert tensors["lycoris_single_transformer_blocks_0_proj_mlp.dora_scale"].shape == (1, 32)
        assert tensors["lycoris_single_transformer_blocks_0_proj_out.dora_scale"].shape == (1, 160)


@pytest.mark.parametrize("kind", ["lokr", "dora", "glora", "diag-oft"])
def test_saved_file_loads_back_and_reproduces_the_output(kind, tmp_path):
    pipe, net = _build(kind)
    trained = _render(pipe.transformer)
    path = save_lora(tmp_path / "f.safetensors", net.kohya_state_dict("flux"), {}, precision="float")
    fresh_pipe = build_tiny_flux(seed=0, blocks=(1, 1))
    fresh = build_network(_net(kind), "flux", fresh_pipe.transformer, [fresh_pipe.text_encoder])
    fresh.load_weights(read_lora(path)[0], "flux")
    torch.testing.assert_close(_render(fresh_pipe.transformer), trained, atol=1e-5, rtol=1e-5)
    other = build_network(_net("dora" if kind == "lokr" else "lokr"), "flux",
                          build_tiny_flux(seed=0, blocks=(1, 1)).transformer, [])
    with pytest.raises(ValueError, match="network"):
        other.load_weights(read_lora(path)[0], "flux")


@pytest.mark.parametrize(("kind", "extra", "dropout", "words"), [
    ("lokr", ["rank_dropout=0.1"], 0.0, ("network.network_args", "rank_dropout", "bypass")),
    ("dora", ["train_blocks=single"], 0.0, ("network.network_args", "train_blocks", "dora_wd")),
    ("dora", [], 0.1, ("network.network_dropout", "rank_dropout")),
    ("lokr", ["wd_on_output=True", "dora_wd=True"], 0.0, ("network.network_args", "wd_on_output")),
    # ComfyUI reads the file's alpha as the constraint, lycoris multiplies it by the output width
    ("diag-oft", ["constraint=0.01"], 0.0, ("network.network_args", "constraint", "rank_dropout")),
    ("glora", ["dora_wd=True"], 0.0, ("network.network_args", "dora_wd")),
    ("glora", [], 0.1, ("network.network_dropout", "rank_dropout")),
])
def test_what_the_sliced_file_cannot_hold_is_refused_naming_the_field(kind, extra, dropout, words):
    with pytest.raises(ValueError) as err:
        build_network(_net(kind, *extra, dropout=dropout), "flux", build_tiny_flux(seed=0).transformer, [])
    for word in words:
        assert word in str(err.value)


TRAINED = {"lokr": "lokr_w2", "glora": "b1.weight", "diag-oft": "oft_blocks"}  # zero until trained


@pytest.mark.parametrize("kind", ["lokr", "dora", "glora", "diag-oft"])
def test_a_flux_run_trains_and_saves_the_sliced_file(kind, tmp_path):
    module, algo, args, _ = KINDS[kind]
    model = save_tiny_flux(tmp_path / "model")
    data = make_dataset(tmp_path / "data", n=2)
    cfg = short_flux_config(model, data, network__network_module=module, network__lycoris_algo=algo or "locon",
                            network__network_args=args)
    assert train(cfg, tmp_path / "run") == 0, read_events(tmp_path / "run")[0][-1]
    tensors, meta = read_lora(tmp_path / "run" / "output" / "t.safetensors")
    trained = TRAINED.get(kind, "lora_up.weight")
    assert tensors[f"lycoris_transformer_blocks_0_attn_to_k.{trained}"].abs().max() > 0
    assert "lycoris_single_transformer_blocks_0_proj_mlp.alpha" in tensors
    assert meta["ss_base_model_version"] == "flux1"
    assert meta["ss_network_module"] == {"networks.lora": "networks.lora_flux"}.get(module, module)  # as sd-scripts
    assert json.loads(meta["ss_network_args"]) == dict(a.split("=") for a in args) | (
        {"algo": algo} if module == "lycoris.kohya" else {})
    assert all(loss == loss for loss in losses(tmp_path / "run")) and len(losses(tmp_path / "run")) == 3


def test_config_check_takes_the_sliced_kinds_on_flux(tmp_path):
    from trainer.config import check

    for overrides in ({"network__network_module": "lycoris.kohya", "network__lycoris_algo": "lokr"},
                      {"network__network_module": "lycoris.kohya", "network__lycoris_algo": "glora"},
                      {"network__network_module": "lycoris.kohya", "network__lycoris_algo": "diag-oft"},
                      {"network__network_args": ["dora_wd=True"]}):
        cfg = short_flux_config(tmp_path / "m", tmp_path / "d", **overrides)
        assert not [f for f in check(cfg, for_training=False) if f.field.startswith("network.")], overrides


def _run_config(kind, model, data, **overrides):
    module, algo, args, _ = KINDS[kind]
    return short_flux_config(model, data, network__network_module=module, network__lycoris_algo=algo or "locon",
                             network__network_args=args, **overrides)


@pytest.mark.parametrize("kind", ["lokr", "glora", "diag-oft"])
def test_lokr_glora_and_diag_oft_train_on_an_fp8_stored_flux_transformer(kind, tmp_path):
    """LoKr's and GLoRA's bypass forward never rebuilds the fp8 weight; diag-OFT's rebuild reads it in float."""
    model = save_tiny_flux(tmp_path / "model")
    cfg = _run_config(kind, model, make_dataset(tmp_path / "data", n=2), speed__fp8_base=True)
    assert train(cfg, tmp_path / "run") == 0, read_events(tmp_path / "run")[0][-1]
    tensors, _ = read_lora(tmp_path / "run" / "output" / "t.safetensors")
    assert tensors[f"lycoris_transformer_blocks_0_attn_to_v.{TRAINED[kind]}"].abs().max() > 0
    assert all(loss == loss for loss in losses(tmp_path / "run"))


@pytest.mark.parametrize("kind", ["dora", "lokr-dora"])
def test_dora_trains_on_an_fp8_stored_flux_transformer(kind, tmp_path):
    """DoRA rebuilds the weight outside the Linear's forward, where fp8_base keeps it in fp8 (the run failed with
    "mul_cpu_reduced_float not implemented for Float8_e4m3fn" before it was read in the compute dtype: fp8_reads)."""
    model = save_tiny_flux(tmp_path / "model")
    cfg = _run_config(kind, model, make_dataset(tmp_path / "data", n=2), speed__fp8_base=True)
    assert train(cfg, tmp_path / "run") == 0, read_events(tmp_path / "run")[0][-1]
    tensors, _ = read_lora(tmp_path / "run" / "output" / "t.safetensors")
    assert tensors["lycoris_single_transformer_blocks_0_attn_to_q.dora_scale"].shape == (1, 32)
    assert all(loss == loss for loss in losses(tmp_path / "run"))


@pytest.mark.parametrize("kind", ["dora", "diag-oft"])
def test_a_rebuilt_kind_on_an_fp8_stored_transformer_computes_as_on_its_rounded_weights(kind):
    """The same DoRA (diag-OFT) network on a transformer stored in fp8 (cast per layer) and on a float copy of those fp8 weights."""
    from trainer.engine.fp8 import store_in_fp8

    stored = build_tiny_flux(seed=0, blocks=(1, 1))
    store_in_fp8(stored.transformer, torch.float32)
    rounded = build_tiny_flux(seed=0, blocks=(1, 1))
    rounded.transformer.load_state_dict({k: v.float() for k, v in stored.transformer.state_dict().items()})
    outputs = []
    for pipe in (stored, rounded):
        torch.manual_seed(0)  # lycoris draws lora_down at random
        net = build_network(_net(kind), "flux", pipe.transformer, [pipe.text_encoder])
        with torch.no_grad():
            for p in net.parameters():
                p.add_(torch.randn_like(p) * 0.3)
        outputs.append(_render(pipe.transformer))
    assert any(p.dtype == torch.float8_e4m3fn for p in stored.transformer.parameters())
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ["lokr-dora"])
def test_a_sliced_run_resumed_from_its_state_equals_the_uninterrupted_run(kind, tmp_path):
    model = save_tiny_flux(tmp_path / "model")
    data = make_dataset(tmp_path / "data", n=2)
    assert train(_run_config(kind, model, data, training__max_train_steps=4), tmp_path / "full") == 0
    first = _run_config(kind, model, data, training__max_train_steps=2, save__save_state=True)
    assert train(first, tmp_path / "first") == 0
    second = _run_config(kind, model, data, training__max_train_steps=4,
                         save__resume=str(tmp_path / "first" / "output" / "t-state"))
    assert train(second, tmp_path / "second") == 0, read_events(tmp_path / "second")[0][-1]
    assert losses(tmp_path / "second") == pytest.approx(losses(tmp_path / "full")[2:], rel=1e-5)
    a, b = (read_lora(tmp_path / r / "output" / "t.safetensors")[0] for r in ("full", "second"))
    assert a.keys() == b.keys() and any(k.endswith(".dora_scale") for k in a)
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("kind", ["lokr", "dora"])
def test_diffusers_load_lora_weights_skips_the_sliced_modules_so_the_grid_refuses_the_file(kind, tmp_path):
    """diffusers 0.42's Flux load_lora_weights loads no `lycoris_` module (and drops dora_scale) with warnings only:
    the transformer is left as the base model. The comparison grid, which renders through it, names the file."""
    from trainer.grid import GridRequest, generate_grid

    _, net = _build(kind)
    path = save_lora(tmp_path / "f.safetensors", net.kohya_state_dict("flux"), {}, "float")
    pipe = build_tiny_flux(seed=0, blocks=(1, 1))
    base = _render(pipe.transformer)
    pipe.load_lora_weights(str(path), adapter_name="t")
    torch.testing.assert_close(_render(pipe.transformer), base)  # nothing of the transformer's modules loaded
    with pytest.raises(ValueError, match="f.safetensors: its 20 Flux LoKr/DoRA modules .*ComfyUI or Forge"):
        generate_grid(GridRequest(base=str(tmp_path / "unused"), loras=[str(path)], prompts="a circle"),
                      cache_dir=tmp_path)


@pytest.mark.parametrize("kind", ["lokr", "dora"])
def test_a_sliced_run_with_swapped_blocks_checkpointing_and_fp8_trains_like_one_without_swapping(kind, tmp_path):
    """The 12-16 GB combination: blocks_to_swap moves the blocks (and the lycoris modules' base Linears) between
    devices while DoRA rebuilds from them."""
    model = save_tiny_flux(tmp_path / "model", blocks=(4, 6))
    data = make_dataset(tmp_path / "data", n=2)
    extra = {"training__gradient_checkpointing": True, "speed__fp8_base": True}
    assert train(_run_config(kind, model, data, **extra), tmp_path / "resident") == 0
    swapped = _run_config(kind, model, data, flux__blocks_to_swap=4, **extra)
    assert train(swapped, tmp_path / "swapped") == 0, read_events(tmp_path / "swapped")[0][-1]
    assert any(e["type"] == "status" and e["message"].startswith("blocks_to_swap: 6 transformer blocks")
               for e in read_events(tmp_path / "swapped")[0])
    assert losses(tmp_path / "swapped") == pytest.approx(losses(tmp_path / "resident"), rel=1e-6)
    a, b = (read_lora(tmp_path / run / "output" / "t.safetensors")[0] for run in ("resident", "swapped"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-7)


def test_flux_dora_without_gradient_checkpointing_is_warned_about_its_memory(tmp_path):
    from trainer.config import check

    def findings(**overrides):
        cfg = short_flux_config(tmp_path / "m", tmp_path / "d", **overrides)
        return [f for f in check(cfg, for_training=False) if f.field == "training.gradient_checkpointing"]

    mine = findings(network__network_args=["dora_wd=True"], training__gradient_checkpointing=False)
    assert [f.level for f in mine] == ["warning"] and "38 GiB" in mine[0].en and "38 GiB" in mine[0].zh
    assert not findings(network__network_args=["dora_wd=True"], training__gradient_checkpointing=True)
    assert not findings(network__network_module="lycoris.kohya", network__lycoris_algo="lokr",
                        training__gradient_checkpointing=False)


def test_flux_diag_oft_without_gradient_checkpointing_is_warned_that_it_rebuilds_the_weights(tmp_path):
    from trainer.config import check

    def findings(**overrides):
        cfg = short_flux_config(tmp_path / "m", tmp_path / "d", network__network_module="lycoris.kohya", **overrides)
        return [f for f in check(cfg, for_training=False) if f.field == "training.gradient_checkpointing"]

    mine = findings(network__lycoris_algo="diag-oft", training__gradient_checkpointing=False)
    assert [f.level for f in mine] == ["warning"] and "diag-OFT" in mine[0].en and "diag-OFT" in mine[0].zh
    assert not findings(network__lycoris_algo="diag-oft", training__gradient_checkpointing=True)
    assert not findings(network__lycoris_algo="glora", training__gradient_checkpointing=False)  # bypass: no copy
