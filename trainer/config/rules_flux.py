"""Rules for Flux runs: options of the DDPM families that flow matching has no meaning for, what the Flux
engine does not do yet, and fp8_base (only the Flux engine stores its base in fp8 so far). Registered with the
other rules (trainer.config.rules.RULES)."""

from __future__ import annotations

from trainer.config.errors import Finding, error
from trainer.config.rules import rule
from trainer.config.schema import TrainConfig


@rule
def _flux_only_flow_matching(cfg: TrainConfig) -> list[Finding]:
    if cfg.model.family != "flux":
        return []
    out = []
    if cfg.optimizer.min_snr_gamma > 0:
        out.append(error("optimizer.min_snr_gamma", "does not apply to Flux (flow matching has no DDPM "
                         "signal-to-noise ratio); set it to 0", "不适用于 Flux（流匹配没有 DDPM 信噪比）；请设为 0"))
    if cfg.network.network_weights:
        out.append(error("network.network_weights", "continuing a Flux LoRA is not supported yet; leave it "
                         "empty (resume a saved state with save.resume instead)",
                         "暂不支持继续训练 Flux LoRA；请留空（可用 save.resume 从保存的状态继续）"))
    if cfg.network.network_module != "networks.lora":
        out.append(error("network.network_module", f"{cfg.network.network_module} is not supported for Flux yet; "
                         "use networks.lora", f"Flux 暂不支持 {cfg.network.network_module}；请使用 networks.lora"))
    if cfg.network.conv_dim:
        out.append(error("network.conv_dim", "Flux has no convolution layers to adapt; set it to 0",
                         "Flux 没有可训练的卷积层；请设为 0"))
    return out


@rule
def _fp8_base_flux_only(cfg: TrainConfig) -> list[Finding]:
    if cfg.speed.fp8_base and cfg.model.family != "flux":
        return [error("speed.fp8_base", f"is supported only for Flux so far, not {cfg.model.family}; turn it off",
                      f"目前仅支持 Flux，不支持 {cfg.model.family}；请关闭")]
    return []
