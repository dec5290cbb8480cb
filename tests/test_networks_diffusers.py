"""Our kohya files load in diffusers' own kohya loader and compute what our in-process LoRA computes."""

from __future__ import annotations

import logging
import warnings

import pytest
import torch

from trainer.models.tiny import build_tiny_sd15, build_tiny_sdxl
from trainer.networks.inject import add_lora
from trainer.networks.kohya_format import to_kohya_state_dict
from trainer.networks.save import save_lora

PROMPT = "a red circle"
COMPLAINTS = ("unexpected", "missing", "not been correctly", "incompatible", "not found", "were not used")
BUILDERS = {"sd15": build_tiny_sd15, "sdxl": build_tiny_sdxl}


def _run(pipe) -> torch.Tensor:
    # Small latents and no CFG keep this fast; LoRA semantics do not depend on either.
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        return pipe(PROMPT, num_inference_steps=2, generator=generator, output_type="latent",
                    height=32, width=32, guidance_scale=1.0).images


@pytest.fixture(scope="module")
def base_outputs() -> dict[str, torch.Tensor]:
    return {family: _run(build(seed=0)) for family, build in BUILDERS.items()}


def _perturb_up(lora_set, seed: int = 1) -> None:
    """Non-zero up weights, so the LoRA changes the output (they start at zero)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for component in lora_set.models:
            for layer in lora_set.layers(component).values():
                weight = layer.lora_B[lora_set.adapter_name].weight
                weight.copy_(torch.randn(weight.shape, generator=gen) * 0.3)


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _load_quietly(pipe, path, adapter: str) -> list[str]:
    """Load with diffusers and return every log line / warning that complains about keys."""
    handler = _Collect()
    loggers = [logging.getLogger(name) for name in ("diffusers", "peft", "transformers")]
    for lg in loggers:
        lg.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            pipe.load_lora_weights(str(path), adapter_name=adapter)
    finally:
        for lg in loggers:
            lg.removeHandler(handler)
    messages = handler.messages + [str(w.message) for w in caught]
    complaints = [m for m in messages if any(word in m.lower() for word in COMPLAINTS)]
    # transformers' load report lists the frozen base weights as "missing" from any adapter-only load;
    # what matters is that no LoRA key was missing, unexpected or dropped.
    return [line for m in complaints for line in m.splitlines()
            if "lora" in line.lower() or "unexpected" in line.lower()]


def _text_encoders(pipe) -> list:
    return [te for te in (pipe.text_encoder, getattr(pipe, "text_encoder_2", None)) if te is not None]


@pytest.mark.parametrize(("family", "conv_dim"), [("sd15", None), ("sd15", 2), ("sdxl", None), ("sdxl", 2)])
def test_diffusers_loads_our_file_and_agrees(tmp_path, base_outputs, family, conv_dim):
    build, base_out = BUILDERS[family], base_outputs[family]
    ours = build(seed=0)
    lora = add_lora(ours.unet, _text_encoders(ours), dim=4, alpha=3.0, dropout=0.0, train_unet=True,
                    train_text_encoder=True, conv_dim=conv_dim, conv_alpha=1.0 if conv_dim else None)
    _perturb_up(lora)
    path = save_lora(tmp_path / "lora.safetensors", to_kohya_state_dict(lora, family), {}, precision="float")
    ours_out = _run(ours)

    theirs = build(seed=0)
    complaints = _load_quietly(theirs, path, adapter="file")
    assert complaints == []
    theirs_out = _run(theirs)

    assert not torch.allclose(theirs_out, base_out, atol=1e-3), "the LoRA did not change the output"
    # Same file, same seed: diffusers and our peft adapters compute the same thing (alpha/rank semantics).
    torch.testing.assert_close(ours_out, theirs_out, atol=1e-4, rtol=1e-4)

    if conv_dim:
        return  # scale 0 is checked on the plain LoRA; the LoCon case adds the conv names and shapes
    theirs.set_adapters(["file"], adapter_weights=[0.0])
    torch.testing.assert_close(_run(theirs), base_out, atol=1e-5, rtol=1e-5)
    lora.set_scale(0.0)
    torch.testing.assert_close(_run(ours), base_out, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", ["sd15", "sdxl"])
def test_diffusers_loads_a_lycoris_locon_file_and_agrees(tmp_path, base_outputs, family):
    """LyCORIS LoCon (preset full: also conv_in/conv_out and the time embedding) through diffusers' kohya loader."""
    from trainer.networks.lycoris_net import add_lycoris

    ours = BUILDERS[family](seed=0)
    net = add_lycoris(ours.unet, _text_encoders(ours), family=family, dim=4, alpha=3.0, algo="locon", conv_dim=2,
                      conv_alpha=1.0, network_args=["preset=full"])
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)
    path = save_lora(tmp_path / "locon.safetensors", net.kohya_state_dict(family), {}, precision="float")
    ours_out = _run(ours)
    theirs = BUILDERS[family](seed=0)
    assert _load_quietly(theirs, path, adapter="file") == []
    theirs_out = _run(theirs)
    assert not torch.allclose(theirs_out, base_outputs[family], atol=1e-3)
    torch.testing.assert_close(ours_out, theirs_out, atol=1e-4, rtol=1e-4)
