"""GPU-memory estimate: monotonic in what costs memory, and the memory presets fit their cards."""

from __future__ import annotations

import dataclasses
import sys

import pytest

from trainer.config import TrainConfig, apply_overlay, check
from trainer.config.presets import apply_presets, list_presets
from trainer.families import trained_families
from trainer.memory import detect_gpu_memory, estimate_memory


def cfg(**overlay) -> TrainConfig:
    return apply_overlay(TrainConfig(), overlay)


def total(**overlay) -> float:
    return estimate_memory(cfg(**overlay)).total_gb


def test_parts_add_up_and_are_named():
    est = estimate_memory(TrainConfig())
    assert set(est.parts) == {"base", "text_encoder", "vae", "network", "gradients", "optimizer", "activations",
                              "overhead"}
    assert est.total_gb == pytest.approx(sum(est.parts.values()), abs=0.01)
    assert est.notes and all(n.en and n.zh for n in est.notes)


@pytest.mark.parametrize("family,res", [("sd15", "512"), ("sdxl", "1024"), ("flux", "1024")])
def test_more_batch_or_resolution_costs_more(family, res):
    model = {"family": family}
    assert total(model=model, dataset={"resolution": res}, training={"train_batch_size": 2}) > total(
        model=model, dataset={"resolution": res}, training={"train_batch_size": 1})
    assert total(model=model, dataset={"resolution": "768,768"}) > total(model=model, dataset={"resolution": "512"})
    assert total(model=model, network={"network_dim": 128}) > total(model=model, network={"network_dim": 8})
    assert total(model=model, network={"conv_dim": 16}) >= total(model=model)


@pytest.mark.parametrize("family", trained_families())
def test_memory_tricks_cost_less(family):
    m = {"family": family}
    assert total(model=m, training={"gradient_checkpointing": True}) < total(model=m)
    assert total(model=m, optimizer={"optimizer_type": "AdamW8bit"}) < total(model=m, optimizer={"optimizer_type": "AdamW"})
    assert total(model=m, optimizer={"optimizer_type": "Prodigy", "learning_rate": 1.0}) > total(
        model=m, optimizer={"optimizer_type": "AdamW"})
    assert total(model=m, speed={"cache_latents": True}) < total(model=m, speed={"cache_latents": False})
    assert total(model=m, speed={"cache_text_encoder_outputs": True}, training={"network_train_unet_only": True}) < \
        total(model=m, training={"network_train_unet_only": True})
    assert total(model=m, training={"network_train_unet_only": True}) < total(model=m)
    assert total(model=m, speed={"mixed_precision": "bf16"}) < total(model=m, speed={"mixed_precision": "no"})
    assert total(model=m, speed={"full_bf16": True}) < total(model=m)
    assert total(model=m, speed={"fp8_base": True}) < total(model=m)


def test_family_order_and_published_figures():
    tricks = {"speed": {"mixed_precision": "fp16", "cache_latents": True}, "optimizer": {"optimizer_type": "AdamW8bit"},
              "training": {"gradient_checkpointing": True}}
    plain = {"speed": {"mixed_precision": "fp16", "cache_latents": False}, "optimizer": {"optimizer_type": "AdamW"}}
    sd15 = total(**tricks)
    sdxl, sdxl_plain = total(model={"family": "sdxl"}, dataset={"resolution": "1024"}, **tricks), total(
        model={"family": "sdxl"}, dataset={"resolution": "1024"}, **plain)
    flux = total(model={"family": "flux"}, dataset={"resolution": "1024"}, network={"network_dim": 16},
                 speed={"fp8_base": True, "cache_text_encoder_outputs": True, "cache_latents": True},
                 training={"gradient_checkpointing": True, "network_train_unet_only": True},
                 optimizer={"optimizer_type": "AdamW8bit"})
    assert sd15 < 6
    assert 9 < sdxl <= 13 and 18 < sdxl_plain <= 26
    assert 14 < flux <= 24


