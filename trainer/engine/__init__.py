"""The training engine: `python -m trainer train` runs `run.train(cfg, run_dir)`."""
