"""Rules about what a config lets a user reach: on a remote server, every path it names stays in the sandbox.

Registered with the other rules (trainer.config.rules.RULES), so check(), the forms and the run queue all
apply them.
"""

from __future__ import annotations

from trainer import sandbox
from trainer.config.errors import Finding, error
from trainer.config.rules import rule
from trainer.config.schema import TrainConfig, all_params, get_value

# Fields that also take a Hugging Face id (org/name): such a value is a path only when it exists here or is
# written as one. A hub download goes to the workspace cache, which is inside the sandbox anyway.
HUB_OR_PATH = {"model.base_model", "model.vae"}


def _names_a_path(field: str, value: str) -> bool:
    if field not in HUB_OR_PATH:
        return True
    return sandbox.is_local(value)


@rule
def paths_in_sandbox(cfg: TrainConfig) -> list[Finding]:
    """Every path field (schema widget "path") must resolve under the allowed roots on a remote server."""
    if not sandbox.policy().remote:
        return []
    out = []
    for p in all_params():
        value = get_value(cfg, p.path)
        if p.widget != "path" or not isinstance(value, str) or not value.strip():
            continue
        if not _names_a_path(p.path, value.strip()):
            continue
        try:
            sandbox.allowed(value.strip())  # the finding names the field
        except sandbox.PathNotAllowed as exc:
            out.append(error(p.path, exc.en, exc.zh))
        except ValueError as exc:  # a symlink loop or a NUL byte
            out.append(error(p.path, str(exc), str(exc)))
    return out
