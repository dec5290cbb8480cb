"""SDXL: two CLIP text encoders (CLIP-L and OpenCLIP bigG), the pooled output of the second, and the
size/crop micro-conditioning ("time ids") that the U-Net's added embedding reads.

Conditioning follows sd-scripts: the penultimate hidden states of both encoders (no final layer norm)
joined along the feature axis, the second encoder's projected pooled output of the first 75-token chunk,
and time ids computed as sd-scripts' dataset computes them (see `time_ids`).
"""

from __future__ import annotations

import torch

from trainer.engine.prompt_weights import weigh
from trainer.engine.textenc import caption_ids, hidden_states, merge_chunks
from trainer.families.base import Family, Parts
from trainer.families.sdxl import SPEC


def sd_scripts_crop_top_left(original_hw, target_hw, flipped: bool) -> tuple[int, int]:
    """(top, left) as sd-scripts' BucketManager.get_crop_ltrb reports it: the offset of the image fitted
    *inside* the bucket (Stability AI's preprocessing), mirrored when the image was flipped. It does not
    follow a random crop, and neither does sd-scripts."""
    (ih, iw), (bh, bw) = original_hw, target_hw
    image_ar, bucket_ar = iw / ih, bw / bh
    if bucket_ar > image_ar:
        resized_w, resized_h = bh * image_ar, bh
    else:
        resized_w, resized_h = bw, bw / image_ar
    left, top = (bw - resized_w) // 2, (bh - resized_h) // 2
    if flipped:
        left = bw - (left + resized_w)
    return int(top), int(left)


def time_ids(batch: dict) -> torch.Tensor:
    """[batch, 6] = original (h, w), crop (top, left), target (h, w) per sample, in sd-scripts' values."""
    rows = []
    flipped = batch.get("flipped", torch.zeros(len(batch["original_size"]), dtype=torch.bool))
    for original, target, flip in zip(batch["original_size"].tolist(), batch["target_size"].tolist(),
                                      flipped.tolist(), strict=True):
        rows.append([*original, *sd_scripts_crop_top_left(original, target, bool(flip)), *target])
    return torch.tensor(rows, dtype=torch.float32)


class SDXL(Family):
    vae_fp32 = True

    def load(self, model_cfg, cache_dir, progress) -> Parts:
        from trainer.models.loading import load_sdxl

        p = load_sdxl(model_cfg.base_model, vae=model_cfg.vae or None, cache_dir=cache_dir, dtype=torch.float32,
                      progress=progress)
        return Parts(p.unet, p.vae, [p.text_encoder, p.text_encoder_2], [p.tokenizer, p.tokenizer_2],
                     p.noise_scheduler, p.source_path)

    def encode(self, text_encoders, tokenizers, captions, cfg):
        length, n = cfg.caption.max_token_length, len(captions)
        ids1, weights1 = caption_ids(tokenizers[0], captions, cfg.caption)
        ids2, weights2 = caption_ids(tokenizers[1], captions, cfg.caption)
        hidden1, _ = hidden_states(text_encoders[0], ids1.flatten(0, 1), -2, final_norm=False)
        hidden2, out2 = hidden_states(text_encoders[1], ids2.flatten(0, 1), -2, final_norm=False)
        # the first chunk's pooled output, never weighted, as sd-scripts
        pooled = out2.text_embeds.reshape(n, ids2.shape[1], -1)[:, 0]
        hidden = torch.cat([weigh(merge_chunks(hidden1, n, length), weights1),
                            weigh(merge_chunks(hidden2, n, length), weights2).to(hidden1.device)], dim=-1)
        return {"hidden": hidden, "pooled": pooled.to(hidden1.device)}

    def unet_inputs(self, cond, batch) -> dict:
        hidden = cond["hidden"]
        ids = time_ids(batch).to(hidden.device, hidden.dtype)
        return {"encoder_hidden_states": hidden,
                "added_cond_kwargs": {"text_embeds": cond["pooled"], "time_ids": ids}}

    def original_layout(self, unet, vae, text_encoders):
        from trainer.checkpoints.sgm_layout import sdxl_to_sgm_state_dict

        return sdxl_to_sgm_state_dict(unet, vae, text_encoders)  # SGM names

    def preview_pipeline(self, models, scheduler):
        from diffusers import StableDiffusionXLPipeline

        te1, te2 = models.text_encoders
        tok1, tok2 = models.tokenizers
        return StableDiffusionXLPipeline(vae=models.vae, text_encoder=te1, text_encoder_2=te2, tokenizer=tok1,
                                         tokenizer_2=tok2, unet=models.unet, scheduler=scheduler,
                                         add_watermarker=False)

    def preview_inputs(self, models, cfg, prompt, negative) -> dict:
        pos, neg = self.encode_pair(models, cfg, prompt, negative)
        if not negative:  # SDXL's pipelines condition an empty negative prompt on zeros
            neg = {k: torch.zeros_like(v) for k, v in neg.items()}
        return {"prompt_embeds": pos["hidden"], "pooled_prompt_embeds": pos["pooled"],
                "negative_prompt_embeds": neg["hidden"], "negative_pooled_prompt_embeds": neg["pooled"]}


FAMILY = SDXL(SPEC)
