"""Flux flow matching: each timestep-sampling mode draws its documented distribution, each prediction type
gives sd-scripts' prediction, the noisy input and target are the flow-matching ones."""

from __future__ import annotations

import math

import pytest
import torch

from trainer.engine import flow

N = 200_000


def draw(mode, **kw):
    return flow.sample_sigmas(mode, N, latent_hw=kw.pop("hw", (128, 128)), generator=torch.Generator().manual_seed(0),
                              **kw)


def quantiles(x, qs=(0.1, 0.25, 0.5, 0.75, 0.9)):
    return torch.quantile(x[:100_000].double(), torch.tensor(qs, dtype=torch.float64)).tolist()


def normal_q(q):
    return math.sqrt(2) * torch.erfinv(torch.tensor(2 * q - 1, dtype=torch.float64)).item()


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_uniform_is_uniform_on_0_1():
    s = draw("uniform")
    assert s.min() >= 0 and s.max() < 1
    assert quantiles(s) == pytest.approx([0.1, 0.25, 0.5, 0.75, 0.9], abs=0.01)


@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_sigmoid_quantiles_are_sigmoid_of_scaled_normal_quantiles(scale):
    s = draw("sigmoid", sigmoid_scale=scale)
    expected = [sigmoid(scale * normal_q(q)) for q in (0.1, 0.25, 0.5, 0.75, 0.9)]
    assert quantiles(s) == pytest.approx(expected, abs=0.01)
    assert s.mean().item() == pytest.approx(0.5, abs=0.01)  # symmetric about 0.5


def test_shift_maps_the_sigmoid_draw_through_the_discrete_flow_shift():
    shift = 3.1582
    s = draw("shift", shift=shift)
    expected = [sigmoid(normal_q(q)) * shift / (1 + (shift - 1) * sigmoid(normal_q(q)))
                for q in (0.1, 0.25, 0.5, 0.75, 0.9)]
    assert quantiles(s) == pytest.approx(expected, abs=0.01)
    assert quantiles(s)[2] == pytest.approx(0.5 * shift / (1 + (shift - 1) * 0.5), abs=0.01)  # median 0.76


