"""Getting a dataset onto the server and into shape: upload/import, image tools, duplicate quarantine, downloads.

Everything writes inside the workspace only; every change keeps a way back (a backup or a quarantine folder).
Headless: never imports gradio.
"""

from trainer.datasets.listing import DATASETS, datasets_root, list_datasets

__all__ = ["DATASETS", "datasets_root", "list_datasets"]
