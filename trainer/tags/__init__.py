"""Headless tag editing for caption datasets: load, filter, bulk edit with undo/redo, save safely.

Used by the Tag Editor tab and by `python -m trainer tags ...`; never imports gradio.
Typical use::

    ds = load_dataset("data/10_mychar", caption_ext=".txt", recursive=True)
    idx = filter_indices(ds, Filter(any_of=["solo"]))
    apply_op(ds, idx, make_op("delete", tags=["solo"]))
    ds.history.undo(ds); ds.history.redo(ds)
    save_dataset(ds, backup=True)
"""

from trainer.tags.bulk import OP_NAMES, apply_op, make_op, preview_count, set_tags
from trainer.tags.dataset import Item, TagDataset, load_dataset
from trainer.tags.parse import join_tags, split_tags
from trainer.tags.query import Filter, filter_indices, frequency
from trainer.tags.save import SaveReport, save_dataset

__all__ = [
    "OP_NAMES", "Filter", "Item", "SaveReport", "TagDataset", "apply_op", "filter_indices",
    "frequency", "join_tags", "load_dataset", "make_op", "preview_count", "save_dataset", "set_tags",
    "split_tags",
]
