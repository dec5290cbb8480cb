"""The learning-rate schedulers sd-scripts takes beyond diffusers' first set follow their library's curve step by
step: cosine_with_min_lr, warmup_stable_decay and inverse_sqrt from transformers, piecewise_constant from diffusers,
with sd-scripts' arguments (num_cycles halved for the cosine ones, lr_decay_steps a share of the run below 1). The
expected rates come from the library functions themselves, never from trainer.engine.optim. A run's rates follow
the curve in every parameter group, count optimizer steps under gradient accumulation, and a resumed run's equal
the uninterrupted run's."""

from __future__ import annotations

import pytest
import torch
from diffusers.optimization import get_piecewise_constant_schedule
from transformers.optimization import (
    get_cosine_with_min_lr_schedule_with_warmup,
    get_inverse_sqrt_schedule,
    get_wsd_schedule,
)

from tests.engine_helpers import make_dataset, save_tiny_sd15, tiny_config
from trainer.engine.optim import make_scheduler
from trainer.engine.reporter import Reporter
from trainer.engine.run import train
from trainer.events import read_events, request_stop
from trainer.networks.save import read_lora


def rates(build, base_lrs: tuple[float, ...], steps: int) -> list[float]:
    """Each group's rate after each of `steps` optimizer steps of the scheduler `build(optimizer)` returns (what a
    run's progress events report), step by step: [group 1, group 2, ...] of step 1, then of step 2, ..."""
    groups = [{"params": [torch.nn.Parameter(torch.zeros(1))], "lr": lr} for lr in base_lrs]
    opt = torch.optim.SGD(groups, lr=base_lrs[0])
    sched = build(opt)
    out = []
    for _ in range(steps):
        opt.step()
        sched.step()
        out.extend(g["lr"] for g in opt.param_groups)
    return out


GROUPS = (1.0, 0.25)  # e.g. unet_lr and text_encoder_lr: each follows the same curve at its own scale
# name -> (make_scheduler's arguments besides name and optimizer, the library's own curve for 20 steps, warm-up 3)
CURVES = {
    "cosine_with_min_lr": ({"min_lr_ratio": 0.1}, lambda o: get_cosine_with_min_lr_schedule_with_warmup(
        o, num_warmup_steps=3, num_training_steps=20, num_cycles=0.5, min_lr_rate=0.1)),
    "warmup_stable_decay": ({"min_lr_ratio": 0.1, "decay_steps": 6}, lambda o: get_wsd_schedule(
        o, num_warmup_steps=3, num_decay_steps=6, num_stable_steps=11, min_lr_ratio=0.1, num_cycles=0.5)),
    "inverse_sqrt": ({"timescale": 5}, lambda o: get_inverse_sqrt_schedule(o, num_warmup_steps=3, timescale=5)),
    "piecewise_constant": ({"custom": ("", ["step_rules=1:8,0.5:14,0.1"])},
                           lambda o: get_piecewise_constant_schedule(o, step_rules="1:8,0.5:14,0.1")),
}


@pytest.mark.parametrize("name", sorted(CURVES))
def test_each_new_scheduler_is_the_librarys_curve_in_every_group(name):
    settings, library = CURVES[name]
    warmup = 0 if name == "piecewise_constant" else 3  # diffusers' piecewise_constant has no warm-up
    ours = rates(lambda o: make_scheduler(name, o, warmup_steps=warmup, total_steps=20, num_cycles=1, power=1.0,
                                          **settings), GROUPS, 20)
    assert ours == pytest.approx(rates(library, GROUPS, 20))


def _unet(name: str, steps: int = 20, **settings) -> list[float]:
    return rates(lambda o: make_scheduler(name, o, total_steps=steps, power=1.0, **settings), (1.0,), steps)


def test_the_curves_have_the_shapes_their_names_promise():
    cosine = _unet("cosine_with_min_lr", warmup_steps=0, num_cycles=1, min_lr_ratio=0.1)
    assert cosine[-1] == pytest.approx(0.1) and min(cosine) == pytest.approx(0.1)  # never below the floor
    wsd = _unet("warmup_stable_decay", warmup_steps=2, num_cycles=1, min_lr_ratio=0.0, decay_steps=5)
    assert wsd[1:15] == [1.0] * 14  # flat from the end of warm-up to the decay's start
    assert all(a > b for a, b in zip(wsd[14:19], wsd[15:20], strict=True)) and wsd[-1] == pytest.approx(0.0)
    inverse = _unet("inverse_sqrt", warmup_steps=4, num_cycles=1)  # timescale: the warm-up, as in sd-scripts
    assert inverse[3] == 1.0 and inverse[15] == pytest.approx((4 / 16) ** 0.5)
    piecewise = _unet("piecewise_constant", warmup_steps=0, num_cycles=1, custom=("", ["step_rules='1:5,0.5'"]))
    assert piecewise == [1.0] * 4 + [0.5] * 16
    # lr_scheduler_num_cycles = 2 (sd-scripts halves it): down to the floor and back up over the run
    wave = _unet("cosine_with_min_lr", warmup_steps=0, num_cycles=2, min_lr_ratio=0.2)
    assert wave[9] == pytest.approx(0.2) and wave[-1] == pytest.approx(1.0)