@pytest.mark.parametrize(("hw", "mu"), [((32, 32), 0.5), ((128, 128), 1.15), ((64, 64), 0.5 + 0.65 * 768 / 3840)])
def test_flux_shift_uses_the_resolution_dependent_mu(hw, mu):
    assert flow.flux_mu((hw[0] // 2) * (hw[1] // 2)) == pytest.approx(mu)
    s = draw("flux_shift", hw=hw)
    expected = [math.exp(mu) / (math.exp(mu) + 1 / sigmoid(normal_q(q)) - 1) for q in (0.1, 0.25, 0.5, 0.75, 0.9)]
    assert quantiles(s) == pytest.approx(expected, abs=0.01)
    assert quantiles(s)[2] == pytest.approx(sigmoid(mu), abs=0.01)


def test_sigma_is_uniform_over_the_shifted_scheduler_table():
    shift = 3.0
    s = draw("sigma", shift=shift)
    # u ~ U(0,1) mapped through the table t -> shift * t / (1 + (shift - 1) * t), t = 1 - u (descending table)
    expected = [(1 - q) * shift / (1 + (shift - 1) * (1 - q)) for q in (0.9, 0.75, 0.5, 0.25, 0.1)]
    assert quantiles(s) == pytest.approx(expected, abs=0.01)
    assert len(torch.unique(s)) <= flow.TRAIN_TIMESTEPS


def test_unknown_mode_is_an_error_naming_the_field():
    with pytest.raises(ValueError, match="flux.timestep_sampling"):
        draw("cosine")


def test_noisy_input_and_target_are_flow_matching():
    latents, noise = torch.randn(3, 1, 4, 4), torch.randn(3, 1, 4, 4)
    sigmas = torch.tensor([0.0, 0.3, 1.0])
    noisy, target = flow.noisy_input_and_target(latents, noise, sigmas)
    torch.testing.assert_close(noisy[0], latents[0])
    torch.testing.assert_close(noisy[1], 0.7 * latents[1] + 0.3 * noise[1])
    torch.testing.assert_close(noisy[2], noise[2])
    torch.testing.assert_close(target, noise - latents)


def test_each_prediction_type_gives_sd_scripts_prediction():
    pred, noisy = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    sigmas = torch.tensor([0.25, 0.8])
    torch.testing.assert_close(flow.apply_prediction_type("raw", pred, noisy, sigmas), pred)
    torch.testing.assert_close(flow.apply_prediction_type("additive", pred, noisy, sigmas), pred + noisy)
    scaled = flow.apply_prediction_type("sigma_scaled", pred, noisy, sigmas)
    torch.testing.assert_close(scaled[0], -0.25 * pred[0] + noisy[0])
    torch.testing.assert_close(scaled[1], -0.8 * pred[1] + noisy[1])
    # sigma_scaled of the exact velocity recovers the clean latents: x_t - sigma * (noise - x0) = x0
    latents, noise = torch.randn(2, 1, 4, 4), torch.randn(2, 1, 4, 4)
    x_t, velocity = flow.noisy_input_and_target(latents, noise, sigmas)
    torch.testing.assert_close(flow.apply_prediction_type("sigma_scaled", velocity, x_t, sigmas), latents)


SIGMAS = torch.tensor([0.1, 0.25, 0.5, 0.9])


@pytest.mark.parametrize(("scheme", "by_hand"), [
    ("none", [1.0, 1.0, 1.0, 1.0]),
    ("sigma_sqrt", [100.0, 16.0, 4.0, 1 / 0.81]),  # sigma ** -2
    ("cosmap", [2 / (math.pi * (1 - 2 * s + 2 * s * s)) for s in (0.1, 0.25, 0.5, 0.9)]),
    ("logit_normal", [1.0, 1.0, 1.0, 1.0]),  # a density scheme: the loss is not weighted
])
def test_sigma_scaled_loss_weights_are_diffusers_sd3_weights(scheme, by_hand):
    from diffusers.training_utils import compute_loss_weighting_for_sd3

    weights = flow.loss_weights("sigma_scaled", scheme, SIGMAS)
    torch.testing.assert_close(weights, compute_loss_weighting_for_sd3(scheme, SIGMAS))
    assert weights.tolist() == pytest.approx(by_hand, rel=1e-5)


@pytest.mark.parametrize("prediction_type", ["raw", "additive"])
def test_other_prediction_types_are_not_weighted_as_in_sd_scripts(prediction_type):
    assert flow.loss_weights(prediction_type, "sigma_sqrt", SIGMAS) is None


def test_logit_normal_draws_the_sigma_table_index_from_sigmoid_of_the_scaled_normal():
    # shift 1: the table is sigma = 1 - index / 1000, so sigma = 1 - sigmoid(N(mean, std)) up to a 1/1000 step
    mean, std = 1.0, 0.5
    s = draw("sigma", shift=1.0, weighting=flow.Weighting("logit_normal", logit_mean=mean, logit_std=std))
    expected = [1 - sigmoid(mean + std * normal_q(1 - q)) for q in (0.1, 0.25, 0.5, 0.75, 0.9)]
    assert quantiles(s) == pytest.approx(expected, abs=0.01)
    assert s.min() > 0 and s.max() <= 1


@pytest.mark.parametrize("scale", [1.29, -0.5])
def test_mode_draws_sd3_mode_mapping_of_a_uniform_draw(scale):
    # u = 1 - v - scale * (cos(pi v / 2)^2 - 1 + v), v ~ U(0, 1), decreasing in v; sigma = 1 - u at shift 1
    s = draw("sigma", shift=1.0, weighting=flow.Weighting("mode", mode_scale=scale))

    def u_of(v):
        return 1 - v - scale * (math.cos(math.pi * v / 2) ** 2 - 1 + v)

    expected = [1 - u_of(q) for q in (0.1, 0.25, 0.5, 0.75, 0.9)]
    assert quantiles(s) == pytest.approx(expected, abs=0.01)
