"""The schema-generated form: coverage of the schema, family visibility, and lossless value round trips."""

from __future__ import annotations

from typing import ClassVar

import gradio as gr
import pytest

from tests.schema_helpers import PlannedNoise, noise_group
from trainer.config import TrainConfig, all_params, errors_of, params_by_path
from trainer.config.groups_data import NoiseGroup
from trainer.config.spec import param
from ui.forms import build_form, label_of
from ui.forms.form import applies


def make_form(lang: str = "en", **kw):
    with gr.Blocks():
        return build_form(lang, **kw)


def wire_values(form) -> dict:
    """The values a callback would receive for the form as built: each through the component's round trip."""
    return {c: c.preprocess(c.postprocess(c.value)) for c in form.components}


@pytest.fixture(scope="module")
def form():
    return make_form()


def test_every_shown_parameter_has_a_component_and_an_error_slot(form):
    shown = [p for p in all_params() if not p.planned]
    assert sorted(p.path for p in form.params) == sorted(p.path for p in shown)  # wide fields go last in a group
    assert len(form.components) == len(shown) == len(form.by_path) == len(form.errors)
    for p in shown:
        comp = form.by_path[p.path]
        assert comp.label == label_of(p) and comp.info == p.help("en")
        assert form.errors[p.path].elem_id == f"err-{p.group}-{p.name}"


def test_chinese_form_labels_come_from_the_schema():
    zh = make_form("zh")
    res = params_by_path()["dataset.resolution"]
    assert zh.by_path["dataset.resolution"].label == label_of(res, "zh") == "训练分辨率 (px)"
    assert label_of(res) == label_of(res, "en") == "Resolution (px)"
    for p in zh.params:
        assert zh.by_path[p.path].label.startswith(p.label_zh), p.path


def test_planned_parameters_are_absent(monkeypatch):
    with noise_group(monkeypatch, PlannedNoise):  # the real schema has no planned parameter left
        planned = [p.path for p in all_params() if p.planned]
        assert planned == ["noise.pyramid_wobble"]
        assert not set(planned) & set(make_form().by_path)


def test_widgets_follow_the_kind(form):
    for p in form.params:
        comp = form.by_path[p.path]
        expected = {"bool": gr.Checkbox, "choice": gr.Dropdown}.get(p.kind, gr.Textbox)
        assert isinstance(comp, expected), p.path
        if p.kind == "choice":
            assert [c[1] for c in comp.choices] == list(p.available_choices())
        if p.kind in ("int", "float") and p.le is not None:  # numbers are text boxes: the range is in the hint
            assert f"{p.le:g}" in comp.placeholder, p.path
        if p.widget == "textarea":
            assert comp.lines == 5


def test_chinese_form_uses_chinese_titles_and_help():
    form = make_form("zh")
    p = next(p for p in form.params if p.path == "network.network_dim")
    assert form.by_path[p.path].info == p.zh
    assert form.accordions["network"].label == "网络"


def test_family_hides_and_reshows_fields(form):
    # Each family shows exactly the fields whose parameter (and group) list that family; switching back to
    # SD1.5 shows its own again.
    from ui.forms.form import applies
    specific = [p for p in form.params if set(p.families) != {"sd15", "sdxl", "flux"}]
    assert specific, "the schema has family-specific parameters"
    for family in ("flux", "sdxl", "sd15"):
        shown = form.family_updates(family)
        wrong = [p.path for p in form.params if shown[form.boxes[p.path]]["visible"] != applies(p, family)]
        assert not wrong, (family, wrong)
    # Known facts, independent of applies(): SD1.x's clip_skip, Flux's own files, SDXL's second encoder rate.
    expect = {"other.clip_skip": {"sd15"}, "model.vae": {"sd15", "sdxl"}, "model.t5xxl": {"flux"},
              "dreambooth.learning_rate_te2": {"sdxl"}}
    assert "other.clip_skip" in form.boxes and "model.t5xxl" in form.boxes
    for path, families in expect.items():
        if path in form.boxes:
            for family in ("sd15", "sdxl", "flux"):
                assert form.family_updates(family)[form.boxes[path]]["visible"] == (family in families), path
    not_flux = [p for p in form.params if "flux" not in p.families]
    assert all(form.family_updates("sd15")[form.boxes[p.path]]["visible"] for p in not_flux if applies(p, "sd15"))
    assert all(form.boxes[p.path].visible for p in not_flux if applies(p, "sd15"))  # built for sd15: shown


def test_each_network_type_shows_its_own_fields_only(form):
    own = {p.path: p.networks for p in form.params if p.networks}
    assert {"network.lycoris_algo", "network.network_args", "network.dylora_unit"} <= set(own)
    for network in ("networks.lora", "lycoris.kohya", "networks.dylora"):
        shown = form.family_updates("sd15", network)
        for path, networks in own.items():
            assert shown[form.boxes[path]]["visible"] == (network in networks), (network, path)
    assert not form.boxes["network.lycoris_algo"].visible  # built with the default type, networks.lora
    assert form.boxes["network.network_dim"].visible
    # A hidden type's field keeps its default: what the user cannot see must not change the run.
    values = {**wire_values(form), form.by_path["network.lycoris_algo"]: "loha"}
    cfg, _ = form.to_config(values)
    assert cfg.network.lycoris_algo == "locon"
    values[form.by_path["network.network_module"]] = "lycoris.kohya"
    cfg, _ = form.to_config(values)
    assert cfg.network.lycoris_algo == "loha"


def test_defaults_give_the_default_config(form):
    cfg, findings = form.to_config(wire_values(form))
    assert cfg == TrainConfig()
    assert not errors_of(findings)


