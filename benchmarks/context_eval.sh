#!/usr/bin/env bash
# The context step on the SciFact rationale train split (issue 22): `rerankkit eval-context`
# with the test cross-encoder and with a cross-encoder fine-tuned on SciFact train.
#
#   bash benchmarks/context_eval.sh [MAX_CLAIMS] [OUT]      (defaults: 30, reports/context)
#
# 1. The fine-tuned model (kept outside the repository; skipped when it exists):
#      rerankkit train --model ../shared/models/minilm-l6-msmarco-ce --data ../shared/data/scifact \
#        --split train --output $FINETUNED --loss margin --negatives 4 --ranks 1 30 \
#        --sampling random --max-steps 80 --save-steps 80 --batch-size 8 --learning-rate 4e-5 \
#        --max-length 256 --no-eval
#    NOTE: SciFact train claims are the claims of the rationale file, so the fine-tuned rows
#    measure a model that has seen these claims with their abstracts (document-level labels,
#    not sentence-level ones): an upper bound, to be re-measured on unseen claims.
# 2. eval-context with the test cross-encoder: four methods, budgets 64/128/256, the adaptive
#    default at three margins, neighbour context 0 and 1.
# 3. eval-context with the fine-tuned model (the same seeded claims; lead-k again, no
#    bi-encoder: its rows are the same as in 2).
# Bounded: MAX_CLAIMS seeded claims of 505 (0 = all). Each run writes report.{json,md,png}.
set -euo pipefail
cd "$(dirname "$0")/.."
claims="${1:-30}"
out="${2:-reports/context}"
shared="${SHARED:-../shared}"
finetuned="${FINETUNED:-../models/scifact-ce}"
sample=()
[ "$claims" != 0 ] && sample=(--max-claims "$claims")
export HF_HUB_OFFLINE=1
uptime
if [ ! -f "$finetuned/config.json" ]; then
  .venv/bin/rerankkit train --model "$shared/models/minilm-l6-msmarco-ce" \
    --data "$shared/data/scifact" --split train --output "$finetuned" --loss margin \
    --negatives 4 --ranks 1 30 --sampling random --max-steps 80 --save-steps 80 \
    --batch-size 8 --learning-rate 4e-5 --max-length 256 --no-eval --no-progress
fi
.venv/bin/rerankkit -v eval-context --data "$shared/data/scifact-rationales/train.jsonl" \
  --reranker "cross-encoder:$shared/models/minilm-l6-msmarco-ce" \
  --context-sentences 0 --context-sentences 1 "${sample[@]}" --output "$out/test-ce"
.venv/bin/rerankkit -v eval-context --data "$shared/data/scifact-rationales/train.jsonl" \
  --reranker "cross-encoder:$finetuned" --tokenizer "$shared/models/minilm-l6-msmarco-ce" \
  --bi-encoder none "${sample[@]}" --output "$out/scifact-ce"
uptime
