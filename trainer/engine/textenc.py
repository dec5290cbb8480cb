"""Turning captions into the U-Net's conditioning with a CLIP text encoder (SD1.x), honouring clip_skip."""

from __future__ import annotations

import torch


def tokenize(tokenizer, captions: list[str]) -> torch.Tensor:
    return tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                     return_tensors="pt").input_ids


def encode(text_encoder, input_ids: torch.Tensor, clip_skip: int) -> torch.Tensor:
    """Hidden states of layer -clip_skip (1 = last), passed through the final layer norm as SD1.x expects."""
    device = next(text_encoder.parameters()).device
    if clip_skip <= 1:
        return text_encoder(input_ids.to(device))[0]
    out = text_encoder(input_ids.to(device), output_hidden_states=True)
    hidden = out.hidden_states[-clip_skip]
    # transformers 5 dropped the `text_model` level of CLIPTextModel; older releases still have it.
    return getattr(text_encoder, "text_model", text_encoder).final_layer_norm(hidden)

