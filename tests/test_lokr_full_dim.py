"""LyCORIS LoKr's "do not decompose" dim: the kohya_ss GUI's LoKr presets set network_dim = conv_dim = 100000, which
lycoris-lora (modules/lokr.py) reads as "train each Kronecker factor whole". Such a file imports, trains lokr_w1 and
lokr_w2 whole (no _a/_b factor pairs), writes the header sd-scripts writes for it, and applies in ComfyUI as trained;
its memory estimate stays that of the factors. Every other network keeps the usual cap, with an error naming the field
and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.test_config_kohya_ss_json import LOCON, load
from tests.test_engine_networks import _error, _output, dataset, tiny_model  # noqa: F401  (their tiny SD1.5 fixtures)
from trainer.config import (
    ConfigError,
    TrainConfig,
    apply_overlay,
    check,
    config_from_dict,
    errors_of,
    load_config,
)
from trainer.config.schema import params_by_path
from trainer.engine.run import train
from trainer.memory import estimate_memory
from trainer.models.tiny import build_tiny_sd15
from trainer.networks.factory import build_network
from trainer.networks.save import read_lora

FULL = 100000  # what kohya_ss' LoKr presets write
# The LoKr part of a kohya_ss LoKr preset (presets/lora/sd15 - LoKr v1.1.json), on our LOCON save.
LOKR_PRESET = {**LOCON, "LoRA_type": "LyCORIS/LoKr", "LyCORIS_preset": "full", "network_dim": FULL,
               "network_alpha": 1, "conv_dim": FULL, "conv_alpha": 1, "factor": 6, "decompose_both": True,
               "use_cp": True, "rank_dropout_scale": True, "module_dropout": 0}
SD_SCRIPTS_TOML = f"""
pretrained_model_name_or_path = "/models/m.safetensors"
train_data_dir = "./img"
network_module = "lycoris.kohya"
network_dim = {FULL}
network_alpha = 1
network_args = ["algo=lokr", "conv_dim={FULL}", "conv_alpha=1", "factor=6"]
"""


def test_a_kohya_ss_lokr_preset_imports_with_its_dims(tmp_path):
    cfg, notes = load(tmp_path, LOKR_PRESET)
    n = cfg.network
    assert (n.network_module, n.lycoris_algo, n.network_dim, n.conv_dim) == ("lycoris.kohya", "lokr", FULL, FULL)
    assert "factor=6" in n.network_args and "decompose_both=True" in n.network_args
    # sent by the GUI, never read by lycoris-lora's create_network: sd-scripts trained without it
    assert not any(a.startswith("rank_dropout_scale") for a in n.network_args)
    assert any(f.field == "rank_dropout_scale" for f in notes)
    assert not [f for f in errors_of(check(cfg, for_training=False)) if f.field.startswith("network.")]


def test_an_sd_scripts_lokr_toml_imports_with_its_dims(tmp_path):
    (tmp_path / "lokr.toml").write_text(SD_SCRIPTS_TOML, encoding="utf-8")
    n = load_config(tmp_path / "lokr.toml").network
    assert (n.lycoris_algo, n.network_dim, n.conv_dim, n.network_alpha) == ("lokr", FULL, FULL, 1)


@pytest.mark.parametrize("lora_type", ["Standard", "Kohya LoCon", "LyCORIS/LoHa", "LyCORIS/GLoRA"])
def test_any_other_network_keeps_the_cap_naming_the_field_and_the_fix(tmp_path, lora_type):
    """GLoRA and LoHa build full (in x dim) matrices for a dim this large: no meaning, only memory."""
    with pytest.raises(ConfigError) as got:
        load(tmp_path, {**LOKR_PRESET, "LoRA_type": lora_type})
    fields = {f.field for f in got.value.findings}
    assert "network.network_dim" in fields, str(got.value)
    message = str(got.value)
    assert "1024" in message and "lycoris_algo = lokr" in message, message


def test_lokr_above_the_presets_value_and_a_later_change_of_algorithm_are_refused():
    lokr = {"network_module": "lycoris.kohya", "lycoris_algo": "lokr", "network_dim": FULL, "conv_dim": FULL}
    with pytest.raises(ConfigError, match="network.network_dim"):
        config_from_dict({"network": {**lokr, "network_dim": FULL + 1}})
    cfg = config_from_dict({"network": lokr})
    with pytest.raises(ValueError, match="network_dim"):  # validate_assignment: the dims no longer fit
        cfg.network.lycoris_algo = "loha"


def test_the_forms_keep_the_usual_range():
    """The number box's hint is the schema's range: LoKr's exception must not widen it for every network."""
    for path in ("network.network_dim", "network.conv_dim"):
        assert params_by_path()[path].le == 1024


def _lokr(dim: int, factor: int = 6, family: str = "sd15", **groups) -> TrainConfig:
    network = {"network_module": "lycoris.kohya", "lycoris_algo": "lokr", "network_dim": dim,
               "conv_dim": 0 if family == "flux" else dim, "network_args": [f"factor={factor}"]}
    return apply_overlay(TrainConfig(), {"model": {"family": family}, "network": network, **groups})


