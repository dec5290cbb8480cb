"""One module per CLI verb. Each defines `register(subparsers)` that adds its parser and sets `func`.

Modules must import heavy libraries (torch, diffusers, onnxruntime) inside `func`, so `--help` and the
config verbs stay instant.
"""
