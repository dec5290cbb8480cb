"""Danlu's headless engine: configs, training, tagging and dataset tools. Never imports gradio."""

from trainer import quiet

__version__ = "0.1.0"

quiet.install()  # before any library is imported through us: see trainer/quiet.py
