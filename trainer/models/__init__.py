"""Base-model loading (hub id, diffusers folder, single file) and tiny offline models for tests and the demo.

Import the submodules directly (`trainer.models.loading`, `trainer.models.tiny`, ...): this package file
stays empty so that importing it does not pull in torch.
"""
