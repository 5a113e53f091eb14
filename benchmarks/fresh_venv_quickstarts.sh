#!/usr/bin/env bash
# The README's LangChain and LlamaIndex quick starts in fresh virtualenvs built from the wheel,
# each with only the extras its install line names, timed (issue 27's closing transcript).
# As tests/test_install.py does: torch (and only torch's own dependencies) comes from .venv
# through a .pth file and uv leaves it out of the resolution; the hub cross-encoder is swapped
# for ../shared/models/minilm-l6-msmarco-ce (tests/doc_blocks.py). Everything else comes from
# the index through uv's cache. Bounded: two venvs in a temporary folder, removed at the end.
#   bash benchmarks/fresh_venv_quickstarts.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
base_python=$(.venv/bin/python -c "import sys; print(getattr(sys, '_base_executable', sys.executable))")

echo "\$ pip wheel --no-deps --no-build-isolation -w dist ."
.venv/bin/python -m pip wheel -q --no-deps --no-build-isolation -w "$work/dist" . 2>/dev/null
wheel=$(ls "$work"/dist/rerankkit-*.whl)

mkdir "$work/torch-only"
.venv/bin/python - "$work/torch-only" <<'EOF'
import importlib.metadata as md, pathlib, re, sys
from packaging.requirements import Requirement
out, seen, todo = pathlib.Path(sys.argv[1]), set(), ["torch"]
while todo:
    name = re.sub(r"[-_.]+", "-", todo.pop()).lower()
    if name in seen:
        continue
    seen.add(name)
    dist = md.distribution(name)
    for line in dist.requires or []:
        r = Requirement(line)
        if r.marker is None or r.marker.evaluate({"extra": ""}):
            todo.append(r.name)
    site = pathlib.Path(dist.locate_file(""))
    for top in {f.parts[0] for f in dist.files or () if f.parts[0] not in ("..", "__pycache__")}:
        if (site / top).exists() and not (out / top).exists():
            (out / top).symlink_to(site / top)
EOF
echo torch > "$work/excludes.txt"

run() {  # run EXTRAS PAGE:LINES
  local venv="$work/venv-$1"
  echo
  echo "\$ python -m venv $venv && pip install \"rerankkit[$1]\"   # torch reused from .venv"
  local start=$SECONDS
  "$base_python" -m venv --without-pip "$venv"
  site=$("$venv/bin/python" -c "import sysconfig; print(sysconfig.get_path('purelib'))")
  echo "$work/torch-only" > "$site/_torch_from_dev_env.pth"
  .venv/bin/uv pip install -q --python "$venv/bin/python" --excludes "$work/excludes.txt" \
    "rerankkit[$1] @ file://$wheel"
  echo "installed in $((SECONDS - start)) s: $("$venv/bin/python" -P -c 'import importlib.metadata as m; print(len(list(m.distributions())))') distributions"
  echo "\$ python quickstart.py   # the README block under that install line"
  start=$SECONDS
  # -P: the checkout's folder is not on sys.path, so rerankkit comes from the wheel
  env -u PYTHONPATH HF_HUB_OFFLINE=1 "$venv/bin/python" -P - "$2" <<'EOF'
import sys
sys.path.insert(0, "tests")
import doc_blocks
page, _, lines = sys.argv[1].partition(":")
chosen = [b for b in doc_blocks.blocks(doc_blocks.ROOT / page) if b.line in {int(n) for n in lines.split(",")}]
for block in chosen:
    print(doc_blocks.offline(block.code).rstrip())
    print("--- output:")
    runner = doc_blocks.PageRunner(page)
    runner.run(block)
    runner.close()
    print("\n".join(runner.mismatches) or "as the README states")
import rerankkit
print("rerankkit from", rerankkit.__file__)
EOF
  echo "ran in $((SECONDS - start)) s (a fresh process: imports, model load, rerank)"
}

lines() {  # lines EXTRAS: the README's Python blocks under that install line
  .venv/bin/python - "$1" <<'EOF'
import sys
sys.path.insert(0, "tests")
import doc_blocks
want = tuple(sorted(sys.argv[1].split(",")))
found = doc_blocks.install_lines(doc_blocks.ROOT / "README.md")
python = {b.line for b in doc_blocks.blocks(doc_blocks.ROOT / "README.md") if b.language == "python"}
print(",".join(str(n) for n, i in found.items() if n in python and i and i.extras == want))
EOF
}

uptime
run "transformers,langchain" "README.md:$(lines transformers,langchain)"
run "transformers,llamaindex" "README.md:$(lines transformers,llamaindex)"
uptime
