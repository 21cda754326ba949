#!/usr/bin/env bash
# The IMDb rating regression figures of docs/regression.md: writes 2,000 training and 1,000 test reviews with their
# 1-10 rating (the first rows of a seeded shuffle of each file), then fine-tunes the pre-trained
# ../shared/models/bert-tiny-mlm-en with `lora train --task regression` and evaluates it on the test reviews, once
# with the label standardised (the default) and once on the raw rating.
#
#   src/Microsoft.ML.LoRA.Benchmarks/regression.sh [OUT]        (default OUT: artifacts/regression)
#
# Environment: MODEL (default the pre-trained bert-tiny), SEED (default 1), EXTRA (more lora train arguments).
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-artifacts/regression}
MODEL=${MODEL:-../shared/models/bert-tiny-mlm-en}
SEED=${SEED:-1}
EXTRA=${EXTRA:-}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

dotnet build src/Microsoft.ML.LoRA.Cli -c Release -v q -nologo >/dev/null
dotnet build src/Microsoft.ML.LoRA.Benchmarks -c Release -v q -nologo >/dev/null
LORA=(dotnet src/Microsoft.ML.LoRA.Cli/bin/Release/net10.0/lora.dll)
BENCH=(dotnet src/Microsoft.ML.LoRA.Benchmarks/bin/Release/net10.0/Microsoft.ML.LoRA.Benchmarks.dll)
mkdir -p "$OUT"
if [ ! -f "$OUT/data/imdb-ratings-test.jsonl" ]; then
  "${BENCH[@]}" --mode rating-data --data ../shared/data/imdb --output "$OUT/data" --train-rows 2000 --test-rows 1000 --seed 0
fi

for standardize in true false; do
  run="$OUT/standardize-$standardize"
  if [ -f "$run/metrics.json" ]; then continue; fi
  rm -rf "$run"
  # shellcheck disable=SC2086
  "${LORA[@]}" train --task regression --standardize-label "$standardize" --model "$MODEL" \
    --data "$OUT/data/imdb-ratings-train.jsonl" --validation "$OUT/data/imdb-ratings-test.jsonl" --label-column rating \
    --max-length 256 --epochs 3 --batch-size 32 --learning-rate 2e-3 --rank 16 --alpha 32 --lora-query --lora-key --lora-value --lora-mlp \
    --seed "$SEED" --output "$run" $EXTRA
done
for standardize in true false; do
  echo "standardize-label $standardize:"
  "${LORA[@]}" evaluate --model "$OUT/standardize-$standardize/model.zip" --data "$OUT/data/imdb-ratings-test.jsonl" --label-column rating
done
