"""How a run is started: plainly (`python -m trainer train ...`) or, for several GPUs or machines, through
`accelerate launch`. No torch here: the UI's run manager builds the command."""

from __future__ import annotations

import os
import socket


def launch_rank() -> int:
    """This process's global rank under accelerate launch / torchrun (0 when launched plainly)."""
    return int(os.environ.get("RANK", "0"))


def launch_args(speed) -> list[str]:
    """`accelerate launch` options for the speed settings, or [] for a plain one-process run."""
    if speed.accelerate_config.strip():
        return ["--config_file", speed.accelerate_config.strip()]
    if speed.gpus <= 1:
        return []
    args = ["--multi_gpu", "--num_processes", str(speed.gpus), "--num_machines", "1", "--dynamo_backend", "no",
            "--mixed_precision", "no",  # the engine sets its own precision from the config
            "--main_process_port", str(free_port())]  # two runs (or users) on one machine must not collide
    if speed.gpu_ids.strip():
        args += ["--gpu_ids", speed.gpu_ids.replace(" ", "")]
    return args


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def engine_command(python: str, speed, trainer_args: list[str]) -> list[str]:
    """The engine's argv: `python -m trainer ...`, or through accelerate launch for several processes."""
    extra = launch_args(speed)
    if not extra:
        return [python, "-m", "trainer", *trainer_args]
    return [python, "-m", "accelerate.commands.launch", *extra, "-m", "trainer", *trainer_args]
