"""sd-scripts' two refinements of noise_offset, which kohya_ss users' configs set (7 and 2 of its own example
configs): adaptive_noise_scale (the offset grows with each latent channel's absolute mean) and
noise_offset_random_strength (each step's offset drawn between 0 and noise_offset)."""

from __future__ import annotations

import pytest
import torch

from trainer.config import check, config_from_dict, errors_of
from trainer.engine import noise


def draws(latents, seed=0, uniform=False):
    """The draws sample_noise makes, in its order: the noise, [the strength], then one offset per image and channel."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(latents.shape, generator=g)
    strength = torch.rand(1, generator=g) if uniform else None
    per_channel = torch.randn(latents.shape[:2] + (1, 1), generator=g)
    return base, strength, per_channel


def test_adaptive_scale_adds_the_channels_absolute_mean_to_the_offset():
    latents = torch.randn(3, 4, 8, 8) + torch.tensor([0.5, -2.0, 0.0, 1.0]).view(1, 4, 1, 1)
    got = noise.sample_noise(latents, offset=0.1, multires_iterations=0, multires_discount=0.3,
                             adaptive_scale=0.2, generator=torch.Generator().manual_seed(0))
    base, _, per_channel = draws(latents)
    offset = 0.1 + 0.2 * latents.mean(dim=(2, 3), keepdim=True).abs()
    assert torch.allclose(got, base + offset * per_channel, atol=1e-6)
    # a negative scale lowers the offset, never below zero
    got = noise.sample_noise(latents, offset=0.1, multires_iterations=0, multires_discount=0.3,
                             adaptive_scale=-1.0, generator=torch.Generator().manual_seed(0))
    offset = (0.1 - latents.mean(dim=(2, 3), keepdim=True).abs()).clamp(min=0)
    assert torch.allclose(got, base + offset * per_channel, atol=1e-6)


def test_random_strength_draws_the_offset_between_zero_and_noise_offset():
    latents = torch.zeros(2, 4, 8, 8)
    got = noise.sample_noise(latents, offset=0.3, multires_iterations=0, multires_discount=0.3,
                             random_strength=True, generator=torch.Generator().manual_seed(1))
    base, strength, per_channel = draws(latents, seed=1, uniform=True)
    assert torch.allclose(got, base + 0.3 * strength * per_channel, atol=1e-6)


@pytest.mark.parametrize("noise_settings, field, base", [
    ({"adaptive_noise_scale": 0.01}, "noise.adaptive_noise_scale", {"noise_offset": 0.05}),
    ({"noise_offset_random_strength": True}, "noise.noise_offset_random_strength", {"noise_offset": 0.05}),
    ({"ip_noise_gamma_random_strength": True}, "noise.ip_noise_gamma_random_strength", {"ip_noise_gamma": 0.1}),
])
def test_each_refinement_needs_what_it_refines(noise_settings, field, base):
    noise_errors = lambda settings: [f.field for f in errors_of(check(config_from_dict({"noise": settings})))  # noqa: E731
                                     if f.field.startswith("noise.")]
    assert noise_errors(noise_settings) == [field]
    assert noise_errors({**noise_settings, **base}) == []


def test_input_perturbation_is_gamma_or_a_random_share_of_it_times_a_normal():
    latents = torch.zeros(2, 4, 8, 8)
    got = noise.input_perturbation(latents, 0.1, False, generator=torch.Generator().manual_seed(5))
    assert torch.allclose(got, 0.1 * torch.randn(latents.shape, generator=torch.Generator().manual_seed(5)))
    got = noise.input_perturbation(latents, 0.1, True, generator=torch.Generator().manual_seed(5))
    g = torch.Generator().manual_seed(5)
    share = torch.rand(1, generator=g).item()
    assert torch.allclose(got, 0.1 * share * torch.randn(latents.shape, generator=g))


def test_a_global_draw_offsets_each_rank_by_its_own_latents():
    """Several GPUs draw the noise of the whole global batch on every rank and keep their own rows; the draw's
    `latents` is then an empty stand-in, so the adaptive offset must read the rank's real latents."""
    from trainer.engine import distributed

    local = torch.randn(2, 4, 8, 8) + torch.tensor([3.0, -1.0, 0.5, 0.0]).view(1, 4, 1, 1)
    whole = torch.cat([torch.randn(2, 4, 8, 8), local])  # this rank holds rows 2 and 3 of 4
    kw = {"offset": 0.1, "multires_iterations": 0, "multires_discount": 0.3, "adaptive_scale": 0.5}
    one_process = noise.sample_noise(whole, generator=torch.Generator().manual_seed(3), **kw)
    shard = (2, 4, 4)
    mean = distributed.global_rows(local.mean(dim=(2, 3), keepdim=True).abs(), shard)
    mine = distributed.global_draw(lambda like: noise.sample_noise(
        like, channel_mean=mean, generator=torch.Generator().manual_seed(3), **kw), local, shard)
    assert torch.allclose(mine, one_process[2:4], atol=1e-6)
