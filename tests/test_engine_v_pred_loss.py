"""sd-scripts' two v-prediction loss scalings, which configs for v-prediction models (SDXL v-pred) set:
scale_v_pred_loss_like_noise_pred weighs a v-prediction loss by SNR/(SNR+1), so each timestep counts as it would in
a noise-prediction run; v_pred_like_loss adds that much of a v-prediction-like loss to a noise-prediction one
(loss x (1 + k (SNR+1)/SNR)). SNR capped at 1000, as sd-scripts caps it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from diffusers import DDPMScheduler
from diffusers.training_utils import compute_snr

from tests.engine_helpers import make_dataset, save_tiny_sd15, tiny_config
from trainer.config import check, config_from_dict, errors_of
from trainer.config.kohya import import_kohya
from trainer.engine import noise
from trainer.engine.build import load_models
from trainer.engine.loop import StepRunner
from trainer.engine.precision import resolve_precision

T = torch.tensor([0, 10, 500, 999])


def test_the_scale_is_snr_over_snr_plus_one_capped():
    sched = DDPMScheduler()
    snr = torch.clamp(compute_snr(sched, T), max=1000)
    assert torch.allclose(noise.v_pred_scale(sched, T), snr / (snr + 1))
    assert noise.v_pred_scale(sched, T)[0] == pytest.approx(1000 / 1001)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_sd15(tmp_path_factory.mktemp("model") / "tiny-sd15")


def _loss_with_unit_samples(cfg, tmp_path, monkeypatch) -> tuple[float, DDPMScheduler]:
    """The batch loss when every sample's raw loss is 1: the mean of the weights the run applies at timesteps T."""
    prec = resolve_precision("no", full_fp16=False, full_bf16=False, no_half_vae=False, device="cpu", warn=print)
    models = load_models(cfg, prec, tmp_path, lambda *a: None, lambda *a: None)
    runner = StepRunner(cfg, models, Accelerator(cpu=True), None, None, [])
    monkeypatch.setattr(noise, "per_sample_loss", lambda *a: torch.ones(len(T)))
    batch = {"latents": torch.zeros(len(T), 4, 8, 8), "captions": ["zk"] * len(T), "is_reg": torch.zeros(len(T), dtype=bool)}
    return runner.loss(batch, timesteps=T).item(), models.noise_scheduler


def test_each_reaches_the_loss(tiny_model, tmp_path, monkeypatch):
    data = make_dataset(tmp_path / "data", n=1)
    v_cfg = tiny_config(tiny_model, data, model__v_parameterization=True,
                        optimizer__scale_v_pred_loss_like_noise_pred=True)
    got, sched = _loss_with_unit_samples(v_cfg, tmp_path / "a", monkeypatch)
    assert got == pytest.approx(noise.v_pred_scale(sched, T).mean().item(), rel=1e-5)
    eps_cfg = tiny_config(tiny_model, data, optimizer__v_pred_like_loss=0.5)
    got, sched = _loss_with_unit_samples(eps_cfg, tmp_path / "b", monkeypatch)
    assert got == pytest.approx((1 + 0.5 / noise.v_pred_scale(sched, T)).mean().item(), rel=1e-5)
    plain, _ = _loss_with_unit_samples(tiny_config(tiny_model, data), tmp_path / "c", monkeypatch)
    assert plain == pytest.approx(1.0)
    # debiased estimation goes through the same weights (its own test only saw the helper called)
    debiased, sched = _loss_with_unit_samples(tiny_config(tiny_model, data, optimizer__debiased_estimation_loss=True),
                                              tmp_path / "d", monkeypatch)
    assert debiased == pytest.approx(noise.debiased_weights(sched, T, False).mean().item(), rel=1e-5)


def test_each_needs_its_prediction_type_as_in_sd_scripts():
    def errors(**opt):
        cfg = config_from_dict({"model": {"v_parameterization": opt.pop("v", False)}, "optimizer": opt})
        return [f.field for f in errors_of(check(cfg))]

    assert "optimizer.scale_v_pred_loss_like_noise_pred" in errors(scale_v_pred_loss_like_noise_pred=True)
    assert "optimizer.scale_v_pred_loss_like_noise_pred" not in errors(scale_v_pred_loss_like_noise_pred=True, v=True)
    assert "optimizer.v_pred_like_loss" in errors(v_pred_like_loss=0.2, v=True)
    assert "optimizer.v_pred_like_loss" not in errors(v_pred_like_loss=0.2)
    flux = config_from_dict({"model": {"family": "flux"}, "optimizer": {"v_pred_like_loss": 0.2}})
    assert "optimizer.v_pred_like_loss" in [f.field for f in errors_of(check(flux))]


def test_sd_scripts_configs_import_them():
    cfg = import_kohya({"train_data_dir": "img", "v_parameterization": True, "scale_v_pred_loss_like_noise_pred": True})
    assert cfg.optimizer.scale_v_pred_loss_like_noise_pred is True
    assert import_kohya({"train_data_dir": "img", "v_pred_like_loss": 0.3}).optimizer.v_pred_like_loss == 0.3
