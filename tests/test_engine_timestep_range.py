"""sd-scripts' min_timestep / max_timestep (SD1.5, SDXL): training draws its timesteps from [min, max) only, e.g.
the high-noise half for composition or the low-noise end for detail. Before, Danlu refused the keys."""

from __future__ import annotations

import torch
from diffusers import DDPMScheduler

from trainer.config import check, config_from_dict, errors_of
from trainer.families import get_family


def test_timesteps_are_drawn_from_the_range():
    fam, sched, like = get_family("sd15"), DDPMScheduler(), torch.zeros(4096, 4, 1, 1)
    t = fam.sample_timesteps(sched, like, low=200, high=300)
    assert t.min() >= 200 and t.max() < 300 and len(t.unique()) > 90
    t = fam.sample_timesteps(sched, like)
    assert t.min() >= 0 and t.max() < 1000 and t.max() > 990


def test_an_empty_range_is_an_error():
    findings = check(config_from_dict({"noise": {"min_timestep": 500, "max_timestep": 400}}))
    assert "noise.max_timestep" in [f.field for f in errors_of(findings)]
    flux = check(config_from_dict({"model": {"family": "flux"}, "noise": {"min_timestep": 100}}))
    assert "noise.min_timestep" in [f.field for f in errors_of(flux)]
