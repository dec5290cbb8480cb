"""SDXL's two text encoders learn at their own rates (text_encoder_lr = [te1, te2]) or at one shared rate, as
sd-scripts takes the option; the rates are read back from the optimizer the engine builds."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from trainer.config import config_from_dict
from trainer.engine.build import build_optimizer
from trainer.models.tiny import build_tiny_sdxl
from trainer.networks.inject import add_lora


@pytest.fixture(scope="module")
def sdxl_lora():
    pipe = build_tiny_sdxl(seed=0)
    lora = add_lora(pipe.unet, [pipe.text_encoder, pipe.text_encoder_2], dim=2, alpha=1.0)
    return SimpleNamespace(lora=lora, train_unet=True, train_text_encoder=True, family=SimpleNamespace(name="sdxl"))


def _rates(models, te_lr) -> dict[str, tuple[float, set[int]]]:
    cfg = config_from_dict({"model": {"family": "sdxl"}, "optimizer": {
        "optimizer_type": "AdamW", "learning_rate": 1e-3, "unet_lr": 2e-4, "text_encoder_lr": te_lr}})
    optimizer, _, names = build_optimizer(cfg, models, total_steps=10)
    return {n: (g["lr"], {id(p) for p in g["params"]}) for n, g in zip(names, optimizer.param_groups, strict=True)}


def _ids(models, component: str) -> set[int]:
    return {id(p) for p in models.lora.text_encoder_params(component)}


def test_each_text_encoder_gets_its_own_rate(sdxl_lora):
    got = _rates(sdxl_lora, [5e-5, 2e-5])
    assert got["text_encoder"] == (5e-5, _ids(sdxl_lora, "text_encoder"))
    assert got["text_encoder_2"] == (2e-5, _ids(sdxl_lora, "text_encoder_2"))  # not te1's rate
    assert got["unet"][0] == 2e-4
    assert _ids(sdxl_lora, "text_encoder") and _ids(sdxl_lora, "text_encoder_2")


def test_lycoris_encoders_get_their_own_rates_too():
    from trainer.networks.lycoris_net import add_lycoris

    pipe = build_tiny_sdxl(seed=0)
    lora = add_lycoris(pipe.unet, [pipe.text_encoder, pipe.text_encoder_2], family="sdxl", dim=2, alpha=1.0,
                       algo="loha", network_args=["preset=attn-mlp"])
    models = SimpleNamespace(lora=lora, train_unet=True, train_text_encoder=True, family=SimpleNamespace(name="sdxl"))
    got = _rates(models, [5e-5, 2e-5])
    assert got["text_encoder"] == (5e-5, _ids(models, "text_encoder"))
    assert got["text_encoder_2"] == (2e-5, _ids(models, "text_encoder_2"))
    assert _ids(models, "text_encoder") and _ids(models, "text_encoder_2")


@pytest.mark.parametrize(("te_lr", "want"), [(3e-5, 3e-5), ([3e-5], 3e-5), (None, 1e-3)])
def test_one_rate_is_shared_and_none_means_learning_rate(sdxl_lora, te_lr, want):
    got = _rates(sdxl_lora, te_lr)
    assert got["text_encoder"][0] == got["text_encoder_2"][0] == want


def test_an_encoder_at_rate_0_is_left_out_as_in_sd_scripts(sdxl_lora):
    got = _rates(sdxl_lora, [0.0, 2e-5])
    assert "text_encoder" not in got and got["text_encoder_2"][0] == 2e-5


def test_dreambooth_per_encoder_rates_override_the_list():
    from trainer.engine.full import component_lrs

    cfg = config_from_dict({"model": {"family": "sdxl"}, "optimizer": {"text_encoder_lr": [5e-5, 2e-5]}})
    assert component_lrs(cfg, 2) == {"unet": 1e-4, "text_encoder": 5e-5, "text_encoder_2": 2e-5}
    cfg = config_from_dict({"model": {"family": "sdxl"}, "optimizer": {"text_encoder_lr": [5e-5, 2e-5]},
                            "dreambooth": {"learning_rate_te2": 1e-6}})
    assert component_lrs(cfg, 2)["text_encoder_2"] == 1e-6


def test_an_sdxl_run_with_two_rates_reports_each_and_records_both(tmp_path):
    from tests.engine_helpers import make_dataset, save_tiny_sdxl, tiny_config
    from trainer.engine.run import train
    from trainer.events import read_events
    from trainer.networks.save import read_lora

    cfg = tiny_config(save_tiny_sdxl(tmp_path / "sdxl"), make_dataset(tmp_path / "data", n=2), model__family="sdxl",
                      optimizer__text_encoder_lr=[5e-4, 2e-4], training__max_train_epochs=1)
    assert train(cfg, tmp_path / "run") == 0
    progress = next(e for e in read_events(tmp_path / "run")[0] if e["type"] == "progress")
    assert progress["lr"]["text_encoder"] == pytest.approx(5e-4)
    assert progress["lr"]["text_encoder_2"] == pytest.approx(2e-4)
    tensors, meta = read_lora(tmp_path / "run" / "output" / "t.safetensors")
    assert meta["ss_text_encoder_lr"] == "[0.0005, 0.0002]"
    assert any(k.startswith("lora_te2_") for k in tensors)
