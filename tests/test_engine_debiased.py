"""sd-scripts' debiased_estimation_loss: each sample's loss weighted by 1/sqrt(SNR) (1/(SNR+1) for v-prediction),
SNR capped at 1000, which kohya_ss configs set (before, Danlu refused the key)."""

from __future__ import annotations

import torch
from diffusers import DDPMScheduler
from diffusers.training_utils import compute_snr

from trainer.config import check, config_from_dict, errors_of
from trainer.engine import noise


def test_the_weights_are_one_over_root_snr_capped():
    sched, t = DDPMScheduler(), torch.tensor([0, 10, 500, 999])
    snr = compute_snr(sched, t)
    got = noise.debiased_weights(sched, t, v_prediction=False)
    assert torch.allclose(got, 1 / torch.sqrt(torch.clamp(snr, max=1000)))
    assert abs(got[0].item() - 1 / 1000 ** 0.5) < 1e-6 and got[-1] > got[1]  # the cap; noisy steps weigh more
    assert torch.allclose(noise.debiased_weights(sched, t, v_prediction=True), 1 / (torch.clamp(snr, max=1000) + 1))


def test_it_is_an_sd_option_not_a_flux_one():
    flux = check(config_from_dict({"model": {"family": "flux"}, "optimizer": {"debiased_estimation_loss": True}}))
    assert "optimizer.debiased_estimation_loss" in [f.field for f in errors_of(flux)]
