#!/usr/bin/env bash
# Scores of the shipped reader, as reported in models/reader-zh/MODEL_CARD.md and the issues.
# Usage: bash benchmarks/reader_eval.sh [READER] [OPEN_DOMAIN_LIMIT|all]   (run from the repo root)
set -euo pipefail
READER=${1:-models/reader-zh}
OPEN_LIMIT=${2:-all}
DATA=${LUDAO_QA_DATA:-../shared/data/qa}
OUT=${LUDAO_RESULTS:-benchmarks/results}
PRED=${LUDAO_PREDICTIONS:-artifacts/predictions}
mkdir -p "$OUT" "$PRED"
ludao=(".venv/bin/ludao" -q)

"${ludao[@]}" eval "$DATA/cmrc2018_dev.json" --gold-passage --reader "$READER" --json \
  --predictions "$PRED/cmrc_dev_gold.jsonl" | tee "$OUT/cmrc_dev_gold.json"
"${ludao[@]}" eval "$DATA/xquad.zh.json" --gold-passage --reader "$READER" --json \
  --predictions "$PRED/xquad_zh_gold.jsonl" | tee "$OUT/reader_xquad_zh_gold.json"
"${ludao[@]}" eval "$DATA/xquad.en.json" --gold-passage --reader "$READER" --json \
  --predictions "$PRED/xquad_en_gold.jsonl" | tee "$OUT/reader_xquad_en_gold.json"
# English questions over the Chinese paragraphs (XQuAD is parallel: the same ids in both files).
"${ludao[@]}" eval "$DATA/xquad.zh.json" --gold-passage --reader "$READER" --json \
  --questions-from "$DATA/xquad.en.json" --predictions "$PRED/xquad_enq_zhp_gold.jsonl" \
  | tee "$OUT/reader_xquad_enq_zhp_gold.json"
"${ludao[@]}" eval ../shared/eval/seed_dev.jsonl --reader "$READER" --json \
  --predictions "$PRED/seed_dev.jsonl" | tee "$OUT/seed_dev.json"
"${ludao[@]}" eval qa/eval/data/seed_questions.jsonl --reader "$READER" --json \
  --predictions "$PRED/seed_questions.jsonl" | tee "$OUT/seed_questions.json"
if [ "$OPEN_LIMIT" = all ]; then limit=(); name=all; else limit=(--limit "$OPEN_LIMIT"); name="first$OPEN_LIMIT"; fi
# Open domain: all 848 dev paragraphs are the corpus; the answer cache is off so that latency is
# the pipeline's.
LUDAO_ANSWER_CACHE_SIZE=0 "${ludao[@]}" eval "$DATA/cmrc2018_dev.json" "${limit[@]}" \
  --reader "$READER" --json --predictions "$PRED/cmrc_dev_open.jsonl" \
  | tee "$OUT/cmrc_dev_open_${name}.json"
