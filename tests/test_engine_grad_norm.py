"""Gradient norms per trained part, before clipping, reach the run's TensorBoard scalars."""

from __future__ import annotations

import pytest
import torch

from tests.engine_helpers import make_dataset, tiny_config
from trainer.engine.loop import grad_norm_tensors
from trainer.engine.run import train
from trainer.events import read_events


def grad_norms(param_groups, scaler=None) -> list[float]:
    return [float(n) for n in grad_norm_tensors(param_groups, scaler)]


def scalars(tb_dir) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_grad_norms_per_group_with_loss_scale_divided_out():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))
    a.grad, b.grad = torch.tensor([3.0, 4.0]), None
    c = torch.nn.Parameter(torch.zeros(1))
    c.grad = torch.tensor([12.0])
    groups = [{"params": [a, c]}, {"params": [b]}]
    assert grad_norms(groups) == [pytest.approx(13.0), 0.0]

    class Scaler:
        def is_enabled(self):
            return True

        def get_scale(self):
            return 4.0

    assert grad_norms(groups, Scaler())[0] == pytest.approx(13.0 / 4)

    # torch's own GradScaler: its scale is read from the tensor it keeps (no get_scale() wait for the GPU)
    real = torch.amp.GradScaler("cpu", init_scale=8.0)
    real.scale(torch.ones(()))  # the scale tensor exists once a loss was scaled
    assert grad_norms(groups, real)[0] == pytest.approx(13.0 / 8)


def test_grad_norms_of_scaled_fp16_gradients_do_not_overflow():
    """fp16 gradients under a loss scale have norms beyond fp16's range (65504): summed in fp32 they stay finite."""
    p = torch.nn.Parameter(torch.zeros(100, dtype=torch.float16))
    p.grad = torch.full((100,), 60000.0, dtype=torch.float16)
    assert grad_norms([{"params": [p]}]) == [pytest.approx(600000.0)]


def test_tensorboard_has_grad_norm_per_part_before_clipping(tmp_path):
    from trainer.models.tiny import build_tiny_sd15

    model = tmp_path / "tiny"
    build_tiny_sd15(seed=0, four_level=True).save_pretrained(model)
    data = make_dataset(tmp_path / "data", n=2)
    clip = 1e-6  # far below any real gradient: a norm logged after clipping would be this small
    cfg = tiny_config(model, data, training__max_train_epochs=1, training__max_grad_norm=clip)
    run_dir = tmp_path / "runs" / "run"
    assert train(cfg, run_dir) == 0, read_events(run_dir)[0][-1]
    found = scalars(run_dir / "tb")
    parts = sorted(t for t in found if t.startswith("grad_norm/"))
    lr_parts = sorted(t.replace("lr/", "grad_norm/") for t in found if t.startswith("lr/"))
    assert parts == lr_parts and parts, "one grad-norm curve per trained part, named like the lr curves"
    steps = [s for s, _ in found["loss/current"]]
    for tag in parts:
        assert [s for s, _ in found[tag]] == steps
        assert all(v > clip * 10 for _, v in found[tag]), f"{tag} is the norm before clipping"
