"""text_encoder_lr is one rate shared by the text encoders or a list [te1, te2], as sd-scripts takes it: the
schema checks the list, a rule refuses two rates for SD1.5's one encoder, and the list survives the Danlu
TOML, the kohya import and export, and the Expert form."""

from __future__ import annotations

import gradio as gr
import pytest

from trainer.config import ConfigError, TrainConfig, check, config_from_dict, dump_config, errors_of
from trainer.config.kohya import export_kohya, import_kohya
from trainer.config.toml_io import parse_toml_text

FIELD = "optimizer.text_encoder_lr"


def _cfg(te_lr, family="sdxl") -> TrainConfig:
    return config_from_dict({"model": {"family": family}, "optimizer": {"text_encoder_lr": te_lr}})


@pytest.mark.parametrize(("given", "kept"), [(5e-5, 5e-5), ([5e-5, 2e-5], [5e-5, 2e-5]), ([5e-5], 5e-5),
                                             ([], None), ("2e-5", 2e-5), ("5e-5, 2e-5", [5e-5, 2e-5])])
def test_one_rate_or_a_list_of_two(given, kept):
    assert _cfg(given).optimizer.text_encoder_lr == kept


@pytest.mark.parametrize("bad", [[1e-5, 2e-5, 3e-5], [1e-5, -1.0], [1e-5, "fast"], [1e-5, 20.0], "fast", True])
def test_a_bad_list_is_an_error_naming_the_field(bad):
    with pytest.raises(ConfigError) as exc:
        _cfg(bad)
    assert [f.field for f in exc.value.findings] == [FIELD]
    assert "e.g." in exc.value.findings[0].en or "from 0 to 10" in exc.value.findings[0].en


def test_cli_set_takes_two_rates():
    from trainer.config import apply_sets

    cfg = apply_sets(_cfg(None), ["optimizer.text_encoder_lr=5e-5,2e-5"])
    assert cfg.optimizer.text_encoder_lr == [5e-5, 2e-5]
    assert apply_sets(cfg, ["text_encoder_lr=[1e-5, 3e-5]"]).optimizer.text_encoder_lr == [1e-5, 3e-5]


def test_two_rates_for_sd15s_one_encoder_is_an_error():
    assert FIELD in {f.field for f in errors_of(check(_cfg([5e-5, 2e-5], "sd15"), for_training=False))}
    assert FIELD not in {f.field for f in check(_cfg([5e-5, 2e-5], "sdxl"), for_training=False)}
    assert FIELD not in {f.field for f in errors_of(check(_cfg(5e-5, "sd15"), for_training=False))}


def test_flux_second_rate_is_t5s_and_unused_without_train_t5xxl():
    found = {(f.field, f.level) for f in check(_cfg([5e-5, 2e-5], "flux"), for_training=False)}
    assert (FIELD, "warning") in found
    t5 = config_from_dict({"model": {"family": "flux"}, "optimizer": {"text_encoder_lr": [5e-5, 2e-5]},
                           "flux": {"train_t5xxl": True}, "speed": {"cache_text_encoder_outputs": False}})
    assert FIELD not in {f.field for f in check(t5, for_training=False)}  # T5 trains: its rate is used
    t5 = config_from_dict({"model": {"family": "flux"}, "optimizer": {"text_encoder_lr": [5e-5, 2e-5]},
                           "flux": {"train_t5xxl": True}})
    assert FIELD not in {f.field for f in check(t5, for_training=False)}  # with T5 trained, both rates are used


def test_both_rates_zero_is_an_error_one_zero_is_not():
    assert FIELD in {f.field for f in errors_of(check(_cfg([0.0, 0.0]), for_training=False))}
    assert FIELD not in {f.field for f in errors_of(check(_cfg([0.0, 2e-5]), for_training=False))}


def test_danlu_toml_round_trip():
    cfg = _cfg([5e-5, 2e-5])
    text = dump_config(cfg)
    assert "text_encoder_lr = [" in text
    assert config_from_dict(parse_toml_text(text)) == cfg


