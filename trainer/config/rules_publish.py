"""Rules for the Hub upload settings (registered with the others in trainer.config.rules.RULES)."""

from __future__ import annotations

from trainer.config.errors import Finding, warning
from trainer.config.rules import rule
from trainer.config.schema import TrainConfig


@rule
def _uploads_that_send_nothing(cfg: TrainConfig) -> list[Finding]:
    p, out = cfg.publish, []
    repo = bool(p.huggingface_repo_id.strip())
    for name, on in (("upload_every_save", p.upload_every_save), ("save_state_to_huggingface",
                                                                  p.save_state_to_huggingface)):
        if on and not repo:
            out.append(warning(f"publish.{name}", "uploads to huggingface_repo_id, which is empty; set the "
                               "repository or turn this off", "上传到 huggingface_repo_id，而它为空；请填写仓库或关闭此项"))
    if repo and p.save_state_to_huggingface and not (cfg.save.save_state or cfg.save.save_state_on_train_end):
        out.append(warning("publish.save_state_to_huggingface", "uploads the training states save_state writes, and "
                           "it is off; turn save.save_state on or turn this off",
                           "上传的是 save_state 写下的训练状态，而它未开启；请开启 save.save_state 或关闭此项"))
    return out
