"""The sections of bench/gpu_session.py, most wanted first. Each writes its rows to its own JSON file as each row
is measured (a section cut short keeps its finished rows) and reuses the GPU bench code (gpu_speed, flux_memory).

Sizes: "gpu" is the real check; "dry" is tiny models on the CPU (the session's end-to-end test); "cpufull" is
full-size SD1.5 at 64 px on the CPU, to check the sd-scripts command line on a machine without a GPU (minutes).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.gpu_speed import WARMUP, make_data, run_config, run_one  # noqa: E402

BF16 = {"speed": {"mixed_precision": "bf16", "sdpa": True}}
# (resolution, timed steps, warm-up) per size
SIZES = {"gpu": {"sd15": (512, 30, WARMUP), "sdxl": (1024, 15, WARMUP)},
         "dry": {"sd15": (64, 2, 1), "sdxl": (64, 2, 1)},
         "cpufull": {"sd15": (64, 4, 2), "sdxl": (64, 3, 1)}}


ROWS_FAILED = 3  # a section's exit status when it ran to its end but some of its runs failed


class Rows:
    """A section's result file, rewritten whole (write, then rename) after every row."""

    def __init__(self, path: Path):
        self.path, self.data, self.failed = path, {"rows": []}, 0

    def add(self, **row) -> None:
        """One measurement; a run that failed (rc, error) is kept as a row and counted, and the section then ends
        with ROWS_FAILED so its status says so."""
        self.data["rows"].append(row)
        self.failed += bool(row.get("error")) or row.get("rc") not in (None, 0)
        self.save()
        print("[row] " + json.dumps(row, default=str), flush=True)

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        tmp.replace(self.path)


def model(work: Path, family: str, size: str) -> Path:
    """The benchmark model of `family` (tiny for the dry run), built once per session and shared by the sections."""
    import torch

    from bench.models import save_model

    folder = work / f"model-{family}-{'tiny' if size == 'dry' else 'full'}"
    if not (folder / "model_index.json").exists():
        cuda = torch.cuda.is_available()
        save_model(folder, family, "tiny" if size == "dry" else "full", device="cuda" if cuda else "cpu",
                   dtype=torch.float16 if cuda else torch.float32)
        torch.cuda.empty_cache() if cuda else None
    return folder


def engine_row(rows: Rows, work: Path, size: str, family: str, setting: str, overlay: dict, sets=()) -> dict:
    reso, steps, warmup = SIZES[size][family]
    cfg = run_config(family, model(work, family, size), make_data(work / "data", reso), reso, 1, steps + warmup,
                     overlay, list(sets), [])
    r = run_one(cfg, work / "runs" / f"{family}-{len(rows.data['rows'])}-{os.getpid()}", warmup)
    row = {"family": family, "resolution": reso, "batch": 1, "setting": setting, **r,
           "s_per_step": 1 / r["it_s"] if r["it_s"] else None}
    rows.add(**row)
    return row


# ---- (1) SDXL full size -----------------------------------------------------------------------------------------
def sdxl(rows: Rows, work: Path, size: str) -> None:
    """SDXL 1024 px bs1 LoRA, bf16 + SDPA + gradient checkpointing, cached latents and text outputs: s/step, peak
    VRAM beside trainer.memory's estimate; then the same without checkpointing."""
    ckpt = {**BF16, "training": {"gradient_checkpointing": True}}
    engine_row(rows, work, size, "sdxl", "bf16+sdpa+checkpointing, cached TE outputs", ckpt)
    if size != "dry":  # the dry run checks the wiring once
        engine_row(rows, work, size, "sdxl", "bf16+sdpa, cached TE outputs", BF16)


# ---- (2) Danlu vs sd-scripts, SD1.5 -----------------------------------------------------------------------------
SDS_STEPS = {"gpu": 40, "dry": 3, "cpufull": 6}
SDS_WARMUP = {"gpu": 10, "dry": 1, "cpufull": 2}


