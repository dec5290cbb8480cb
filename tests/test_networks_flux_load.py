"""Continuing from a Flux LoRA file (trainer/networks/flux_load.py): Danlu's own files load back module for module,
and sd-scripts' layouts (shared down with split_qkv=False, block-diagonal with split_qkv=True) load so that the
split diffusers Linears add exactly the delta every loader computes from the file, (alpha / rank) up @ down.
Files that do not fit are refused naming what to change."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from tests.engine_helpers import render_tiny_flux as _render
from trainer.models.tiny import build_tiny_flux, build_tiny_sd15
from trainer.networks.factory import build_network
from trainer.networks.flux_names import bfl_name
from trainer.networks.inject import add_lora
from trainer.networks.save import read_lora, save_lora

FUSED = ("lora_unet_double_blocks_0_img_attn_qkv", "lora_unet_double_blocks_0_txt_attn_qkv",
         "lora_unet_single_blocks_0_linear1")


def _cfg(dim=4, alpha=2.0):
    return SimpleNamespace(network_module="networks.lora", lycoris_algo="", network_dim=dim, network_alpha=alpha,
                           network_args=[], conv_dim=0, conv_alpha=0.0, network_dropout=0.0)


def _fresh(dim=4, encoders=0):
    """A tiny Flux with a LoRA on its transformer and the first `encoders` text encoders (CLIP-L, T5)."""
    pipe = build_tiny_flux(seed=0, blocks=(1, 1))
    tes = [pipe.text_encoder, pipe.text_encoder_2][:encoders]
    return pipe, build_network(_cfg(dim), "flux", pipe.transformer, tes)


def _trained(seed=1, encoders=0):
    pipe, net = _fresh(encoders=encoders)
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():  # up starts at zero: give every module a delta
            p.normal_(std=0.3)
    return pipe, net


def test_a_saved_flux_lora_loads_into_a_fresh_network_module_for_module(tmp_path):
    pipe, net = _trained(encoders=2)
    path = save_lora(tmp_path / "f.safetensors", net.kohya_state_dict("flux"), {}, precision="float")
    fresh_pipe, fresh = _fresh(encoders=2)
    assert (_render(fresh_pipe.transformer) - _render(pipe.transformer)).abs().max() > 1e-3
    fresh.load_weights(read_lora(path)[0], "flux")
    want, got = net.module_tensors(), fresh.module_tensors()
    assert got.keys() == want.keys() == {"unet", "text_encoder", "text_encoder_2"}  # CLIP-L (te1) and T5 (te3)
    for component, modules in want.items():
        assert got[component].keys() == modules.keys()
        for p, t in modules.items():
            assert torch.equal(got[component][p].down, t.down) and torch.equal(got[component][p].up, t.up), p
            assert got[component][p].alpha == t.alpha == 2.0, p
    assert torch.equal(_render(fresh_pipe.transformer), _render(pipe.transformer))


def _file_delta(tensors: dict, name: str) -> torch.Tensor:
    """sd-scripts' (and ComfyUI's) delta of a file module: up @ down * alpha / rank."""
    down, up = tensors[f"{name}.lora_down.weight"], tensors[f"{name}.lora_up.weight"]
    return up @ down * (float(tensors[f"{name}.alpha"]) / down.shape[0])


def _sd_scripts_file(net, layout: str, rank: int = 4, alpha: float = 3.0) -> dict:
    """A file as sd-scripts' lora_flux writes it for this network's modules, random weights: fused modules
    `shared` (split_qkv=False: one down [r, in], up [sum out, r]) or `split_qkv` (down [n*r, in], block-diagonal up,
    alpha unchanged); the other modules plain."""
    torch.manual_seed(7)
    paths: dict[str, list] = {}
    for path, t in net.module_tensors()["unet"].items():
        name, index, _ = bfl_name(path)
        paths.setdefault(name, []).append((index, t))
    out = {}
    for name, indexed in paths.items():
        splits = [t for _, t in sorted(indexed, key=lambda s: s[0])]
        n, rows, width = len(splits), [t.up.shape[0] for t in splits], splits[0].down.shape[1]
        down = torch.randn(rank * (n if layout == "split_qkv" else 1), width)
        up = torch.zeros(sum(rows), down.shape[0])
        if layout == "split_qkv":
            row = 0
            for i, r in enumerate(rows):
                up[row:row + r, i * rank:(i + 1) * rank] = torch.randn(r, rank)
                row += r
        else:
            up.normal_()
        out.update({f"{name}.lora_down.weight": down, f"{name}.lora_up.weight": up,
                    f"{name}.alpha": torch.tensor(alpha)})
    return out


def _merged(tensors: dict) -> torch.nn.Module:
    """A fresh transformer with every file delta added to the diffusers Linears (fused rows cut in split order)."""
    pipe = build_tiny_flux(seed=0, blocks=(1, 1))
    linears = {p: m for p, m in pipe.transformer.named_modules() if isinstance(m, torch.nn.Linear)}
    by_name: dict[str, list] = {}
    for p in sorted(linears):
        try:
            name, index, _ = bfl_name(p)
        except ValueError:
            continue
        by_name.setdefault(name, []).append((index, linears[p]))
    with torch.no_grad():
        for name, splits in by_name.items():
            delta, row = _file_delta(tensors, name), 0
            for _, linear in sorted(splits, key=lambda s: s[0]):
                linear.weight += delta[row:row + linear.out_features]
                row += linear.out_features
    return pipe.transformer


@pytest.mark.parametrize("layout", ["shared", "split_qkv"])
def test_an_sd_scripts_flux_lora_gives_each_split_exactly_its_rows_of_the_fused_delta(layout):
    pipe, net = _fresh()
    tensors = _sd_scripts_file(net, layout)
    net.load_weights(tensors, "flux")
    loaded = net.module_tensors()["unet"]
    for name in FUSED:
        splits = sorted((bfl_name(p)[1], t) for p, t in loaded.items() if bfl_name(p)[0] == name)
        # each split's own delta, alpha_i / r_i x up_i @ down_i, stacked in split order = the fused file delta
        stacked = torch.cat([t.up @ t.down * (t.alpha / t.down.shape[0]) for _, t in splits])
        torch.testing.assert_close(stacked, _file_delta(tensors, name), rtol=1e-6, atol=1e-6)
        assert {t.alpha for _, t in splits} == {3.0 if layout == "shared" else 3.0 / len(splits)}
        if layout == "shared":  # the same down for every split
            assert all(torch.equal(t.down, tensors[f"{name}.lora_down.weight"]) for _, t in splits)
    torch.testing.assert_close(_render(pipe.transformer), _render(_merged(tensors)), rtol=1e-4, atol=1e-5)


def test_danlu_files_render_as_sd_scripts_formula_says():
    _, net = _trained()
    tensors = net.kohya_state_dict("flux")
    pipe, fresh = _fresh()
    fresh.load_weights(tensors, "flux")
    torch.testing.assert_close(_render(pipe.transformer), _render(_merged(tensors)), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(("layout", "rank", "dim", "words"), [
    ("shared", 8, 4, r"rank 8 \(one down shared by its parts\).*network_dim = 8"),
    ("split_qkv", 2, 4, r"rank 6 \(block-diagonal: rank 2 for each of its 3 parts\).*network_dim = 2"),
    ("shared", 12, 4, r"rank 12 \(one down shared by its parts\).*network_dim = 12"),  # 3 x 4 but not block-diagonal
])
def test_a_file_whose_rank_does_not_fit_names_the_network_dim_that_does(layout, rank, dim, words):
    _, net = _fresh(dim=dim)
    tensors = _sd_scripts_file(net, layout, rank=rank)
    tensors = {k: v for k, v in tensors.items() if k.startswith(FUSED[0])}
    with pytest.raises(ValueError, match=FUSED[0] + ".*" + words):
        net.load_weights(tensors, "flux")


def test_a_file_for_a_wider_flux_model_is_refused_naming_the_widths():
    _, net = _fresh()
    tensors = _sd_scripts_file(net, "shared")
    up = f"{FUSED[2]}.lora_up.weight"
    tensors[up] = torch.randn(3072 * 3 + 12288, 4)
    with pytest.raises(ValueError, match=f"{FUSED[2]}.*21504 output rows.*224"):
        net.load_weights(tensors, "flux")


def test_an_sd_file_unknown_and_missing_modules_are_named(tmp_path):
    sd = build_tiny_sd15(seed=0)
    sd_file = add_lora(sd.unet, [sd.text_encoder], dim=4, alpha=2.0).kohya_state_dict("sd15")
    _, net = _fresh()
    with pytest.raises(ValueError, match=r"not a Flux LoRA.*SD1\.5/SDXL names.*lora_unet_double_blocks"):
        net.load_weights(sd_file, "flux")
    tensors = net.kohya_state_dict("flux")
    extra = {**tensors, "lora_unet_img_in.lora_down.weight": torch.zeros(4, 4),
             "lora_unet_img_in.lora_up.weight": torch.zeros(32, 4)}
    with pytest.raises(ValueError, match=r"modules this network does not have \(1\): \['lora_unet_img_in'\]"):
        net.load_weights(extra, "flux")
    fewer = {k: v for k, v in tensors.items() if not k.startswith(FUSED[0])}
    with pytest.raises(ValueError, match=f"missing in the file for unet: {FUSED[0]}$"):
        net.load_weights(fewer, "flux")


@pytest.mark.parametrize("algo", ["locon", "loha"])
def test_a_lycoris_flux_file_with_a_shared_down_gives_each_split_its_rows(algo):
    """A LyCORIS file trained on a BFL model has one module on each fused Linear: every factor pair shares its
    down-like factor, and each split's delta, measured on the live layer, is its rows of the file's delta."""
    from tests.test_networks_flux_lycoris import FUSED as ROWS
    from tests.test_networks_flux_lycoris import _build, _file_delta, _live_delta
    from trainer.networks.flux_lycoris import PAIRS

    pipe, net = _build(algo)
    tensors = net.kohya_state_dict("flux")
    torch.manual_seed(3)
    for name in FUSED:
        for down_key, up_key in PAIRS[algo]:
            tensors[f"{name}.{down_key}"] = torch.randn(4, tensors[f"{name}.{down_key}"].shape[1])
            tensors[f"{name}.{up_key}"] = torch.randn(tensors[f"{name}.{up_key}"].shape[0], 4)
        tensors[f"{name}.alpha"] = torch.tensor(3.0)
    net.load_weights(tensors, "flux")
    for path, (name, row) in ROWS.items():
        linear = pipe.transformer.get_submodule(path)
        torch.testing.assert_close(_live_delta(net, linear),
                                   _file_delta(tensors, name, algo)[row:row + linear.out_features],
                                   atol=1e-4, rtol=1e-4)


def test_a_dora_file_given_to_a_network_without_dora_is_sent_to_dora_wd():
    """networks.lora and LoCon without dora_wd would drop dora_scale; with dora_wd Flux trains flux_sliced, which
    loads such files (test_engine_flux_continue)."""
    from tests.test_networks_flux_lycoris import _build

    _, net = _fresh()
    tensors = net.kohya_state_dict("flux")
    tensors[f"{FUSED[0]}.dora_scale"] = torch.ones(1, 32)
    _, locon = _build("locon")
    for network in (net, locon):
        with pytest.raises(ValueError, match="this is a DoRA file; continue it with network_args dora_wd=True"):
            network.load_weights(tensors, "flux")


@pytest.mark.parametrize(("meta", "warned"), [
    ({"ss_network_args": '{"split_qkv": "True"}'}, True),
    ({"ss_network_args": '{"split_qkv": "True"}', "danlu_version": "0.1"}, False),  # Danlu wrote alpha x n
    ({"ss_network_args": '{"split_qkv": "False"}'}, False),
    ({"ss_network_args": "not json"}, False),
    ({}, False),
])
def test_only_sd_scripts_split_qkv_files_get_the_alpha_note(meta, warned):
    from trainer.networks.flux_load import split_qkv_note

    assert (split_qkv_note(meta) is not None) == warned
