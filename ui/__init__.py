"""Danlu's Gradio UI. Only presentation lives here; all work happens in trainer/ (in subprocesses)."""