def sdscripts(rows: Rows, work: Path, size: str) -> None:
    """Same settings both sides, both timed by bench/step_clock.py (stamp after each optimizer step, CUDA peak):
    SD1.5 512 px bs1, LoRA dim 32/alpha 16 on the U-Net, AdamW 1e-4 constant, bf16, SDPA, cached latents, text
    encoder run every step (sd-scripts caches SD1.5 text outputs never), no checkpointing."""
    from bench.step_clock import step_clock, summary
    from trainer.engine.run import train

    reso, _, _ = SIZES[size]["sd15"]
    steps, warmup = SDS_STEPS[size], SDS_WARMUP[size]
    mixed = "no" if size == "cpufull" else "bf16"  # the CPU check: plain fp32 both sides
    mdir, data = model(work, "sd15", size), make_data(work / "data", reso)
    cfg = run_config("sd15", mdir, data, reso, 1, steps, {"speed": {"mixed_precision": mixed, "sdpa": True,
                                                                    "cache_text_encoder_outputs": False}}, [], [])
    with step_clock() as stamps:
        rc = train(cfg, work / "runs" / f"danlu-vs-sds-{os.getpid()}")
    rows.add(trainer="danlu", rc=rc, resolution=reso, **summary(stamps, warmup))
    sds, site = os.environ.get("DANLU_SDSCRIPTS"), os.environ.get("DANLU_SDSCRIPTS_SITE")
    if size == "dry":  # sd-scripts turns the U-Net into its own fixed SD1.5 layout: a tiny model cannot load
        rows.add(trainer="sd-scripts", skipped="dry run: sd-scripts needs the full-size SD1.5 layout")
        return
    if not (sds and site and Path(sds, "train_network.py").exists()):
        rows.add(trainer="sd-scripts", skipped="DANLU_SDSCRIPTS / DANLU_SDSCRIPTS_SITE not set up (bench/gpu_carry.sh)")
        return
    theirs = run_sdscripts(Path(sds), Path(site), mdir, data, work, reso, steps, warmup, mixed)
    rows.add(trainer="sd-scripts", **theirs)
    ours = rows.data["rows"][0]
    if ours["s_per_step"] and theirs.get("s_per_step"):  # issue 18's targets: >= 1.2 and <= 0.8
        rows.add(trainer="danlu / sd-scripts", speed_ratio=theirs["s_per_step"] / ours["s_per_step"],
                 vram_ratio=ours["peak_gb"] / theirs["peak_gb"] if ours["peak_gb"] and theirs["peak_gb"] else None)


def run_sdscripts(sds: Path, site: Path, mdir: Path, data: Path, work: Path, reso: int, steps: int, warmup: int,
                  mixed: str) -> dict:
    from bench.step_clock import summary

    tok = work / "sds-tokenizer" / "openai_clip-vit-large-patch14"  # read instead of the hub (no internet)
    if not tok.exists():
        shutil.copytree(ROOT / "assets" / "model_configs" / "sd15" / "tokenizer", tok)
    out, clock = work / "sds-out", work / "sds-clock.json"
    args = ["--pretrained_model_name_or_path", str(mdir), "--train_data_dir", str(data), "--output_dir", str(out),
            "--output_name", "sds", "--resolution", f"{reso},{reso}", "--network_module", "networks.lora",
            "--network_dim", "32", "--network_alpha", "16", "--network_train_unet_only", "--optimizer_type",
            "AdamW", "--learning_rate", "1e-4", "--lr_scheduler", "constant", "--train_batch_size", "1",
            "--max_train_steps", str(steps), "--mixed_precision", mixed, "--sdpa", "--cache_latents", "--seed",
            "1", "--tokenizer_cache_dir", str(tok.parent), "--caption_extension", ".txt",
            "--max_data_loader_n_workers", "0", "--save_model_as", "safetensors"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, str(ROOT / "bench" / "step_clock.py"), str(clock),
                           str(sds / "train_network.py"), *args], cwd=sds, env=env, capture_output=True, text=True)
    print(proc.stdout[-3000:], proc.stderr[-6000:], flush=True)
    if not clock.exists():
        return {"rc": proc.returncode, "error": proc.stderr[-800:]}
    got = json.loads(clock.read_text())
    peak = got["peak_gb"]  # read in sd-scripts' own process
    return {"rc": got["rc"], **summary(got["stamps"], warmup), "peak_gb": peak}


