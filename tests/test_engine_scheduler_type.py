"""sd-scripts' lr_scheduler_type / lr_scheduler_args: a PyTorch scheduler class (e.g. CosineAnnealingLR with
T_max=1000) instead of the named schedules; kohya configs set it through additional_parameters (4 of kohya_ss' own
examples). Only torch.optim.lr_scheduler's classes that step once a step with the optimizer alone are offered, so a
config cannot name an arbitrary Python class on a shared server."""

from __future__ import annotations

import math

import pytest
import torch

from trainer.config import ConfigError, check, config_from_dict, errors_of
from trainer.engine.optim import make_scheduler


def test_the_class_runs_with_its_arguments():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = make_scheduler("cosine", opt, warmup_steps=0, total_steps=100, num_cycles=1, power=1.0,
                           custom=("CosineAnnealingLR", ["T_max=10", "eta_min=0.1"]))
    for _ in range(5):
        opt.step()
        sched.step()
    assert math.isclose(opt.param_groups[0]["lr"], 0.1 + 0.9 * (1 + math.cos(math.pi * 5 / 10)) / 2, rel_tol=1e-6)


def test_settings_that_do_not_fit_are_refused_or_named():
    with pytest.raises(ConfigError):
        config_from_dict({"optimizer": {"lr_scheduler_type": "builtins.exec"}})
    args_alone = check(config_from_dict({"optimizer": {"lr_scheduler_args": ["T_max=10"]}}))
    assert "optimizer.lr_scheduler_args" in [f.field for f in errors_of(args_alone)]
    bad_args = check(config_from_dict({"optimizer": {"lr_scheduler_type": "StepLR", "lr_scheduler_args": ["=3"]}}))
    assert "optimizer.lr_scheduler_args" in [f.field for f in errors_of(bad_args)]
    warm = check(config_from_dict({"optimizer": {"lr_scheduler_type": "StepLR", "lr_scheduler_args": ["step_size=5"],
                                                 "lr_warmup_steps": 10}}))
    assert any(f.field == "optimizer.lr_warmup_steps" and f.level == "warning" for f in warm)
