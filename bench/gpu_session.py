"""One device call's worth of GPU checks for issue 18 (bench/gpu_sections.py), most wanted first, each in its own
process under its own time limit inside one overall budget. Results go to OUT as they are measured:
OUT/<section>.json (rows, then the section's status) and OUT/<section>.log, so a section that fails or is cut
short keeps what it finished and never stops the next one. 4 sections x 2 files = the 8 files a `run` returns.

    bash bench/gpu_session.sh                  # on the GPU machine: installs the carried wheels, then this
    python bench/gpu_session.py --out DIR [--only sdxl switches] [--budget 520] [--limit sdxl=200]
    DANLU_GPU_DRYRUN=1 bash bench/gpu_session.sh   # the same end to end on a CPU, tiny models (the test's run)

DANLU_GPU_SESSION_FAULT="sdxl=fail,switches=hang" makes those sections fail or hang at their start (the test of
the driver's isolation).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# section -> its most seconds on the GPU; the dry run gives each DRY_LIMIT. What is left of the budget goes in order.
LIMITS = {"sdxl": 170, "sdscripts": 160, "switches": 170, "flux_attention": 150}
BUDGET, DRY_BUDGET, DRY_LIMIT = 520, 600, 150  # the dry run's are loose: shared CPUs vary 3x


def dry_run() -> bool:
    return os.environ.get("DANLU_GPU_DRYRUN", "") not in ("", "0")


def fault(name: str) -> None:
    """The test's injected failure or hang for this section, if DANLU_GPU_SESSION_FAULT names it."""
    faults = dict(item.split("=") for item in os.environ.get("DANLU_GPU_SESSION_FAULT", "").split(",") if item)
    if faults.get(name) == "fail":
        raise RuntimeError(f"injected failure of section {name}")
    if faults.get(name) == "hang":
        time.sleep(3600)


def run_section(name: str, out: Path, work: Path, size: str) -> int:
    """In the section's own process: its rows to OUT/<name>.json as they come."""
    from bench.gpu_sections import ROWS_FAILED, SECTIONS, Rows

    rows = Rows(out / f"{name}.json")
    rows.data.update(section=name, size=size, machine=machine())
    rows.save()
    fault(name)
    SECTIONS[name](rows, work, size)
    return ROWS_FAILED if rows.failed else 0


def cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def machine() -> str:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{gpu}, torch {torch.__version__}, CUDA {torch.version.cuda}, Python {sys.version.split()[0]}"


def spawn(name: str, out: Path, work: Path, size: str, limit: float) -> dict:
    """Run one section in a child process (its own process group, so a time-out kills all it started)."""
    cmd = [sys.executable, __file__, "--section", name, "--out", str(out), "--work", str(work), "--size", size]
    t0 = time.perf_counter()
    with open(out / f"{name}.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)
        try:
            status = status_of(proc.wait(timeout=limit), name)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            status = f"timed out after {limit:.0f} s (rows measured before are kept)"
    return {"status": status, "seconds": round(time.perf_counter() - t0, 1), "limit_s": round(limit)}


def status_of(rc: int, name: str) -> str:
    from bench.gpu_sections import ROWS_FAILED

    if rc == ROWS_FAILED:
        return f"rows failed (each failed row has rc/error; see {name}.log)"
    return "ok" if rc == 0 else f"failed (exit {rc}, see {name}.log)"


def record(out: Path, name: str, result: dict) -> dict:
    """The section's status added to its result file (made if the section died before writing one)."""
    path = out / f"{name}.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {"section": name, "rows": []}
    data.update(result)
    path.write_text(json.dumps(data, indent=1, default=str))
    (out / f"{name}.tmp").unlink(missing_ok=True)  # a write cut off by the kill
    return data


def main(argv: list[str] | None = None) -> int:
    from bench.gpu_sections import SECTIONS

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "gpu-session-out"))
    ap.add_argument("--work", type=Path, default=Path("/tmp/danlu-gpu-session"), help="models and runs")
    ap.add_argument("--only", nargs="+", choices=list(SECTIONS), help="these sections, in the usual order")
    ap.add_argument("--budget", type=float, help="seconds for all sections together")
    ap.add_argument("--limit", action="append", default=[], metavar="SECTION=SECONDS", help="one section's limit")
    ap.add_argument("--section", choices=list(SECTIONS), help=argparse.SUPPRESS)  # the child's own run
    ap.add_argument("--size", choices=("gpu", "dry", "cpufull"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.section:
        return run_section(args.section, args.out, args.work, args.size)
    size = "dry" if dry_run() else "gpu"
    if size == "gpu" and not cuda():
        print("bench/gpu_session.py needs a CUDA GPU (full-size models); DANLU_GPU_DRYRUN=1 runs it on a CPU with "
              "tiny models.", file=sys.stderr)
        return 2
    limits = {n: DRY_LIMIT if size == "dry" else s for n, s in LIMITS.items()}
    limits.update({k: float(v) for k, v in (x.split("=") for x in args.limit)})
    deadline = time.perf_counter() + (args.budget or (DRY_BUDGET if size == "dry" else BUDGET))
    names = [n for n in SECTIONS if not args.only or n in args.only]
    results = {}
    for name in names:
        left = deadline - time.perf_counter()
        if left < 10:
            results[name] = record(args.out, name, {"status": "not run: the budget was spent", "seconds": 0})
            continue
        print(f"[session] {name}: up to {min(limits[name], left):.0f} s", flush=True)
        results[name] = record(args.out, name, spawn(name, args.out, args.work, size, min(limits[name], left)))
        print(f"[session] {name}: {results[name]['status']} in {results[name]['seconds']} s", flush=True)
    print_summary(results)
    return 0 if all(r["status"] == "ok" for r in results.values()) else 1


def print_summary(results: dict) -> None:
    for name, data in results.items():
        print(f"\n== {name}: {data['status']} ({data['seconds']} s) {data.get('machine', '')}")
        for row in data.get("rows", []):
            print("  " + json.dumps({k: v for k, v in row.items() if v is not None and k != "stderr_tail"},
                                    default=str)[:400])


if __name__ == "__main__":
    sys.exit(main())
