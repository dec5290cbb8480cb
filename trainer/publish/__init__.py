"""Handing a finished LoRA on: its model card (card) and an optional Hugging Face Hub upload (upload)."""