# ---- (3) speed switches, SD1.5 ----------------------------------------------------------------------------------
SWITCHES = [("baseline bf16+sdpa", []), ("+tf32", ["speed.tf32=true"]),
            ("+cudnn_benchmark", ["speed.cudnn_benchmark=true"]), ("+fused_optimizer", ["speed.fused_optimizer=true"]),
            ("tf32+cudnn+fused", ["speed.tf32=true", "speed.cudnn_benchmark=true", "speed.fused_optimizer=true"]),
            ("baseline again", []),  # the run-to-run noise; before compiling, the run most likely cut by the limit
            ("tf32+cudnn+fused+compile_blocks", ["speed.tf32=true", "speed.cudnn_benchmark=true",
                                                 "speed.fused_optimizer=true", "speed.compile_blocks=true"])]
DRY_SWITCHES = ("baseline bf16+sdpa", "tf32+cudnn+fused")  # compiling alone takes minutes on a CPU


def switches(rows: Rows, work: Path, size: str) -> None:
    """SD1.5 512 px bs1, cached latents and text outputs, bf16 + SDPA: each switch alone, the three together, the
    baseline again (the run-to-run noise), then the three with compile_blocks (Triton; compiling takes the first
    steps: warm-up x4). `speedup` is it/s over the first baseline's."""
    base = None
    for name, sets in SWITCHES:
        if size == "dry" and name not in DRY_SWITCHES:
            rows.add(setting=name, skipped="dry run: the wiring is checked by the settings that run")
            continue
        compiled = any("compile" in s for s in sets)
        reso, steps, warmup = SIZES[size]["sd15"]
        cfg = run_config("sd15", model(work, "sd15", size), make_data(work / "data", reso), reso, 1,
                         steps + warmup * (4 if compiled else 1), BF16, sets, [])
        r = run_one(cfg, work / "runs" / f"switch-{len(rows.data['rows'])}", warmup * (4 if compiled else 1))
        base = base or r["it_s"]
        rows.add(setting=name, sets=sets, **r, s_per_step=1 / r["it_s"] if r["it_s"] else None,
                 speedup=r["it_s"] / base if r["it_s"] and base else None)  # over the first baseline


# ---- (4) Flux bf16 attention ------------------------------------------------------------------------------------
def flux_attention(rows: Rows, work: Path, size: str) -> None:
    """Flux forward + backward in bf16 with PyTorch's own SDPA kernel choice ("auto") and with flash/efficient
    kernels only ("flash"): are the LoRA gradients finite? (On an H200 with torch 2.11 "auto" gave NaN gradients on
    the tiny model and a cuBLAS error full-size.) The tiny model here, then full-size FLUX.1-dev at 1024 px (bf16,
    checkpointing) through bench/flux_memory.py in a process per kernel choice, so a broken CUDA context after an
    error cannot spoil the other."""
    from bench.flux_memory import measure

    bf16 = {} if size == "dry" else {"speed__mixed_precision": "bf16"}  # the dry run's CPU keeps fp32
    for sdpa in ("auto", "flash"):
        try:
            r = measure(f"tiny-{'fp32' if size == 'dry' else 'bf16'}", 64, bf16, 1 if size == "dry" else 2, True, sdpa)
            rows.add(model="tiny", **r)
        except Exception as exc:  # noqa: BLE001 - the error is the finding; the next variant still runs
            traceback.print_exc()
            rows.add(model="tiny", sdpa=sdpa, error=f"{type(exc).__name__}: {exc}"[:500])
    if size == "dry":
        rows.add(model="full", skipped="dry run: a 12B transformer does not fit a CPU test")
        return
    for sdpa in ("auto", "flash"):
        out = work / f"flux-full-{sdpa}-{os.getpid()}.json"
        sys.stdout.flush()
        proc = subprocess.run([sys.executable, str(ROOT / "bench" / "flux_memory.py"), "--only", "1024-bf16-ckpt",
                               "--sdpa", sdpa, "--steps", "2", "--out", str(out)], cwd=ROOT)
        if proc.returncode == 0 and out.exists():
            rows.add(model="full", rc=0, **json.loads(out.read_text())[0])
        else:
            rows.add(model="full", sdpa=sdpa, rc=proc.returncode, error="bench/flux_memory.py failed: see this log")


SECTIONS = {"sdxl": sdxl, "sdscripts": sdscripts, "switches": switches, "flux_attention": flux_attention}
