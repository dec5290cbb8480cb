"""sd-scripts' DistributedDataParallel options for several GPUs: ddp_timeout (how long processes wait for each other,
e.g. while one caches the latents all of them read), ddp_gradient_as_bucket_view and ddp_static_graph. They reach
the accelerator a run builds, import and export under their own names, and static_graph is refused where a step can
leave trained weights without a gradient (DDP would then fail or hang)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from accelerate import DistributedDataParallelKwargs, InitProcessGroupKwargs

import trainer.engine.session as session
from tests.engine_helpers import make_dataset, tiny_config
from trainer.config import check, config_from_dict
from trainer.config.kohya import export_kohya, import_kohya
from trainer.engine.run import train


class Built(Exception):
    pass


def handlers_of_a_run(tmp_path, monkeypatch, **speed) -> dict[type, dict]:
    """The kwargs handlers a run gives its Accelerator (the run is ended right there)."""
    seen: dict[type, dict] = {}

    def record(*args, kwargs_handlers=(), **kwargs):
        seen.update({type(h): h.to_kwargs() for h in kwargs_handlers})
        raise Built

    monkeypatch.setattr(session, "Accelerator", record)
    data = make_dataset(tmp_path / "data", n=1)
    cfg = tiny_config(tmp_path / "no-model", data, **{f"speed__{k}": v for k, v in speed.items()})
    assert train(cfg, tmp_path / "run") != 0  # ended by `record`
    assert seen, "the run built no Accelerator"
    return seen


def test_the_settings_reach_the_accelerator(tmp_path, monkeypatch):
    seen = handlers_of_a_run(tmp_path, monkeypatch, ddp_timeout=90, ddp_gradient_as_bucket_view=True,
                             ddp_static_graph=True)
    assert seen[InitProcessGroupKwargs] == {"timeout": timedelta(minutes=90)}
    assert seen[DistributedDataParallelKwargs] == {"find_unused_parameters": True, "gradient_as_bucket_view": True,
                                                   "static_graph": True}


def test_by_default_pytorchs_timeout_and_ddps_defaults(tmp_path, monkeypatch):
    seen = handlers_of_a_run(tmp_path, monkeypatch)
    assert InitProcessGroupKwargs not in seen
    assert seen[DistributedDataParallelKwargs] == {"find_unused_parameters": True}


def _static_graph_errors(**tables) -> list[str]:
    cfg = config_from_dict({"speed": {"ddp_static_graph": True}, **tables})
    return [f.en for f in check(cfg, for_training=False) if f.field == "speed.ddp_static_graph" and f.level == "error"]


@pytest.mark.parametrize("tables,names", [
    ({"network": {"network_module": "networks.dylora"}}, "networks.dylora"),
    ({"network": {"network_args": ["module_dropout=0.1"]}}, "module_dropout"),
    ({"model": {"training_type": "dreambooth"}, "dreambooth": {"stop_text_encoder_training": 10}},
     "stop_text_encoder_training"),
])
def test_static_graph_is_refused_where_a_step_can_skip_trained_weights(tables, names):
    (message,) = _static_graph_errors(**tables)
    assert names in message
    assert _static_graph_errors() == []


def test_sd_scripts_names_import_and_export():
    cfg = import_kohya({"ddp_timeout": 120, "ddp_gradient_as_bucket_view": True, "ddp_static_graph": True})
    s = cfg.speed
    assert (s.ddp_timeout, s.ddp_gradient_as_bucket_view, s.ddp_static_graph) == (120, True, True)
    out = export_kohya(cfg)
    assert (out["ddp_timeout"], out["ddp_gradient_as_bucket_view"], out["ddp_static_graph"]) == (120, True, True)
    assert "ddp_timeout" not in export_kohya(config_from_dict({}))  # 0: PyTorch's default, as sd-scripts' unset
