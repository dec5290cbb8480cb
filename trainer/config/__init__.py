"""THE parameter schema and everything derived from it. Imports neither torch nor gradio."""

from trainer.config import (  # noqa: F401  (register their rules)
    rules_captions,
    rules_dreambooth,
    rules_flux,
    rules_images,
    rules_input,
    rules_loss,
    rules_network,
    rules_publish,
    rules_scheduler,
    rules_speed,
    rules_start,
)
from trainer.config.errors import ConfigError, Finding
from trainer.config.overlay import apply_overlay, apply_sets, effective_config
from trainer.config.rules import check, errors_of, parse_resolution
from trainer.config.schema import (
    GROUP_NAMES,
    SCHEMA_VERSION,
    ParamInfo,
    TrainConfig,
    all_params,
    get_value,
    group_info,
    params_by_name,
    params_by_path,
)
from trainer.config.toml_io import config_from_dict, dump_config, load_config, save_config

__all__ = [
    "ConfigError", "Finding", "apply_overlay", "apply_sets", "effective_config", "check", "errors_of",
    "parse_resolution", "GROUP_NAMES", "SCHEMA_VERSION", "ParamInfo", "TrainConfig", "all_params", "get_value",
    "group_info", "params_by_name", "params_by_path", "config_from_dict", "dump_config", "load_config",
    "save_config",
]
