"""dreambooth.fused_backward_pass: AdaFactor steps each weight inside the backward pass and frees its gradient;
the weights after N steps equal the normal AdaFactor path. sd-scripts' rules for it, with errors naming it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers.optimization import Adafactor

from tests.dreambooth_helpers import sd15_and_data_fixtures
from tests.engine_helpers import losses, tiny_config
from trainer.config import config_from_dict
from trainer.config.rules import check
from trainer.engine.reporter import Reporter
from trainer.engine.run import train
from trainer.events import read_events

ADAFACTOR_STEP = Adafactor.step  # the originals, before any test wraps them
REPORTER_PROGRESS = Reporter.progress


sd15, data = sd15_and_data_fixtures()


def _run(sd15, data, run_dir: Path, monkeypatch, fused: bool) -> tuple[list[int], list[dict]]:
    """Train 3 steps (with gradient checkpointing, as memory-tight runs use it); returns the number of weights of
    each AdaFactor step call, and each step's gradient norms as reported."""
    calls: list[int] = []
    norms: list[dict] = []

    def progress(self, **kw):
        norms.append(kw["grad_norms"])
        return REPORTER_PROGRESS(self, **kw)

    monkeypatch.setattr(Reporter, "progress", progress)

    def step(self, closure=None):
        calls.append(sum(len(g["params"]) for g in self.param_groups))
        return ADAFACTOR_STEP(self, closure)

    monkeypatch.setattr(Adafactor, "step", step)
    cfg = tiny_config(sd15, data, model__training_type="dreambooth", training__max_train_steps=3,
                      training__max_grad_norm=0.0, optimizer__optimizer_type="AdaFactor",
                      optimizer__learning_rate=1e-3, dreambooth__fused_backward_pass=fused,
                      training__gradient_checkpointing=True)
    assert train(cfg, run_dir) == 0, read_events(run_dir)[0][-1]
    return calls, norms


def test_fused_backward_trains_the_same_weights_one_weight_at_a_time(sd15, data, tmp_path, monkeypatch):
    normal, expected = _run(sd15, data, tmp_path / "normal", monkeypatch, fused=False)
    fused, norms = _run(sd15, data, tmp_path / "fused", monkeypatch, fused=True)
    assert len(normal) == 3 and normal[0] > 1  # one step over every weight per training step
    assert set(fused) == {1} and len(fused) == 3 * normal[0]  # one call per weight, inside backward
    assert losses(tmp_path / "fused") == pytest.approx(losses(tmp_path / "normal"), rel=1e-5)
    a = load_file(str(tmp_path / "normal" / "output" / "t.safetensors"))
    b = load_file(str(tmp_path / "fused" / "output" / "t.safetensors"))
    base = load_file(str(sd15 / "unet" / "diffusion_pytorch_model.safetensors"))["conv_out.weight"]
    assert not torch.equal(a["model.diffusion_model.out.2.weight"], base)  # it trained
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-5, atol=1e-6)
    assert norms[0].keys() == expected[0].keys() and all(v > 0 for v in norms[0].values())
    assert [list(n.values()) for n in norms] == [pytest.approx(list(n.values()), rel=1e-4) for n in expected]


def _findings(**groups) -> dict[str, list[str]]:
    base = {"model": {"training_type": "dreambooth", "base_model": "m"}, "dataset": {"train_data_dir": "d"},
            "optimizer": {"optimizer_type": "AdaFactor", "lr_scheduler": "constant"},
            "training": {"max_grad_norm": 0.0}, "dreambooth": {"fused_backward_pass": True}}
    for group, values in groups.items():
        base.setdefault(group, {}).update(values)
    out: dict[str, list[str]] = {}
    for f in check(config_from_dict(base)):
        out.setdefault(f.level, []).append(f"{f.field}: {f.en}")
    return out


def test_fused_backward_rules_follow_sd_scripts():
    assert not [f for f in _findings().get("error", []) if "fused" in f]
    assert any("AdaFactor" in e for e in _findings(optimizer={"optimizer_type": "AdamW"})["error"])
    assert any("gradient_accumulation_steps to 1" in e
               for e in _findings(training={"gradient_accumulation_steps": 2})["error"])
    assert any("only for a Dreambooth run" in e for e in _findings(model={"training_type": "lora"})["error"])
    assert any("fp16" in e for e in _findings(speed={"mixed_precision": "fp16"})["error"])
    assert all(e.startswith("dreambooth.fused_backward_pass") for e in _findings(
        optimizer={"optimizer_type": "AdamW"}, training={"gradient_accumulation_steps": 2})["error"]
        if "fused" in e)
    clipped = _findings(training={"max_grad_norm": 1.0}).get("warning", [])
    assert any(w.startswith("training.max_grad_norm") and "on its own" in w for w in clipped)


def test_each_weight_is_clipped_on_its_own_and_the_norm_reported_is_from_before():
    """max_grad_norm with fused_backward_pass: each weight's gradient is clipped by itself (as sd-scripts) before
    its update, while the group's reported norm is the unclipped one, as the normal path reports it."""
    from trainer.engine.fused_backward import FusedBackward

    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
    fused = FusedBackward(torch.optim.SGD([{"params": [a, b]}], lr=1.0), max_grad_norm=1.0)
    (a * torch.tensor([30.0, 40.0])).sum().add((b * 0.5).sum()).backward()
    torch.testing.assert_close(a.detach(), torch.tensor([-0.6, -0.8]))  # 50 clipped to 1, then one SGD step
    torch.testing.assert_close(b.detach(), torch.tensor([-0.5]))  # under the limit: left as it was
    assert a.grad is None and b.grad is None  # freed inside backward
    assert [float(n) for n in fused.take_grad_norms()] == [pytest.approx((50**2 + 0.5**2) ** 0.5)]
    assert [float(n) for n in fused.take_grad_norms()] == [0.0]  # reset after each take
