#!/usr/bin/env bash
# Fills .gpucarry/ (ignored by git) with what bench/gpu_session.sh needs on the GPU machine, which reaches no
# package registry: wheels for its Python 3.12 / x86-64 of what its image lacks, pinned to the versions Danlu is
# tested with here, and sd-scripts' training code with the wheels of the versions sd-scripts pins (its own folder:
# they differ from Danlu's). Run here, where pip reaches PyPI:
#     bash bench/gpu_carry.sh [SD_SCRIPTS_GIT_DIR]   # default: the `fetch github:kohya-ss/sd-scripts` mirror
set -euo pipefail
cd "$(dirname "$0")/.."
SDS=${1:-/work/.mirror/kohya-ss+sd-scripts/repo}
C=.gpucarry
rm -rf "$C" && mkdir -p "$C/danlu" "$C/sdscripts"
get() {
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$@"
}
# The GPU image has torch, transformers, accelerate, safetensors, tokenizers, huggingface-hub, numpy, pillow
# (.library/device/KINDS.md); peft is pinned too (its version there is unknown). bitsandbytes (8-bit AdamW, ~60 MB)
# is left out: no section uses it.
get "$C/danlu" diffusers==0.42.1 peft==0.21.2 pydantic==2.13.4 pydantic-core==2.46.4 annotated-types==0.7.0 \
  typing-inspection==0.4.2 typing-extensions==4.16.0 importlib-metadata==10.2.0 tomli-w==1.2.0 imagesize==2.0.1
# sd-scripts' requirements.txt pins; the GPU image's transformers 5 / huggingface-hub 1 do not fit them. peft is
# not sd-scripts' own need: diffusers 0.32 imports it when present, and Danlu's peft 0.21 needs huggingface-hub 1.
get "$C/sdscripts" transformers==4.54.1 tokenizers==0.21.4 huggingface-hub==0.34.3 diffusers==0.32.1 \
  accelerate==1.6.0 voluptuous==0.15.2 toml==0.10.2 peft==0.17.1
git --git-dir "$SDS" archive --format=tar.gz -o "$C/sd-scripts.tar.gz" HEAD train_network.py library networks
git --git-dir "$SDS" log -1 --format='sd-scripts %H %cs' > "$C/sd-scripts.version"
du -sh "$C" "$C"/*
