"""Gradio forms generated from the parameter schema (trainer.config): no parameter is named by hand here."""

from ui.forms.build import build_form, group_title, shown_params
from ui.forms.feedback import summary_text
from ui.forms.form import Form, applies, supported
from ui.forms.widgets import from_widget, humanise, label_of, make_component, to_widget

__all__ = [
    "Form", "applies", "build_form", "from_widget", "group_title", "humanise", "label_of",
    "make_component", "shown_params", "summary_text", "supported", "to_widget",
]
