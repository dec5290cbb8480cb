"""Fitting Flux on smaller cards: blocks_to_swap (transformer blocks kept in CPU memory between uses).

On the CPU there is no second device, so the swap is seen through its copies: a swapped block's frozen
parameters are its CPU copy between uses and a fresh copy ("the GPU copy") during its forward, in the forward
and again in the backward pass. Checks that need a real GPU (devices, pinned memory, peak memory) are marked.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.engine_helpers import losses, make_dataset, save_tiny_flux, short_flux_config
from trainer.config import ConfigError
from trainer.engine.run import train
from trainer.events import read_events
from trainer.networks.save import read_lora

BLOCKS = (4, 6)  # double, single: blocks_to_swap may go up to 4 (2 double + 4 single), keeping 2 of each


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_flux(tmp_path_factory.mktemp("model") / "tiny-flux", blocks=BLOCKS)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"), n=2)


flux_config = short_flux_config


def _load(cfg, tmp_path, device="cpu"):
    from trainer.engine.build import load_models
    from trainer.engine.precision import resolve_precision

    prec = resolve_precision("no", full_fp16=False, full_bf16=False, no_half_vae=False, device=device, warn=print)
    return load_models(cfg, prec, tmp_path / "models", print, print)


def _step(models, cfg) -> None:
    """One forward and backward pass of the transformer on random inputs."""
    device = next(models.unet.parameters()).device
    torch.manual_seed(0)
    latents = torch.randn(1, 1, 8, 8, device=device)
    cond = {"hidden": torch.randn(1, 64, 32, device=device), "pooled": torch.randn(1, 32, device=device),
            "t5_mask": torch.ones(1, 64, device=device)}
    pred = models.family.predict(models.unet, latents, torch.tensor([500.0], device=device), cond, {})
    pred.square().mean().backward()


@pytest.mark.parametrize("checkpointing", [True, False])
def test_swapped_blocks_hold_only_their_cpu_copy_between_uses_in_forward_and_backward(
        tiny_model, dataset, tmp_path, checkpointing):
    cfg = flux_config(tiny_model, dataset, flux__blocks_to_swap=2, training__gradient_checkpointing=checkpointing)
    models = _load(cfg, tmp_path)
    swap, unet = models.block_swap, models.unet
    assert swap.blocks == [unet.transformer_blocks[3], *unet.single_transformer_blocks[4:]]  # sd-scripts' count
    seen = []  # (block, resident during its forward), recorded after the swap's own pre-hook
    for block in swap.blocks:
        block.register_forward_pre_hook(lambda b, args: seen.append((b, not swap.is_offloaded(b))))
    assert all(swap.is_offloaded(b) for b in swap.blocks)
    unpacked = []
    unpack = swap._unpack
    swap._unpack = lambda packed: unpacked.append(packed) or unpack(packed)
    _step(models, cfg)
    assert all(swap.is_offloaded(b) for b in swap.blocks)  # dropped again after the backward pass
    assert all(resident for _, resident in seen)
    # the backward pass needs them again, last block first: the checkpointed forward runs a second time, else
    # autograd's saved weights come back from the CPU copies
    assert [b for b, _ in seen] == swap.blocks + (swap.blocks[::-1] if checkpointing else [])
    assert bool(unpacked) is not checkpointing
    for block in swap.blocks:  # the LoRA weights inside a swapped block never move and receive gradients
        lora = [p for p in block.parameters() if p.requires_grad]
        assert lora and all(p.grad is not None and p.data.data_ptr() not in
                            {c.data_ptr() for c in swap.cpu.values()} for p in lora)
    assert all(p not in swap.cpu for b in unet.transformer_blocks[:3] for p in b.parameters())


@pytest.mark.parametrize("extra", [{"training__gradient_checkpointing": True}, {},
                                   {"training__gradient_checkpointing": True, "speed__fp8_base": True}],
                         ids=["checkpointing", "plain", "checkpointing-fp8"])
def test_a_run_with_swapped_blocks_trains_exactly_like_one_without(tiny_model, dataset, tmp_path, extra):
    assert train(flux_config(tiny_model, dataset, **extra), tmp_path / "resident") == 0
    assert train(flux_config(tiny_model, dataset, flux__blocks_to_swap=4, **extra), tmp_path / "swapped") == 0
    assert len(losses(tmp_path / "swapped")) == 3
    # the run really swapped (equal losses alone would also come from an ignored setting): 2 double + 4 single
    assert any(e["type"] == "status" and e["message"].startswith("blocks_to_swap: 6 transformer blocks")
               for e in read_events(tmp_path / "swapped")[0])
    assert losses(tmp_path / "swapped") == pytest.approx(losses(tmp_path / "resident"), rel=1e-6)
    a, b = (read_lora(tmp_path / run / "output" / "t.safetensors")[0] for run in ("resident", "swapped"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-7)


def test_more_blocks_than_the_model_can_spare_are_refused_naming_the_field(tiny_model, dataset, tmp_path):
    from trainer.engine.errors import EngineError

    with pytest.raises(EngineError) as exc:
        _load(flux_config(tiny_model, dataset, flux__blocks_to_swap=5), tmp_path)
    assert "flux.blocks_to_swap 5" in str(exc.value) and "at most 4" in str(exc.value)
    with pytest.raises(ConfigError) as exc:  # Flux.1 itself: 19 double, 38 single blocks
        flux_config(tiny_model, dataset, flux__blocks_to_swap=36)
    assert exc.value.findings[0].field == "flux.blocks_to_swap"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU-only: real devices, pinned memory")
def test_on_a_gpu_swapped_weights_live_in_pinned_cpu_memory(tiny_model, dataset, tmp_path):
    resident = {}
    for n in (0, 4):
        cfg = flux_config(tiny_model, dataset, flux__blocks_to_swap=n, training__gradient_checkpointing=True)
        before = torch.cuda.memory_allocated()
        models = _load(cfg, tmp_path, device="cuda")
        resident[n] = torch.cuda.memory_allocated() - before
        _step(models, cfg)
        if n:
            swap = models.block_swap
            assert all(p.device.type == "cpu" and p.is_pinned() for p in swap.cpu)
            assert all(p.device.type == "cuda" for p in models.unet.transformer_blocks[0].parameters())
            assert all(p.device.type == "cuda" for b in swap.blocks for p in b.parameters() if p.requires_grad)
            swapped_bytes = sum(p.numel() * p.element_size() for p in swap.cpu)
        del models
        torch.cuda.empty_cache()
    assert resident[4] <= resident[0] - 0.9 * swapped_bytes  # the swapped weights are not on the GPU


@pytest.mark.parametrize("cache", ["speed__cache_text_encoder_outputs", "speed__cache_text_encoder_outputs_to_disk"])
def test_cached_text_outputs_send_the_frozen_encoders_off_the_gpu_before_training(
        tiny_model, dataset, tmp_path, monkeypatch, cache):
    """The encoders go to the offload device once every caption is cached; here that is the meta device, where
    any later use (a caption missed by the cache) would fail, so the run shows training never needs them."""
    from trainer.engine import session

    released = []
    release = session.release_text_encoders
    monkeypatch.setattr(session, "OFFLOAD_DEVICE", "meta")
    monkeypatch.setattr(session, "release_text_encoders", lambda tes: released.append(tes) or release(tes))
    common = dict(training__network_train_unet_only=True, sampling__sample_prompts="")
    assert train(flux_config(tiny_model, dataset, **common), tmp_path / "live") == 0
    assert released == []  # nothing cached: the encoders stay where training needs them
    assert train(flux_config(tiny_model, dataset, **{cache: True}, **common), tmp_path / "cached") == 0
    [encoders] = released
    assert len(encoders) == 2 and all(p.is_meta for te in encoders for p in te.parameters())  # CLIP-L and T5
    assert losses(tmp_path / "cached") == pytest.approx(losses(tmp_path / "live"), rel=1e-5)


def test_validation_captions_are_cached_before_the_encoders_leave(tiny_model, dataset, tmp_path, monkeypatch):
    from trainer.engine import session

    monkeypatch.setattr(session, "OFFLOAD_DEVICE", "meta")  # a caption encoded after caching would fail here
    cfg = flux_config(tiny_model, dataset, training__network_train_unet_only=True, sampling__sample_prompts="",
                      speed__cache_text_encoder_outputs=True, validation__validation_split=0.5)
    assert train(cfg, tmp_path / "run") == 0
    assert [e for e in read_events(tmp_path / "run")[0] if e["type"] == "validation"]


def test_sd_scripts_blocks_to_swap_and_train_t5xxl_keep_their_meaning_through_import_and_export():
    from trainer.config.kohya import export_kohya, import_kohya

    cfg = import_kohya({"ae": "/m/ae.safetensors", "network_module": "networks.lora_flux", "blocks_to_swap": 18,
                        "network_args": ["train_t5xxl=True"]})
    assert cfg.flux.blocks_to_swap == 18 and cfg.flux.train_t5xxl
    out = export_kohya(cfg)
    assert out["blocks_to_swap"] == 18 and "train_t5xxl=True" in out["network_args"]
