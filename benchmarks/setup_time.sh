#!/usr/bin/env bash
# Set-up time with and without pip's byte-compilation (scripts/setup.sh uses --no-compile).
# Each run: a fresh .venv, `bash scripts/setup.sh dev`, then the imports a test run starts with.
# A/B interleaved with farm-bench over two throwaway clones of this checkout (needs the network
# or the local wheel mirror; about 5 minutes a pair):
#   bash benchmarks/setup_time.sh [RUNS]
set -euo pipefail
root=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for variant in no-compile compile; do
  git clone -q "$root" "$work/$variant"
  cp "$root/scripts/setup.sh" "$work/$variant/scripts/setup.sh"
done
sed -i 's/ install --no-compile)/ install)/' "$work/compile/scripts/setup.sh"
cat > "$work/run.sh" <<'RUN'
#!/usr/bin/env bash
set -e
cd "$1" && rm -rf .venv
bash scripts/setup.sh dev >/dev/null 2>&1
.venv/bin/python -c "import rerankkit, torch, transformers, sentence_transformers, langchain_core, llama_index.core, ray, onnxruntime, openvino, pytest"
RUN
chmod +x "$work/run.sh"
uptime
farm-bench -n "${1:-2}" --warmup 0 --timeout 3000 --vs "$work/run.sh $work/compile" -- "$work/run.sh" "$work/no-compile"
uptime
