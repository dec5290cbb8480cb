"""Flux.1 (dev and schnell): a flow-matching transformer on 2x2-packed 16-channel latents, conditioned on
T5-XXL hidden states and CLIP-L's pooled output, as sd-scripts' flux_train_network.py trains it.

dev is guidance-distilled (its transformer has a guidance embedder and takes `flux.guidance_scale`); schnell
has no guidance input. Which one is read off the loaded transformer (`guidance_embeds`), never guessed from
a file name. The LoRA covers the double/single blocks' Linears and, unless U-Net-only, CLIP-L (`lora_te1_`);
T5 only with flux.train_t5xxl (`lora_te3_`).
"""

from __future__ import annotations

import copy

import torch

from trainer.engine import flow
from trainer.families.base import Family, Parts
from trainer.families.flux import SPEC, flux_swap_split

CLIP_LENGTH = 77
MIN_RESIDENT = 2  # blocks of each kind that blocks_to_swap leaves on the GPU (sd-scripts' limit)
DEFAULT_PREVIEW_GUIDANCE = 3.5  # FluxPipeline's default for dev, used when a prompt has no --g


class Flux(Family):
    flow_matching = True
    loads_in_run_dtype = True
    # what flux_train_network.py's update_metadata adds to the header
    header_args = ("model_type", "apply_t5_attn_mask", "weighting_scheme", "logit_mean", "logit_std", "mode_scale",
                   "guidance_scale", "timestep_sampling", "sigmoid_scale", "model_prediction_type",
                   "discrete_flow_shift")
    cfg = None  # the run's config, bound by for_config

    def for_config(self, cfg) -> Flux:
        bound = copy.copy(self)
        bound.cfg = cfg
        return bound

    # --- loading -----------------------------------------------------------------------------------------
    def load(self, model_cfg, cache_dir, progress, dtype=torch.float32, vae_dtype=None) -> Parts:
        from trainer.models.flux_loading import load_flux_parts

        p = load_flux_parts(model_cfg, cache_dir=cache_dir, progress=progress, dtype=dtype, vae_dtype=vae_dtype)
        p.text_encoder_2.requires_grad_(False)  # frozen unless flux.train_t5xxl gives it a LoRA
        self.modelspec_architecture = "flux-1-dev" if self.is_dev(p.transformer) else "flux-1-schnell"
        return Parts(p.transformer, p.vae, [p.text_encoder, p.text_encoder_2], [p.tokenizer, p.tokenizer_2],
                     p.noise_scheduler, p.source_path)

    @staticmethod
    def is_dev(transformer) -> bool:
        return bool(transformer.config.guidance_embeds)

    def adapted_text_encoders(self, text_encoders):
        return text_encoders if self.cfg.flux.train_t5xxl else text_encoders[:1]  # CLIP-L, and T5 on request

    def attention_context(self, device):
        """Flash or memory-efficient attention on CUDA (math only where neither takes the inputs), never cuDNN's or
        PyTorch's default pick: on an H200 (torch 2.11, CUDA 13) the default gave NaN gradients in bf16 on the tiny
        model and a cuBLAS error at full size, and these kernels gave neither (bench/gpu_sections.py flux_attention
        checks it again on a GPU)."""
        if torch.device(device).type != "cuda":
            return super().attention_context(device)
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return sdpa_kernel([SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH],
                           set_priority=True)

    def swapped_blocks(self, transformer) -> list:
        """The blocks `flux.blocks_to_swap` keeps in CPU memory, counted as sd-scripts counts them (the last ones of
        each kind, flux_swap_split), at least MIN_RESIDENT of each kind left on the GPU."""
        n = self.cfg.flux.blocks_to_swap
        if not n:
            return []
        double, single = transformer.transformer_blocks, transformer.single_transformer_blocks

        def fits(k: int) -> bool:
            d, s = flux_swap_split(k)
            return d <= len(double) - MIN_RESIDENT and s <= len(single) - MIN_RESIDENT

        n_double, n_single = flux_swap_split(n)
        if not fits(n):
            most = max((k for k in range(n) if fits(k)), default=0)
            raise ValueError(f"flux.blocks_to_swap {n} would swap {n_double} of {len(double)} double and {n_single} "
                             f"of {len(single)} single blocks; this model keeps at least {MIN_RESIDENT} of each on "
                             f"the GPU, so at most {most}")
        return [*double[len(double) - n_double:], *single[len(single) - n_single:]]

    # --- conditioning ------------------------------------------------------------------------------------
    def encode(self, text_encoders, tokenizers, captions, cfg):
        clip, t5 = text_encoders
        clip_ids = tokenizers[0](captions, padding="max_length", max_length=CLIP_LENGTH, truncation=True,
                                 return_tensors="pt").input_ids.to(clip.device)
        pooled = clip(clip_ids, output_hidden_states=False).pooler_output
        tokens = tokenizers[1](captions, padding="max_length", max_length=cfg.flux.t5xxl_max_token_length,
                               truncation=True, return_tensors="pt")
        mask = tokens.attention_mask.to(t5.device)
        hidden = t5(tokens.input_ids.to(t5.device), attention_mask=mask if cfg.flux.apply_t5_attn_mask else None,
                    ).last_hidden_state
        return {"hidden": hidden, "pooled": pooled.to(hidden.device), "t5_mask": mask}

    def text_cache_key(self, cfg) -> str:
        return f"t5={cfg.flux.t5xxl_max_token_length}|mask={cfg.flux.apply_t5_attn_mask}"

    # --- flow matching -----------------------------------------------------------------------------------
    def sample_timesteps(self, scheduler, latents, low=0, high=None):  # the range is an SD setting (schema)
        f = self.cfg.flux
        weighting = flow.Weighting(f.weighting_scheme, f.logit_mean, f.logit_std, f.mode_scale)
        sigmas = flow.sample_sigmas(f.timestep_sampling, latents.shape[0], latent_hw=tuple(latents.shape[-2:]),
                                    sigmoid_scale=f.sigmoid_scale, shift=f.discrete_flow_shift, weighting=weighting)
        return (sigmas * flow.TRAIN_TIMESTEPS).to(latents.device)

    def loss_weights(self, timesteps):
        f = self.cfg.flux
        return flow.loss_weights(f.model_prediction_type, f.weighting_scheme, timesteps / flow.TRAIN_TIMESTEPS)

    def noisy_input_and_target(self, scheduler, latents, noise, timesteps, v_prediction):
        return flow.noisy_input_and_target(latents, noise, timesteps / flow.TRAIN_TIMESTEPS)

    def snr_weights(self, scheduler, timesteps, gamma, v_prediction):
        raise ValueError("optimizer.min_snr_gamma does not apply to Flux (flow matching has no DDPM SNR)")

    def transformer_kwargs(self, transformer, cond: dict, latents: torch.Tensor, guidance: float) -> dict:
        """Everything but the packed latents and the timestep: text, pooled, position ids, guidance, mask."""
        from diffusers import FluxPipeline

        b, _, h, w = latents.shape
        hidden = cond["hidden"].to(latents.dtype)
        kwargs = {
            "encoder_hidden_states": hidden, "pooled_projections": cond["pooled"].to(latents.dtype),
            "txt_ids": torch.zeros(hidden.shape[1], 3, device=latents.device, dtype=latents.dtype),
            "img_ids": FluxPipeline._prepare_latent_image_ids(b, h // 2, w // 2, latents.device, latents.dtype),
        }
        if self.is_dev(transformer):
            kwargs["guidance"] = torch.full((b,), float(guidance), device=latents.device, dtype=latents.dtype)
        if self.cfg.flux.apply_t5_attn_mask:  # text tokens come first in Flux's joint attention
            image = torch.ones(b, (h // 2) * (w // 2), dtype=torch.bool, device=latents.device)
            joint = torch.cat([cond["t5_mask"].to(latents.device).bool(), image], dim=1)
            kwargs["joint_attention_kwargs"] = {"attention_mask": joint[:, None, None, :]}
        return kwargs

    def predict(self, unet, noisy, timesteps, cond, batch):
        from diffusers import FluxPipeline

        b, c, h, w = noisy.shape
        packed = FluxPipeline._pack_latents(noisy, b, c, h, w)
        out = unet(packed, timestep=timesteps / flow.TRAIN_TIMESTEPS,
                   **self.transformer_kwargs(unet, cond, noisy, self.cfg.flux.guidance_scale)).sample
        pred = FluxPipeline._unpack_latents(out, h, w, 1)
        return flow.apply_prediction_type(self.cfg.flux.model_prediction_type, pred, noisy,
                                          timesteps / flow.TRAIN_TIMESTEPS)

    # --- previews ----------------------------------------------------------------------------------------
    def preview_scheduler(self, sampler, noise_scheduler):
        return noise_scheduler  # Flux samples with its own flow-matching Euler scheduler

    def preview_pipeline(self, models, scheduler):
        from diffusers import FluxPipeline

        clip, t5 = models.text_encoders
        return FluxPipeline(scheduler=scheduler, vae=models.vae, text_encoder=clip, tokenizer=models.tokenizers[0],
                            text_encoder_2=t5, tokenizer_2=models.tokenizers[1], transformer=models.unet)

    def preview_inputs(self, models, cfg, prompt, negative) -> dict:
        with torch.no_grad():
            pos = self.encode(models.text_encoders, models.tokenizers, [prompt], cfg)
        device = models.unet.device  # the encoders may sit in CPU memory (cached outputs); FluxPipeline won't move these
        return {"prompt_embeds": pos["hidden"].to(device), "pooled_prompt_embeds": pos["pooled"].to(device)}

    def preview_call_args(self, prompt) -> dict:
        """`--g` is Flux's distilled guidance (dev); schnell ignores it. CFG (`--l`) does not apply."""
        return {"guidance_scale": prompt.guidance if prompt.guidance is not None else DEFAULT_PREVIEW_GUIDANCE}


FAMILY = Flux(SPEC)
