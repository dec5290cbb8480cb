"""Reusable pieces that several tabs embed: the dataset doctor panel and the GPU-memory badge."""
