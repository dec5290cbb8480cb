"""CLIP tokenization and encoding shared by the SD families, with sd-scripts' long-prompt chunking.

`max_token_length` 150 or 225 splits a caption into 75-token chunks, each wrapped as
`<BOS> 75 tokens <EOS>` and encoded separately; the hidden states are then joined back into one
sequence of 1 + max_token_length + 1 vectors, exactly as sd-scripts builds and merges them.
"""

from __future__ import annotations

import torch

CHUNK = 75  # tokens between <BOS> and <EOS> in one CLIP window of 77


def tokenize(tokenizer, captions: list[str], max_token_length: int = CHUNK) -> torch.Tensor:
    """Token ids [batch, chunks, 77]; one chunk for 75 tokens, two for 150, three for 225."""
    ids = tokenizer(captions, padding="max_length", truncation=True, max_length=max_token_length + 2,
                    return_tensors="pt").input_ids
    return chunked(tokenizer, ids)


def chunked(tokenizer, ids: torch.Tensor) -> torch.Tensor:
    """Padded ids [batch, 1 + max_token_length + 1] -> [batch, chunks, 77] in 75-token windows."""
    if ids.shape[-1] == tokenizer.model_max_length:
        return ids[:, None]
    return torch.stack([_chunks(tokenizer, row) for row in ids])


def caption_ids(tokenizer, captions: list[str], caption_cfg) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(ids [batch, chunks, 77], each token's weight [batch, 1 + max_token_length + 1] or None): the captions
    read with A1111's (tag:1.2) weights when caption.weighted_captions is on (trainer.engine.prompt_weights)."""
    length = caption_cfg.max_token_length
    if not caption_cfg.weighted_captions:
        return tokenize(tokenizer, captions, length), None
    from trainer.engine.prompt_weights import weighted_ids

    ids, weights = weighted_ids(tokenizer, captions, length)
    return chunked(tokenizer, ids), weights


def _chunks(tokenizer, ids: torch.Tensor) -> torch.Tensor:
    window, pad, eos = tokenizer.model_max_length, tokenizer.pad_token_id, tokenizer.eos_token_id
    out = []
    for i in range(1, ids.shape[-1] - window + 2, window - 2):
        chunk = torch.cat([ids[:1], ids[i:i + window - 2], ids[-1:]])
        if pad != eos:
            # A pad-with-"!" tokenizer (SDXL's second): a cut-off chunk must still end with <EOS>, and an
            # empty one must start <BOS> <EOS> like a real empty prompt.
            if chunk[-2] not in (eos, pad):
                chunk[-1] = eos
            if chunk[1] == pad:
                chunk[1] = eos
        out.append(chunk)
    return torch.stack(out)


def merge_chunks(hidden: torch.Tensor, batch: int, max_token_length: int, window: int = 77) -> torch.Tensor:
    """[batch * chunks, 77, d] -> [batch, 1 + max_token_length + 1, d]: the first <BOS>, every chunk's
    75 inner vectors, the last chunk's final vector (sd-scripts' layout); unchanged for one chunk."""
    hidden = hidden.reshape(batch, -1, hidden.shape[-1])
    if hidden.shape[1] == window:
        return hidden
    parts = [hidden[:, :1]]
    parts += [hidden[:, i:i + window - 2] for i in range(1, max_token_length, window)]
    parts.append(hidden[:, -1:])
    return torch.cat(parts, dim=1)


def hidden_states(text_encoder, input_ids: torch.Tensor, layer: int, final_norm: bool):
    """(hidden states of `layer` (-1 = last), the encoder's full output) for ids [n, 77]. `final_norm` passes
    an earlier layer through the final layer norm, as SD1.x's clip_skip does (SDXL uses it raw)."""
    device = next(text_encoder.parameters()).device
    out = text_encoder(input_ids.to(device), output_hidden_states=True)
    if layer == -1:
        return out.last_hidden_state, out  # the last layer, already through the final layer norm
    hidden = out.hidden_states[layer]
    if final_norm:
        # transformers 5 dropped the `text_model` level of CLIPTextModel; older releases still have it.
        hidden = getattr(text_encoder, "text_model", text_encoder).final_layer_norm(hidden)
    return hidden, out

