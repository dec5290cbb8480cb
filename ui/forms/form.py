"""The Form: the generated components of a set of schema parameters, and how values flow in and out.

Callbacks receive the form's values as a dict (Gradio's `inputs=set_of_components`), keyed by component;
`to_config` also accepts a dict keyed by "group.name" path, which is what tests and scripts find handy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from trainer.config import (
    ConfigError,
    Finding,
    ParamInfo,
    TrainConfig,
    all_params,
    check,
    config_from_dict,
    effective_config,
    get_value,
    group_info,
)
from trainer.config.errors import warning
from ui.forms.feedback import by_field, slot_text, summary_text
from ui.forms.widgets import from_widget, to_widget
from ui.i18n import translate

FAMILY_PATH = "model.family"
NETWORK_PATH = "network.network_module"


def applies(p: ParamInfo, family: str, network: str | None = None) -> bool:
    """Whether `p` is meaningful for `family` (the parameter and its group allow it) and, when given, for the
    network type `network` (a parameter of one type, e.g. lycoris_algo, only while that type is chosen)."""
    by_network = network is None or not p.networks or network in p.networks
    return family in p.families and family in group_info(p.group).families and by_network


def supported(p: ParamInfo, value: Any) -> bool:
    """Whether the form can show `value` for `p`; planned parameters and choices cannot be edited here."""
    if p.planned:
        return value == p.default
    return value not in p.planned_choices


@dataclass
class Form:
    lang: str
    family: str  # the family the form was built for (initial visibility)
    params: list[ParamInfo] = field(default_factory=list)  # shown parameters, in order
    components: list = field(default_factory=list)  # one component per entry of params
    by_path: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, gr.Markdown] = field(default_factory=dict)  # path -> error slot beside the field
    boxes: dict[str, gr.Column] = field(default_factory=dict)  # path -> column holding field and slot
    accordions: dict[str, gr.Accordion] = field(default_factory=dict)
    summary: gr.Markdown | None = None

    # ---- values in -------------------------------------------------------------------------------
    def raw_values(self, values: dict) -> dict[str, Any]:
        """{path: widget value} from a dict keyed by component or by path."""
        out = {}
        for p, comp in zip(self.params, self.components, strict=True):
            if comp in values:
                out[p.path] = values[comp]
            elif p.path in values:
                out[p.path] = values[p.path]
        return out

    def chosen_family(self, raw: dict[str, Any]) -> str:
        value = raw.get(FAMILY_PATH)
        return str(value) if value else self.family

    def chosen_network(self, raw: dict[str, Any]) -> str | None:
        value = raw.get(NETWORK_PATH)
        return str(value) if value else None

    def to_config(self, values: dict, *, for_training: bool = False) -> tuple[TrainConfig | None, list[Finding]]:
        """Build and check a config. (None, findings) when it cannot be built; else (cfg, check findings).

        Parameters that do not apply to the chosen family are hidden, so they keep their schema default
        whatever their widget still holds: what the user cannot see must not change the run.
        """
        raw = self.raw_values(values)
        family, network = self.chosen_family(raw), self.chosen_network(raw)
        nested: dict[str, dict[str, Any]] = {}
        bad: list[Finding] = []
        for p in self.params:
            if p.path not in raw or not applies(p, family, network):
                continue
            value, finding = from_widget(p, raw[p.path])
            if finding:
                bad.append(finding)
            else:
                nested.setdefault(p.group, {})[p.name] = value
        cfg, invalid = _build_without_invalid(nested)
        bad += invalid
        if cfg is None:
            return None, bad
        # The rules run on the valid values too, so one Validate reports every error (not one round each);
        # a rule about a field that is already wrong would only repeat it.
        wrong = {f.field for f in bad}
        rules = [f for f in check_effective(cfg, for_training) if f.field not in wrong]
        return (None, bad + rules) if bad else (cfg, rules)

    # ---- values out ------------------------------------------------------------------------------
    def values_for(self, cfg: TrainConfig) -> list:
        """Widget values showing `cfg`, in the order of `components` (use with outputs=form.components).

        A value the form cannot show (a planned option) is replaced by its default; `unsupported(cfg)`
        says which, so the caller can tell the user.
        """
        out = []
        for p in self.params:
            value = get_value(cfg, p.path)
            out.append(to_widget(p, value if supported(p, value) else p.default))
        return out

    def updates_for(self, cfg: TrainConfig) -> dict:
        """The same as values_for, keyed by component, for callbacks that return a dict."""
        return dict(zip(self.components, self.values_for(cfg), strict=True))

    def unsupported(self, cfg: TrainConfig) -> list[Finding]:
        """Warnings for the values of `cfg` that the form drops when showing it."""
        out = []
        for p in all_params():
            value = get_value(cfg, p.path)
            if not supported(p, value):
                fmt = dict(value=value, default=p.default)
                out.append(warning(p.path, translate("forms.unsupported_dropped", "en", **fmt),
                                   translate("forms.unsupported_dropped", "zh", **fmt)))
        return out

    # ---- feedback and visibility -----------------------------------------------------------------
    @property
    def feedback_outputs(self) -> list:
        return list(self.errors.values()) + ([self.summary] if self.summary is not None else [])

    def feedback(self, findings: list[Finding]) -> dict:
        """Updates that show each finding beside its field (hiding stale ones) and all of them in the summary."""
        grouped = by_field(findings)
        out: dict = {}
        for path, slot in self.errors.items():
            mine = grouped.get(path, [])
            out[slot] = gr.update(value=slot_text(mine, self.lang), visible=bool(mine))
        if self.summary is not None:
            out[self.summary] = gr.update(value=summary_text(findings, self.lang), visible=True)
        return out

    def clear_feedback(self) -> dict:
        out = {slot: gr.update(value="", visible=False) for slot in self.errors.values()}
        if self.summary is not None:
            out[self.summary] = gr.update(value="", visible=False)
        return out

    @property
    def visibility_outputs(self) -> list:
        return list(self.boxes.values()) + list(self.accordions.values())

    def family_updates(self, family: str, network: str | None = None) -> dict:
        """Show the fields (and sections) that apply to `family` and the network type, hide the others."""
        out: dict = {}
        shown_groups = set()
        for p in self.params:
            ok = applies(p, family, network)
            out[self.boxes[p.path]] = gr.update(visible=ok)
            if ok:
                shown_groups.add(p.group)
        for group, acc in self.accordions.items():
            out[acc] = gr.update(visible=group in shown_groups)
        return out

    def wire_family(self) -> None:
        """Re-apply visibility whenever the family or the network type changes (typed, loaded or imported)."""
        comps = {self.by_path[path] for path in (FAMILY_PATH, NETWORK_PATH) if path in self.by_path}

        def update(data):
            raw = self.raw_values(data)
            return self.family_updates(self.chosen_family(raw), self.chosen_network(raw))

        for comp in comps:
            comp.change(update, inputs=comps, outputs=self.visibility_outputs, show_progress="hidden")


def _build_without_invalid(nested: dict[str, dict[str, Any]]) -> tuple[TrainConfig | None, list[Finding]]:
    """(config, findings of the values left out): a value the schema rejects is reported and its default used,
    so the other fields can still be checked."""
    try:
        return config_from_dict(nested), []
    except ConfigError as exc:
        findings = exc.findings
    for f in findings:
        group, _, name = f.field.partition(".")
        nested.get(group, {}).pop(name, None)
    try:
        return config_from_dict(nested), findings
    except ConfigError as exc:  # not about single fields: nothing more to learn
        return None, findings + exc.findings


def check_effective(cfg: TrainConfig, for_training: bool) -> list[Finding]:
    """check() on the config a run would really use: other.custom_toml laid over the form's values."""
    try:
        eff = effective_config(cfg)
    except ConfigError as exc:
        # The custom TOML itself is broken: the only place the user can fix that is its own field.
        return [Finding(f.level, "other.custom_toml", f.text("en"), f.text("zh")) for f in exc.findings]
    return check(eff, for_training=for_training)
