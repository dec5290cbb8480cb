"""The Compare tab's LoRA list: files a run saved, never the pieces of folders saved beside them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from trainer.engine.checkpoint import DIFFUSERS_SUFFIX, STATE_SUFFIX


def test_diffusers_folder_and_state_files_are_not_offered_as_loras(tmp_path):
    """A LoRA saved as .pt (save_model_as) is offered; a .pt or .safetensors inside a state or diffusers folder is not."""
    from ui.tabs.compare import lora_choices

    out = tmp_path / "runs" / "20260101-100000-000-a" / "output"
    for name in (f"t{DIFFUSERS_SUFFIX}/unet/diffusion_pytorch_model.safetensors",
                 f"t{DIFFUSERS_SUFFIX}/text_encoder/model.safetensors",
                 f"t{DIFFUSERS_SUFFIX}.old/vae/diffusion_pytorch_model.safetensors",
                 f"t{STATE_SUFFIX}/optim.pt", "t.safetensors", "t-000002.pt"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_bytes(b"x")
    ctx = SimpleNamespace(outputs_dir=tmp_path / "outputs", runs_dir=tmp_path / "runs", workspace=tmp_path,
                          t=lambda key: key)
    assert [Path(path).relative_to(out).as_posix() for _, path in lora_choices(ctx)] == ["t.safetensors", "t-000002.pt"]
