"""Danlu's headless engine: configs, training, tagging and dataset tools. Never imports gradio."""

__version__ = "0.1.0"