def test_kohya_import_and_export_of_the_list():
    warnings: list = []
    cfg = import_kohya({"model_train_type": "sdxl-lora", "text_encoder_lr": [5e-5, 2e-5]}, warnings=warnings)
    assert cfg.optimizer.text_encoder_lr == [5e-5, 2e-5]
    # sd-scripts' sdxl_train_network uses the first rate for both encoders: the import says Danlu does not
    (w,) = [w for w in warnings if w.field == FIELD]
    assert "first rate" in w.en and "2e-05" in w.en
    assert export_kohya(cfg)["text_encoder_lr"] == [5e-5, 2e-5]
    assert import_kohya(export_kohya(cfg)).optimizer.text_encoder_lr == [5e-5, 2e-5]
    same: list = []
    assert import_kohya({"text_encoder_lr": [3e-5]}, warnings=same).optimizer.text_encoder_lr == 3e-5
    assert same == []
    both_zero = import_kohya({"model_train_type": "sdxl-lora", "text_encoder_lr": [0, 0]})
    assert both_zero.training.network_train_unet_only is True  # sd-scripts skips the encoders' groups


def test_expert_form_round_trips_the_list_and_names_a_bad_one():
    from ui.forms import build_form

    with gr.Blocks():
        form = build_form("en")
    box = form.by_path[FIELD]
    for cfg in (_cfg([5e-5, 2e-5]), _cfg(3e-5), _cfg(None)):
        values = dict(zip(form.components, form.values_for(cfg), strict=True))
        back, findings = form.to_config({c: c.preprocess(c.postprocess(v)) for c, v in values.items()})
        assert back is not None and back.optimizer.text_encoder_lr == cfg.optimizer.text_encoder_lr, findings
    assert dict(zip(form.components, form.values_for(_cfg([5e-5, 2e-5])), strict=True))[box] == "5e-05, 2e-05"
    values = dict(zip(form.components, form.values_for(_cfg(None)), strict=True))
    values[box] = "5e-5, 2e-5, 1e-5"
    _, findings = form.to_config(values)
    assert {f.field for f in errors_of(findings)} == {FIELD}


def test_a_word_in_the_rate_box_says_that_two_rates_are_allowed():
    """The box takes one rate or two comma-separated ones; its error for text says both forms (it said only
    'is not a number', which hid that a list is allowed)."""
    from ui.forms import build_form

    with gr.Blocks():
        form = build_form("en")
    values = dict(zip(form.components, form.values_for(_cfg(None)), strict=True))
    values[form.by_path[FIELD]] = "fast"
    _, findings = form.to_config(values)
    (found,) = errors_of(findings)
    assert found.field == FIELD and "comma" in found.en and "逗号" in found.zh


def test_export_of_two_differing_rates_warns_as_the_import_does():
    """sd-scripts' sdxl_train_network trains both encoders at the first rate: exporting [te1, te2] to its TOML
    must say so, in the same words as importing such a file (it exported silently)."""
    imported: list = []
    import_kohya({"model_train_type": "sdxl-lora", "text_encoder_lr": [5e-5, 2e-5]}, warnings=imported)
    exported: list = []
    assert export_kohya(_cfg([5e-5, 2e-5]), warnings=exported)["text_encoder_lr"] == [5e-5, 2e-5]
    assert [w for w in exported if w.field == FIELD] == [w for w in imported if w.field == FIELD]
    for same in (_cfg([3e-5, 3e-5]), _cfg(3e-5), _cfg(None)):
        quiet: list = []
        export_kohya(same, warnings=quiet)
        assert quiet == []


def test_cli_export_of_a_danlu_config_prints_the_warning_once(tmp_path, capsys):
    from trainer.__main__ import main

    path = tmp_path / "danlu.toml"
    path.write_text(dump_config(_cfg([5e-5, 2e-5])), encoding="utf-8")
    assert main(["export", "--config", str(path), str(tmp_path / "out.toml")]) == 0
    assert capsys.readouterr().out.count("first rate") == 1
    kohya = tmp_path / "kohya.toml"  # an sd-scripts file: the import already warned, export does not repeat it
    kohya.write_text('model_train_type = "sdxl-lora"\ntext_encoder_lr = [5e-5, 2e-5]\n', encoding="utf-8")
    assert main(["export", "--config", str(kohya), str(tmp_path / "out2.toml")]) == 0
    assert capsys.readouterr().out.count("first rate") == 1
