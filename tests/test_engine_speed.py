"""The speed switches are applied, not just accepted: backend flags, channels_last, fused/foreach optimizers,
pinned loader memory and workers, each seen in a real tiny run with the switch on (GPU-only effects are seen
in the flags and arguments the engine sets, since the tests have no GPU)."""

from __future__ import annotations

import pytest
import torch

from tests.engine_helpers import make_dataset, save_tiny_sd15, tiny_config
from trainer.engine import session as session_mod
from trainer.engine import speed
from trainer.engine.optim import make_optimizer
from trainer.engine.run import train

ON = {"speed__tf32": True, "speed__cudnn_benchmark": True, "speed__channels_last": True,
      "speed__fused_optimizer": True, "speed__pin_memory": True, "speed__max_data_loader_n_workers": 1,
      "speed__persistent_data_loader_workers": True, "training__max_train_steps": 3}


class Seen:
    """What one tiny run with every switch on left behind."""

    def __init__(self):
        self.session = None
        self.loader_kwargs: dict = {}
        self.flags: dict = {}


@pytest.fixture(scope="module")
def seen(tmp_path_factory) -> Seen:
    root = tmp_path_factory.mktemp("speed")
    model, data = save_tiny_sd15(root / "model"), make_dataset(root / "data", n=4)
    out = Seen()
    real_setup, real_loader, real_options = session_mod.Session.setup, session_mod.DataLoader, speed.loader_options

    def setup(self):
        out.session = self
        real_setup(self)

    def loader(*args, **kwargs):
        out.loader_kwargs = dict(kwargs)
        kwargs["pin_memory"] = False  # no GPU to pin for here; the argument is what is checked
        return real_loader(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        # Start from torch's defaults and put them back afterwards (the flags are process-wide).
        mp.setattr(torch.backends.cuda.matmul, "fp32_precision", "ieee")
        mp.setattr(torch.backends.cudnn.conv, "fp32_precision", "ieee")
        mp.setattr(torch.backends.cudnn, "benchmark", False)
        mp.setattr(session_mod.Session, "setup", setup)
        mp.setattr(session_mod, "DataLoader", loader)
        mp.setattr(speed, "loader_options", lambda s, device: real_options(s, "cuda"))  # as on a GPU machine
        assert train(tiny_config(model, data, **ON), root / "run") == 0
        out.flags = {"matmul": torch.backends.cuda.matmul.fp32_precision,
                     "conv": torch.backends.cudnn.conv.fp32_precision, "benchmark": torch.backends.cudnn.benchmark}
    return out


def test_tf32_and_cudnn_benchmark_flags_are_set(seen):
    assert seen.flags == {"matmul": "tf32", "conv": "tf32", "benchmark": True}


def test_default_run_leaves_the_backend_flags_alone(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "fp32_precision", "ieee")
    speed.apply_backend_flags(tiny_config("m", "d").speed, "cpu", warn=lambda *a: None)
    assert (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.fp32_precision) == (False, "ieee")


def test_channels_last_unet(seen):
    convs = [p for p in seen.session.models.unet.parameters() if p.dim() == 4 and p.shape[-1] > 1]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    assert not all(p.is_contiguous() for p in convs)  # really another layout, not both at once


def test_fused_optimizer_in_the_run(seen):
    inner = getattr(seen.session.optimizer, "optimizer", seen.session.optimizer)  # accelerate's wrapper
    assert inner.defaults["fused"] is True


def test_fused_else_foreach_and_optimizer_args_win():
    w = torch.nn.Parameter(torch.zeros(4))
    assert make_optimizer("AdamW", [{"params": [w]}], 1e-3).defaults["fused"] is None  # off: torch's default
    chosen = make_optimizer("AdamW", [{"params": [w]}], 1e-3, ["foreach=False"], fused=True)
    assert (chosen.defaults["foreach"], chosen.defaults["fused"]) == (False, None)

    class ForeachOnly(torch.optim.Optimizer):
        def __init__(self, params, lr=1e-3, foreach=None):
            super().__init__(params, {"lr": lr, "foreach": foreach})

    from trainer.engine.speed import optimizer_impl

    assert optimizer_impl(ForeachOnly, {}) == {"foreach": True}
    # An optimizer without either keyword is built as before.
    assert make_optimizer("Prodigy", [{"params": [w]}], 1.0, fused=True) is not None


def test_pinned_memory_and_workers_reach_the_loader(seen):
    kw = seen.loader_kwargs
    assert (kw["pin_memory"], kw["num_workers"], kw["persistent_workers"]) == (True, 1, True)


def test_pinning_only_on_a_gpu():
    s = tiny_config("m", "d", speed__pin_memory=True).speed
    assert speed.loader_options(s, "cuda")["pin_memory"] and not speed.loader_options(s, "cpu")["pin_memory"]


class Moved:
    """Stands in for a batch tensor: records how it is copied to the device."""

    def __init__(self):
        self.kwargs: dict = {}

    def to(self, *args, **kwargs):
        self.kwargs = kwargs
        return torch.zeros(1)


@pytest.mark.parametrize("pin", [True, False])
def test_pinned_batches_are_copied_without_waiting_on_a_gpu(pin):
    from types import SimpleNamespace

    from trainer.engine.loop import StepRunner

    gpu = SimpleNamespace(device=torch.device("cuda"), num_processes=1)
    runner = StepRunner(tiny_config("m", "d", speed__pin_memory=pin), None, gpu, None, None, [])
    latents = Moved()
    runner._latents({"latents": latents})
    assert latents.kwargs.get("non_blocking") is pin