def test_a_warm_up_and_decay_longer_than_the_run_is_refused_before_training():
    from trainer.config import config_from_dict
    from trainer.engine.build import build_scheduler
    from trainer.engine.errors import EngineError

    o = config_from_dict({"optimizer": {"lr_scheduler": "warmup_stable_decay", "lr_warmup_ratio": 0.5,
                                        "lr_decay_steps": 6}}).optimizer
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(EngineError, match="lr_decay_steps"):
        build_scheduler(o, opt, 10)
    assert build_scheduler(o, opt, 12).get_last_lr() == [0.0]  # 6 + 6 of 12 fit: the warm-up starts at 0


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    return save_tiny_sd15(tmp_path_factory.mktemp("model") / "tiny")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("data"), n=2)  # 2 images x 5 repeats / batch 2 = 5 steps an epoch


TWO_RATES = {"optimizer__unet_lr": 1e-3, "optimizer__text_encoder_lr": 5e-4}


def run_rates(cfg, run_dir) -> list[float]:
    """The unet and text-encoder rates of every progress event of a finished run, in the order of `rates`."""
    assert train(cfg, run_dir) == 0, read_events(run_dir)[0][-1]
    events = [e for e in read_events(run_dir)[0] if e["type"] == "progress"]
    return [e["lr"][part] for e in events for part in ("unet", "text_encoder")]


# A 10-step run (2 epochs): the schema settings, and the library's curve they mean
RUNS = {
    "cosine_with_min_lr": ({"optimizer__lr_warmup_steps": 2, "optimizer__lr_scheduler_min_lr_ratio": 0.1},
                           lambda o: get_cosine_with_min_lr_schedule_with_warmup(o, 2, 10, min_lr_rate=0.1)),
    # lr_decay_ratio 0.3: the last 3 of the 10 steps decay
    "warmup_stable_decay": ({"optimizer__lr_warmup_ratio": 0.2, "optimizer__lr_decay_ratio": 0.3,
                             "optimizer__lr_scheduler_min_lr_ratio": 0.1},
                            lambda o: get_wsd_schedule(o, 2, 3, num_training_steps=10, min_lr_ratio=0.1)),
    "inverse_sqrt": ({"optimizer__lr_warmup_steps": 2, "optimizer__lr_scheduler_timescale": 4},
                     lambda o: get_inverse_sqrt_schedule(o, 2, timescale=4)),
    "piecewise_constant": ({"optimizer__lr_scheduler_args": ["step_rules=1:4,0.5:7,0.1"]},
                           lambda o: get_piecewise_constant_schedule(o, "1:4,0.5:7,0.1")),
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_a_run_follows_the_curve_in_each_parameter_group(tiny_model, data, tmp_path, name):
    settings, library = RUNS[name]
    cfg = tiny_config(tiny_model, data, optimizer__lr_scheduler=name, **TWO_RATES, **settings)
    assert run_rates(cfg, tmp_path / "run") == pytest.approx(rates(library, (1e-3, 5e-4), 10))


def test_gradient_accumulation_counts_the_curve_in_optimizer_steps(tiny_model, data, tmp_path):
    """5 batches an epoch, 2 a step: 3 optimizer steps an epoch (the last of one batch), 6 in the run, of which
    lr_decay_ratio 0.4 (2 steps) decay."""
    cfg = tiny_config(tiny_model, data, optimizer__lr_scheduler="warmup_stable_decay", optimizer__lr_warmup_steps=1,
                      optimizer__lr_decay_ratio=0.4, training__gradient_accumulation_steps=2, **TWO_RATES)
    got = run_rates(cfg, tmp_path / "run")
    assert next(e for e in read_events(tmp_path / "run")[0] if e["type"] == "started")["total_steps"] == 6
    assert got == pytest.approx(rates(lambda o: get_wsd_schedule(o, 1, 2, num_training_steps=6), (1e-3, 5e-4), 6))


def test_a_run_stopped_and_resumed_has_the_uninterrupted_runs_rates_and_weights(tiny_model, data, tmp_path,
                                                                                 monkeypatch):
    cfg = tiny_config(tiny_model, data, optimizer__lr_scheduler="warmup_stable_decay", optimizer__lr_warmup_steps=2,
                      optimizer__lr_decay_ratio=0.5, optimizer__lr_scheduler_min_lr_ratio=0.1, **TWO_RATES)
    full = run_rates(cfg, tmp_path / "full")
    real = Reporter.progress

    def stop_at_step_6(self, **kw):  # as a click on Stop after step 6 (in the decay) would
        real(self, **kw)
        if kw["step"] == 6:
            request_stop(tmp_path / "first")

    monkeypatch.setattr(Reporter, "progress", stop_at_step_6)
    assert train(cfg, tmp_path / "first") == 0
    monkeypatch.undo()
    assert read_events(tmp_path / "first")[0][-1]["type"] == "stopped"
    resumed = cfg.model_copy(update={"save": cfg.save.model_copy(
        update={"resume": str(tmp_path / "first" / "output" / "t-state")})})
    assert run_rates(resumed, tmp_path / "second") == pytest.approx(full[2 * 6:])
    a, b = (read_lora(tmp_path / run / "output" / "t.safetensors")[0] for run in ("full", "second"))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