def test_the_memory_estimate_counts_the_whole_factors_not_the_dim():
    full = estimate_memory(_lokr(FULL))
    assert full.parts == estimate_memory(_lokr(5000)).parts  # past the factors' sides the dim changes nothing
    lora_128 = estimate_memory(apply_overlay(TrainConfig(), {"network": {"network_dim": 128, "conv_dim": 128}}))
    assert 0 < full.parts["network"] < lora_128.parts["network"]
    # factor -1 splits each side near its square root: both factors are small
    assert estimate_memory(_lokr(FULL, factor=-1)).parts["network"] < full.parts["network"]


def test_a_flux_lokr_counts_t5_only_when_it_trains():
    """Flux's text encoders are CLIP-L and T5-XXL (most of their weights); LoKr adapts T5 only with train_t5xxl."""
    te = {"speed": {"cache_text_encoder_outputs": False}, "training": {"network_train_unet_only": False}}
    clip = estimate_memory(_lokr(FULL, family="flux", **te)).parts["network"]
    unet = estimate_memory(_lokr(FULL, family="flux", training={"network_train_unet_only": True})).parts["network"]
    t5 = estimate_memory(_lokr(FULL, family="flux", flux={"train_t5xxl": True}, **te)).parts["network"]
    assert unet < clip < unet * 1.05 < t5


def _comfyui_apply(model: Path, tensors: dict[str, torch.Tensor]):
    """The base model with every LoKr module of the file applied at strength 1 as ComfyUI computes it
    (comfy/weight_adapter/lokr.py): with both factors whole the scale is 1 and the file's alpha is not read."""
    from diffusers import StableDiffusionPipeline

    from trainer.networks.base_weights import layer_names

    pipe = StableDiffusionPipeline.from_pretrained(model, safety_checker=None, requires_safety_checker=False)
    layers = layer_names(pipe.unet, [pipe.text_encoder], "sd15")
    with torch.no_grad():
        for name in {k.partition(".")[0] for k in tensors}:
            w1, w2 = tensors[f"{name}.lokr_w1"].float(), tensors[f"{name}.lokr_w2"].float()
            if w2.dim() == 4:
                w1 = w1[:, :, None, None]
            weight = layers[name].weight
            weight += torch.kron(w1, w2).reshape(weight.shape)
    return pipe


def test_a_preset_run_trains_the_whole_factors_and_comfyui_applies_them(tiny_model, dataset, tmp_path):  # noqa: F811
    cfg, _ = load(tmp_path, LOKR_PRESET)
    cfg = apply_overlay(cfg, {  # the tiny run; logging_dir "": the run folder, not the save's ./logs
        "model": {"base_model": str(tiny_model)},
        "dataset": {"train_data_dir": str(dataset), "resolution": "64,64", "min_bucket_reso": 64, "max_bucket_reso": 128},
        "training": {"max_train_steps": 2, "train_batch_size": 2}, "speed": {"mixed_precision": "no"},
        "optimizer": {"optimizer_type": "AdamW", "learning_rate": 1e-2, "unet_lr": 1e-2, "text_encoder_lr": 1e-2},
        "save": {"output_dir": "", "output_name": "t", "save_precision": "float"},
        "sampling": {"sample_every_n_epochs": 0}, "logging": {"logging_dir": ""}})
    assert train(cfg, tmp_path / "run") == 0, _error(tmp_path / "run")
    tensors, meta = read_lora(tmp_path / "run" / "output" / "t.safetensors")
    suffixes = {k.partition(".")[2] for k in tensors}
    assert suffixes == {"lokr_w1", "lokr_w2", "alpha"}  # no lokr_w1_a/_b, lokr_w2_a/_b, lokr_t2: nothing decomposed
    assert any(v.dim() == 4 for k, v in tensors.items() if k.endswith("lokr_w2"))  # the 3x3 convolutions too
    assert any(k.startswith("lora_te_") for k in tensors)
    pipe = build_tiny_sd15(seed=0, four_level=True)  # on these layers a small dim does decompose
    small = build_network(cfg.network.model_copy(update={"network_dim": 1, "conv_dim": 1}), "sd15", pipe.unet,
                          [pipe.text_encoder])
    assert "lokr_w2_a" in {k.partition(".")[2] for k in small.kohya_state_dict("sd15")}
    # the header sd-scripts writes for these settings
    assert meta["ss_network_dim"] == str(FULL) and meta["ss_network_module"] == "lycoris.kohya"
    args = json.loads(meta["ss_network_args"])
    assert (args["algo"], args["conv_dim"], args["factor"]) == ("lokr", str(FULL), "6")

    trained = _output(tiny_model, cfg, tensors)  # the file loaded back into a LoKr network (A1111/Forge: lycoris)
    assert not torch.allclose(trained, _output(tiny_model, cfg), atol=1e-5)
    comfy = _comfyui_apply(tiny_model, tensors)
    gen = torch.Generator().manual_seed(0)
    ids = comfy.tokenizer(["zk, circle"], padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        applied = comfy.unet(torch.randn(1, 4, 8, 8, generator=gen), torch.tensor([500]),
                             comfy.text_encoder(ids)[0]).sample
    torch.testing.assert_close(applied, trained, atol=1e-4, rtol=1e-4)
