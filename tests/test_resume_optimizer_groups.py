"""save.resume with learning-rate groups other than the saved run's (text_encoder_lr per encoder, block weights,
a part at rate 0): a clear error naming save.resume, not torch's bare ValueError."""

from __future__ import annotations

import pytest
import torch

from trainer.engine.checkpoint import Progress, load_state, save_state
from trainer.engine.errors import EngineError


def _optimizer(model: torch.nn.Module, groups: int):
    params = list(model.parameters())
    optimizer = torch.optim.AdamW([{"params": params[i::groups]} for i in range(groups)], lr=1e-3)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)


def test_resuming_with_other_optimizer_groups_names_save_resume_and_the_fix(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    optimizer, scheduler = _optimizer(model, 1)  # e.g. SDXL's two text encoders in one group (saved before 2026-12)
    folder = save_state(tmp_path / "t-state", models={"unet": model}, optimizer=optimizer, scheduler=scheduler,
                        progress=Progress(global_step=3))
    optimizer, scheduler = _optimizer(model, 2)  # now one group per encoder
    with pytest.raises(EngineError) as caught:
        load_state(folder, models={"unet": model}, optimizer=optimizer, scheduler=scheduler)
    assert caught.value.message.startswith("save.resume:") and "learning-rate groups" in caught.value.message
    assert "text_encoder_lr" in caught.value.hint
