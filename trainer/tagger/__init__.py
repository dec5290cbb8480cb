"""WD tagger: SmilingWolf's WaifuDiffusion ONNX taggers, run over a folder to write caption files.

Heavy imports (onnxruntime) happen in `load_model`, so importing this package is cheap.
"""

from trainer.tagger.job import JobReport, TagJob, backup_folder_for, tag_folder, tag_image
from trainer.tagger.models import CATALOGUE, DEFAULT_MODEL, PROVIDER_CHOICES, resolve_model_folder
from trainer.tagger.postprocess import TagOptions, confidences, parse_replacements, parse_tag_list
from trainer.tagger.session import TaggerModel, load_model
from trainer.tagger.writer import ACTIONS

__all__ = [
    "ACTIONS", "CATALOGUE", "DEFAULT_MODEL", "PROVIDER_CHOICES", "JobReport", "TagJob", "TagOptions",
    "TaggerModel", "backup_folder_for", "confidences", "load_model", "parse_replacements", "parse_tag_list",
    "resolve_model_folder", "tag_folder", "tag_image",
]
