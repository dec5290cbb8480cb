"""fp8_base for the SD families: the frozen U-Net is stored in fp8 (diffusers' layerwise casting, the path Flux
uses) except its convolutions, the LoRA keeps its own dtype, and training runs. On the CPU the compute dtype is float32; on a GPU with
bf16 it is bf16 (GPU-only)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.engine_helpers import losses, make_dataset, save_tiny_sd15, save_tiny_sdxl, tiny_config
from trainer.config import check
from trainer.engine.build import load_models
from trainer.engine.fp8 import STORAGE, stored_fp8_share
from trainer.engine.precision import resolve_precision
from trainer.engine.run import train


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"), n=2, folder="1_zk")


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_fp8_base_stores_the_frozen_unet_in_fp8_and_trains(family, dataset, tmp_path):
    model = (save_tiny_sd15 if family == "sd15" else save_tiny_sdxl)(tmp_path / "model")
    settings = dict(model__family=family, training__max_train_steps=2, network__conv_dim=2, network__conv_alpha=1.0)
    cfg = tiny_config(model, dataset, speed__fp8_base=True, **settings)
    assert check(cfg, for_training=False) == []
    prec = resolve_precision("no", full_fp16=False, full_bf16=False, no_half_vae=False, device="cpu", warn=print)
    models = load_models(cfg, prec, tmp_path / "models", print, print)
    assert stored_fp8_share(models.unet) > 0.25  # the base Linears; LoRA, norms and convolutions excluded
    attn = next(m for n, m in models.unet.named_modules() if n.endswith("attn1.to_q"))
    assert attn.base_layer.weight.dtype == STORAGE
    # A convolution's backward reads its saved weight: it stays in the compute dtype (trainer/engine/fp8.py).
    assert {m.weight.dtype for m in models.unet.modules() if isinstance(m, torch.nn.Conv2d)} == {torch.float32}
    assert all(p.dtype == torch.float32 for p in models.lora.parameters())
    assert train(cfg, tmp_path / "fp8") == 0
    assert train(tiny_config(model, dataset, **settings), tmp_path / "full") == 0
    fp8, full = losses(tmp_path / "fp8"), losses(tmp_path / "full")
    assert fp8 != full and fp8 == pytest.approx(full, rel=0.2)  # fp8 rounding of the base, nothing more


def test_fp8_base_is_refused_for_a_dreambooth_run_that_trains_the_unet(dataset, tmp_path):
    cfg = tiny_config(tmp_path, dataset, speed__fp8_base=True, model__training_type="dreambooth")
    assert [(f.field, f.level) for f in check(cfg, for_training=False)] == [("speed.fp8_base", "error")]


def test_memory_estimate_counts_the_sd_convolutions_at_the_compute_dtype(tmp_path):
    from trainer.memory.estimate import estimate_memory

    def base(family, fp8):
        cfg = tiny_config(tmp_path, tmp_path, model__family=family, speed__mixed_precision="bf16", speed__fp8_base=fp8)
        return estimate_memory(cfg).parts["base"]

    assert base("sd15", True) / base("sd15", False) == pytest.approx(0.314 * 0.5 + 0.686, abs=0.01)
    assert base("sdxl", True) / base("sdxl", False) == pytest.approx(0.87 * 0.5 + 0.13, abs=0.01)