@pytest.mark.parametrize("memory", [p.name for p in list_presets("memory") if p.family is None])
@pytest.mark.parametrize("novice", [p.name for p in list_presets("novice") if p.family in (None, "sd15")])
def test_memory_presets_fit_their_cards(memory, novice):
    gb = int(memory.removeprefix("memory-").removesuffix("gb"))
    config = apply_presets([novice, memory], cfg(model={"family": "sd15"}, dataset={"resolution": "512,512"}))
    assert estimate_memory(config).total_gb < gb


@pytest.mark.parametrize("memory", [p.name for p in list_presets("memory") if p.family == "sdxl"])
def test_sdxl_memory_presets_fit_their_cards_with_the_sdxl_preset(memory):
    gb = int(memory.removeprefix("memory-sdxl-").removesuffix("gb"))
    config = apply_presets(["expert-sdxl", memory])
    assert config.model.family == "sdxl"
    assert gb * 0.6 < estimate_memory(config).total_gb < gb  # fits, without leaving most of the card idle
    assert not [f for f in check(config, for_training=False) if f.level == "error"]


def test_sdxl_memory_tiers_exist():
    assert sorted(int(p.name.split("-")[-1].removesuffix("gb")) for p in list_presets("memory")
                  if p.family == "sdxl") == [8, 12, 16, 24]


def test_detect_gpu_memory_here():
    import torch

    found = detect_gpu_memory()
    assert (found is None) == (not torch.cuda.is_available())
    if found is not None:
        assert found > 1


def test_a_local_model_folder_is_measured_not_taken_for_full_size_sd15(tmp_path):
    """Issue 10.12: the 64 px demo model is tiny; the estimate must not show SD1.5's 4.7 GB."""
    from trainer.models.demo import ensure_demo_model

    demo = ensure_demo_model(tmp_path / "models")
    full = estimate_memory(cfg())
    tiny = estimate_memory(cfg(model={"base_model": str(demo)}, dataset={"resolution": "64,64"}))
    assert tiny.parts["base"] < 0.01 and tiny.parts["text_encoder"] < 0.01 and tiny.parts["activations"] < 0.01
    assert tiny.total_gb < 1.0 < full.total_gb  # what is left is the CUDA context
    assert any("measured" in n.en for n in tiny.notes)


@pytest.mark.parametrize("memory", [p.name for p in list_presets("memory") if p.family == "flux"])
def test_flux_memory_presets_fit_their_cards_with_the_flux_preset(memory):
    """By the estimate (Flux's figures measured on an H200 with bench/flux_memory.py: trainer/families/flux)."""
    gb = int(memory.removeprefix("memory-flux-").removesuffix("gb"))
    config = apply_presets(["expert-flux", memory])
    assert config.model.family == "flux" and config.speed.fp8_base
    assert gb * 0.6 < estimate_memory(config).total_gb < gb
    assert not [f for f in check(config, for_training=False) if f.level == "error"]
    without_fp8 = apply_presets(["expert-flux", memory]).model_copy(
        update={"speed": config.speed.model_copy(update={"fp8_base": False})})
    assert estimate_memory(without_fp8).total_gb > gb  # fp8_base is what makes it fit


def test_flux_memory_tiers_exist():
    assert sorted(int(p.name.split("-")[-1].removesuffix("gb")) for p in list_presets("memory")
                  if p.family == "flux") == [12, 16, 24]


# The H200 runs below stored the AdaLN modulation Linears in bf16 (fp8_share 0.727, counted); fp8_base now stores
# them in fp8 too (trainer/engine/fp8.py), 3.25 B parameters, one byte each instead of two.
MEASURED_FP8_SHARE = 0.727
MODULATION_GIB = 3.247e9 / 2**30


def use_measured_share(patch) -> None:
    """The Flux figures as they were when the H200 measurements were taken (modulation Linears in bf16)."""
    module = sys.modules["trainer.families.flux"]
    spec = module.SPEC
    patch.setattr(module, "SPEC", dataclasses.replace(
        spec, memory=dataclasses.replace(spec.memory, fp8_share=MEASURED_FP8_SHARE)))


@pytest.fixture
def as_measured(monkeypatch):
    use_measured_share(monkeypatch)


FLUX_FP8 = {"model": {"family": "flux"}, "speed": {"fp8_base": True}}


