"""SD1.x: one CLIP-L text encoder, conditioning from layer -clip_skip through the final layer norm."""

from __future__ import annotations

import torch

from trainer.engine.prompt_weights import weigh
from trainer.engine.textenc import caption_ids, hidden_states, merge_chunks
from trainer.families.base import Family, Parts
from trainer.families.sd15 import SPEC


class SD15(Family):

    def load(self, model_cfg, cache_dir, progress) -> Parts:
        from trainer.models.loading import load_sd15

        p = load_sd15(model_cfg.base_model, vae=model_cfg.vae or None, cache_dir=cache_dir, dtype=torch.float32,
                      progress=progress)
        return Parts(p.unet, p.vae, [p.text_encoder], [p.tokenizer], p.noise_scheduler, p.source_path)

    def encode(self, text_encoders, tokenizers, captions, cfg):
        length = cfg.caption.max_token_length
        ids, weights = caption_ids(tokenizers[0], captions, cfg.caption)
        hidden, _ = hidden_states(text_encoders[0], ids.flatten(0, 1), -cfg.other.clip_skip, final_norm=True)
        return {"hidden": weigh(merge_chunks(hidden, len(captions), length), weights)}

    def text_cache_key(self, cfg) -> str:
        return f"{super().text_cache_key(cfg)}|clip_skip={cfg.other.clip_skip}"

    def original_layout(self, unet, vae, text_encoders):
        from trainer.models.sd15_single_file import sd15_to_ldm_state_dict

        return sd15_to_ldm_state_dict(unet, vae, text_encoders[0])  # LDM names

    def preview_pipeline(self, models, scheduler):
        from diffusers import StableDiffusionPipeline

        return StableDiffusionPipeline(
            vae=models.vae, text_encoder=models.text_encoders[0], tokenizer=models.tokenizers[0], unet=models.unet,
            scheduler=scheduler, safety_checker=None, feature_extractor=None, requires_safety_checker=False)

    def preview_inputs(self, models, cfg, prompt, negative) -> dict:
        pos, neg = self.encode_pair(models, cfg, prompt, negative)
        return {"prompt_embeds": pos["hidden"], "negative_prompt_embeds": neg["hidden"]}


FAMILY = SD15(SPEC)
