"""Rules for the noise and the loss's weighting: settings that need another (an offset's refinements, a prediction
type) or exclude one. Registered with the other rules (trainer.config.rules.RULES)."""

from __future__ import annotations

from trainer.config.errors import Finding, error
from trainer.config.rules import rule
from trainer.config.schema import TrainConfig


@rule
def _noise(cfg: TrainConfig) -> list[Finding]:
    n = cfg.noise
    out = []
    if n.noise_offset > 0 and n.multires_noise_iterations > 0:
        out.append(error("noise.multires_noise_iterations", "cannot be combined with noise_offset; set one of them "
                         "to 0", "不能与 noise_offset 同时使用；请把其中一个设为 0"))
    if n.min_timestep >= n.max_timestep:
        out.append(error("noise.max_timestep", f"must be above min_timestep ({n.min_timestep}): training draws its "
                         "timesteps from min_timestep up to below max_timestep", f"必须大于 min_timestep"
                         f"（{n.min_timestep}）：训练从 min_timestep 到小于 max_timestep 的范围内抽取时间步"))
    needs = [("noise.adaptive_noise_scale", n.adaptive_noise_scale != 0, "noise_offset", n.noise_offset, "0.05"),
             ("noise.noise_offset_random_strength", n.noise_offset_random_strength, "noise_offset", n.noise_offset,
              "0.05"),
             ("noise.ip_noise_gamma_random_strength", n.ip_noise_gamma_random_strength, "ip_noise_gamma",
              n.ip_noise_gamma, "0.1")]
    return out + [error(field, f"changes {base}, which is 0: set {base} too (e.g. {example}), or turn this off",
                        f"调整的是 {base}，而它为 0：请同时设置 {base}（如 {example}），或关闭此项")
                  for field, on, base, value, example in needs if on and value == 0]


@rule
def _v_prediction_losses(cfg: TrainConfig) -> list[Finding]:
    """Each scaling is made for one prediction type; sd-scripts refuses the other."""
    o, v = cfg.optimizer, cfg.model.v_parameterization
    out = []
    if o.scale_v_pred_loss_like_noise_pred and not v:
        out.append(error("optimizer.scale_v_pred_loss_like_noise_pred", "scales a v-prediction loss; turn on "
                         "model.v_parameterization or turn this off", "缩放的是 v-prediction 损失；请开启 "
                         "model.v_parameterization 或关闭此项"))
    if o.v_pred_like_loss and v:
        out.append(error("optimizer.v_pred_like_loss", "adds a v-prediction-like loss to a noise-prediction one; with "
                         "model.v_parameterization set it to 0 (scale_v_pred_loss_like_noise_pred goes the other way)",
                         "是给噪声预测损失加上类 v-prediction 损失；开启 model.v_parameterization 时请设为 0"
                         "（scale_v_pred_loss_like_noise_pred 是反方向的缩放）"))
    return out


@rule
def _zero_terminal_snr(cfg: TrainConfig) -> list[Finding]:
    if cfg.noise.zero_terminal_snr and not cfg.model.v_parameterization:
        # At the last timestep the image is gone: an epsilon target there says nothing (and min-SNR divides by 0).
        return [error("noise.zero_terminal_snr", "needs v-prediction; turn on model.v_parameterization or turn this off",
                      "需要 v-prediction；请开启 model.v_parameterization 或关闭此项")]
    return []