def test_swapped_flux_blocks_leave_the_estimate_block_by_block(as_measured):
    totals = [total(**FLUX_FP8, flux={"blocks_to_swap": n}) for n in range(36)]
    assert all(a > b for a, b in zip(totals, totals[1:], strict=False))  # each more block swapped costs less
    # 18 (9 double + 18 single blocks, one of them on the GPU at a time) frees ~6.3 GB of the 14.1 GB fp8 base:
    # measured on an H200 at 1024 px, 18.28 -> 11.73 GB
    assert 5.5 < totals[0] - totals[18] < 7.0
    base = estimate_memory(cfg(**FLUX_FP8, flux={"blocks_to_swap": 18}))
    assert any("blocks_to_swap" in n.en for n in base.notes)
    sd = {"model": {"family": "sdxl"}}
    assert total(**sd, flux={"blocks_to_swap": 18}) == total(**sd)  # a Flux setting, nothing else swaps


def test_flux_estimate_matches_the_h200_measurements(monkeypatch):
    """bench/flux_memory.py on an H200: FLUX.1-dev, fp8 base, bf16, checkpointing, cached outputs, LoRA dim 16,
    AdamW, batch 1 (peak torch.cuda.max_memory_allocated, which leaves out the ~0.5 GB CUDA context)."""
    measured = {(1024, 0): 18.28, (1024, 18): 11.73, (1024, 35): 5.47, (512, 18): 10.10}

    def estimate(res, swap):
        return total(model={"family": "flux"}, dataset={"resolution": str(res)}, network={"network_dim": 16},
                     speed={"fp8_base": True, "cache_latents": True, "cache_text_encoder_outputs": True},
                     training={"gradient_checkpointing": True, "network_train_unet_only": True},
                     optimizer={"optimizer_type": "AdamW"}, flux={"blocks_to_swap": swap})

    now = {key: estimate(*key) for key in measured}
    with monkeypatch.context() as m:
        use_measured_share(m)
        then = {key: estimate(*key) for key in measured}
    for key, gb in measured.items():
        assert gb < then[key] < gb + 2.5, (key, then[key])  # never below what was measured
        # the modulation Linears in fp8 save a byte per parameter of every block left on the GPU
        assert 0 < then[key] - now[key] <= MODULATION_GIB + 0.01, (key, then[key], now[key])
    assert then[(1024, 0)] - now[(1024, 0)] == pytest.approx(MODULATION_GIB, abs=0.05)


def test_a_t5_lora_costs_its_adapter_and_activations():
    flux = {"model": {"family": "flux"}, "speed": {"fp8_base": True}}
    with_t5 = estimate_memory(cfg(**flux, flux={"train_t5xxl": True}))
    without = estimate_memory(cfg(**flux))
    # 1.82 M LoRA parameters per rank (fp32 weights) and T5's activations
    dim = cfg().network.network_dim
    assert with_t5.parts["network"] - without.parts["network"] == pytest.approx(1.819e6 * dim * 4 / 2**30, abs=0.002)
    assert with_t5.parts["activations"] > without.parts["activations"]


def test_a_measured_smaller_flux_folder_swaps_its_own_blocks_never_below_zero(tmp_path):
    """blocks_to_swap on a local Flux folder smaller than FLUX.1: the swapped blocks are that model's, scaled with
    its measured size (full-size blocks subtracted from a tiny denoiser gave a negative base and total)."""
    from tests.engine_helpers import save_tiny_flux

    model = {"family": "flux", "base_model": str(save_tiny_flux(tmp_path / "tiny-flux", blocks=(4, 6)))}
    plain = estimate_memory(cfg(model=model, speed={"fp8_base": True}))
    swapped = estimate_memory(cfg(model=model, speed={"fp8_base": True}, flux={"blocks_to_swap": 4}))
    assert 0 <= swapped.parts["base"] <= plain.parts["base"] and 0 < swapped.total_gb <= plain.total_gb
    with_t5 = estimate_memory(cfg(model=model, flux={"train_t5xxl": True}))
    without = estimate_memory(cfg(model=model))
    assert with_t5.parts["network"] - without.parts["network"] < 0.001  # the tiny T5's LoRA, not T5-XXL's