def test_values_for_round_trip(form):
    cfg = TrainConfig.model_validate({
        "model": {"base_model": "/m/model.safetensors", "vae": "/m/vae"},
        "dataset": {"train_data_dir": "/d", "resolution": "768,512", "enable_bucket": False},
        "optimizer": {"unet_lr": 2e-4, "optimizer_args": ["weight_decay=0.01", "betas=0.9,0.99"],
                      "lr_scheduler": "linear"},
        "network": {"network_dim": 4, "network_alpha": 2.0},
        "caption": {"max_token_length": 75, "trigger_word": "zk"},
        "sampling": {"sample_prompts": "a\nb --n c"},
        "other": {"custom_toml": "[noise]\nnoise_offset = 0.05\n"},
    })
    values = dict(zip(form.components, form.values_for(cfg), strict=True))
    back, findings = form.to_config({c: c.preprocess(c.postprocess(v)) for c, v in values.items()})
    assert back == cfg, findings


def test_an_optional_number_left_empty_is_not_set(form):
    """Empty means "not set" (unet_lr falls back to learning_rate), never 0."""
    values = wire_values(form)
    assert values[form.by_path["optimizer.unet_lr"]] == ""
    cfg, _ = form.to_config(values)
    assert cfg.optimizer.unet_lr is None and cfg.optimizer.text_encoder_lr is None
    values[form.by_path["optimizer.unet_lr"]] = "  "
    assert form.to_config(values)[0].optimizer.unet_lr is None


def test_path_keyed_values_work_too(form):
    cfg, _ = form.to_config({"network.network_dim": 8, "optimizer.unet_lr": None})
    assert cfg.network.network_dim == 8 and cfg.optimizer.unet_lr is None


@pytest.mark.parametrize(("path", "value"), [
    ("network.network_dim", 5000),  # above the schema's maximum
    ("network.network_dim", 2.5),  # not a whole number
    ("dataset.min_bucket_reso", 2048),  # a cross-field rule (above max_bucket_reso)
    ("optimizer.learning_rate", None),  # required number left empty
])
def test_an_invalid_value_is_reported_on_exactly_its_field(form, path, value):
    values = wire_values(form)
    values[form.by_path[path]] = value
    _, findings = form.to_config(values)
    assert {f.field for f in errors_of(findings)} == {path}
    shown = form.feedback(findings)
    assert shown[form.errors[path]]["visible"] is True
    others = [slot for p, slot in form.errors.items() if p != path]
    assert not any(shown[slot]["visible"] for slot in others)


def test_options_of_another_family_keep_their_default(form):
    """A hidden (other-family) field cannot change the run, whatever its widget still holds."""
    hidden = [p for p in form.params if not applies(p, "sd15") and p.kind == "str"]
    if not hidden:
        pytest.skip("no non-SD1.5 field is on the form while SDXL and Flux are planned")
    p = hidden[0]
    cfg, _ = form.to_config({**wire_values(form), form.by_path[p.path]: "/left/over"})
    assert getattr(getattr(cfg, p.group), p.name) == p.default


def test_unsupported_values_are_named_when_loaded(monkeypatch):
    """A planned choice of a shown parameter and a planned switch (made up: the real schema has none left)."""
    with noise_group(monkeypatch, PlannedNoise) as config:
        form = make_form()
        cfg = config.model_validate({"noise": {"pyramid_shape": "star", "pyramid_wobble": True}})
        assert {f.field for f in form.unsupported(cfg)} == {"noise.pyramid_shape", "noise.pyramid_wobble"}
        shown = dict(zip([p.path for p in form.params], form.values_for(cfg), strict=True))
        assert shown["noise.pyramid_shape"] == "square"


def test_a_new_schema_parameter_appears_without_ui_changes(monkeypatch):
    class Noise2(NoiseGroup):
        INFO: ClassVar = NoiseGroup.INFO
        pyramid_wobble: float = param(0.25, "How much the pyramid wobbles.", "金字塔的摆动幅度。", ge=0.0, le=1.0,
                                      label_zh="金字塔摆动")

    with noise_group(monkeypatch, Noise2):
        form = make_form("zh")
        comp = form.by_path["noise.pyramid_wobble"]
        assert isinstance(comp, gr.Textbox) and comp.value == "0.25" and "(0 – 1)" in comp.placeholder
        assert comp.label == "金字塔摆动" and comp.info == "金字塔的摆动幅度。"
        assert form.errors["noise.pyramid_wobble"].elem_id == "err-noise-pyramid_wobble"
    assert "noise.pyramid_wobble" not in {p.path for p in all_params()}


def test_every_error_is_reported_in_one_round(form):
    """Typing errors, range errors and cross-field rules together: all of them at once, not one per Validate."""
    values = wire_values(form)
    values[form.by_path["network.network_dim"]] = "eight"  # letters in a number box
    values[form.by_path["training.train_batch_size"]] = "0"  # below the schema's minimum
    values[form.by_path["dataset.min_bucket_reso"]] = 2048  # a cross-field rule (above max_bucket_reso)
    values[form.by_path["optimizer.unet_lr"]] = "0"  # a rule on another group
    cfg, findings = form.to_config(values)
    assert cfg is None, "a form with errors gives no config to start"
    fields = {f.field for f in errors_of(findings)}
    assert fields == {"network.network_dim", "training.train_batch_size", "dataset.min_bucket_reso",
                      "optimizer.unet_lr"}
    (typed,) = [f for f in findings if f.field == "network.network_dim"]
    assert "'eight' is not a number" in typed.en
