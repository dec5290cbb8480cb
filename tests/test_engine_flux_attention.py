"""Flux trains with PyTorch's flash or memory-efficient attention on CUDA: on an H200 (torch 2.11, CUDA 13) its
default kernel choice gave NaN gradients in bf16 (tiny model) and a cuBLAS error (full size), and these two kernels
gave neither. The restriction has to hold for every attention call of a step: the forward, the forward that
gradient checkpointing recomputes during backward, and a validation loss."""

from __future__ import annotations

import contextlib
import traceback

import pytest
import torch

from tests.engine_helpers import make_dataset, save_tiny_flux, short_flux_config
from trainer.engine.run import train
from trainer.families import get_family


def _flags() -> dict[str, bool]:
    b = torch.backends.cuda
    return {"flash": b.flash_sdp_enabled(), "efficient": b.mem_efficient_sdp_enabled(),
            "math": b.math_sdp_enabled(), "cudnn": b.cudnn_sdp_enabled()}


def test_on_cuda_flux_attention_leaves_out_cudnn_and_prefers_flash_and_efficient():
    flux, before = get_family("flux"), _flags()
    with flux.attention_context(torch.device("cuda", 0)):
        inside = _flags()
    assert inside["flash"] and inside["efficient"] and not inside["cudnn"]
    assert _flags() == before  # restored afterwards
    with flux.attention_context(torch.device("cpu")):
        assert _flags() == before  # the CPU keeps PyTorch's choice
    with get_family("sdxl").attention_context(torch.device("cuda")):
        assert _flags() == before  # only Flux asks for it


def test_every_attention_call_of_a_flux_step_runs_inside_the_family_s_context(tmp_path, monkeypatch):
    model, data = save_tiny_flux(tmp_path / "flux"), make_dataset(tmp_path / "data", n=4)
    state = {"inside": 0}
    calls: list[bool] = []

    @contextlib.contextmanager
    def recording(self, device):
        state["inside"] += 1
        try:
            yield
        finally:
            state["inside"] -= 1

    real = torch.nn.functional.scaled_dot_product_attention

    def spy(*args, **kwargs):
        if any(f.filename.endswith("transformer_flux.py") for f in traceback.extract_stack()):  # not the VAE's
            calls.append(state["inside"] > 0)
        return real(*args, **kwargs)

    monkeypatch.setattr(type(get_family("flux")), "attention_context", recording)
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", spy)
    cfg = short_flux_config(model, data, training__gradient_checkpointing=True, validation__validation_split=0.25,
                            validation__validate_every_n_steps=2)
    assert train(cfg, tmp_path / "run") == 0
    assert len(calls) > 6 and all(calls), calls  # forward, recomputed forward and validation alike


@pytest.mark.skipif(not torch.cuda.is_available(), reason="GPU-only: the real kernels")
def test_bf16_flux_gradients_are_finite_on_cuda(tmp_path):
    model, data = save_tiny_flux(tmp_path / "flux"), make_dataset(tmp_path / "data", n=4)
    assert train(short_flux_config(model, data, speed__mixed_precision="bf16"), tmp_path / "run") == 0
