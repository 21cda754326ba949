#!/usr/bin/env bash
# The fine-tuning quality table of docs/quality.md, end to end: fine-tunes the pre-trained ../shared/models/bert-tiny-mlm-en
# on SST-2 and IMDb with each method (head only, last 2 layers, LoRA default, the best LoRA of a sweep, full), three
# seeds each, then prints the Markdown table and renders the bar chart.
#
#   src/Microsoft.ML.LoRA.Benchmarks/quality.sh [OUT]        (default OUT: artifacts/quality)
#
# Environment: SEEDS (default "1 2 3"), DATASETS (default "sst2 imdb"), SWEEP_TRIALS (SST-2 random sweep, default 16),
# IMDB_SWEEP_CONFIGS (IMDb successive halving, default 9), CHART (default docs/quality.png), MODEL (default the
# pre-trained bert-tiny). Finished runs are kept and skipped when the script runs again on the same OUT.
# Protocol (the same as the plain PyTorch reference in docs/quality.md): AdamW, 6% linear warm-up then linear decay,
# weight decay 0.01, batch 32, no gradient clipping, plain shuffled batches; the last epoch's accuracy is reported.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-artifacts/quality}
SEEDS=${SEEDS:-"1 2 3"}
DATASETS=${DATASETS:-"sst2 imdb"}
SWEEP_TRIALS=${SWEEP_TRIALS:-16}
IMDB_SWEEP_CONFIGS=${IMDB_SWEEP_CONFIGS:-9}
CHART=${CHART:-docs/quality.png}
MODEL=${MODEL:-../shared/models/bert-tiny-mlm-en}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

dotnet build src/Microsoft.ML.LoRA.Cli -c Release -v q -nologo >/dev/null
dotnet build src/Microsoft.ML.LoRA.Benchmarks -c Release -v q -nologo >/dev/null
LORA=(dotnet src/Microsoft.ML.LoRA.Cli/bin/Release/net10.0/lora.dll)
BENCH=(dotnet src/Microsoft.ML.LoRA.Benchmarks/bin/Release/net10.0/Microsoft.ML.LoRA.Benchmarks.dll)
mkdir -p "$OUT"
PLAIN=(--warmup 0.06 --weight-decay 0.01 --max-grad-norm 0 --length-bucketing false)

# per data set: training rows and max length; evaluation rows; epochs
data_args() {
  case $1 in
    sst2) echo "--data ../shared/data/sst2/train.tsv --max-rows 20000 --max-length 64" ;;
    imdb) echo "--data $OUT/data/imdb-train.jsonl --max-length 256" ;;
  esac
}
evaluation() { case $1 in sst2) echo ../shared/data/sst2/dev.tsv ;; imdb) echo "$OUT/data/imdb-test.jsonl" ;; esac; }
epochs() { case $1 in sst2) echo 2 ;; imdb) echo 3 ;; esac; }

train() {   # train DATASET METHOD_FOLDER SEED ARGS...
  local dataset=$1 folder=$2 seed=$3; shift 3
  local run="$OUT/runs/$dataset/$folder/s$seed"
  if [ -f "$run/metrics.json" ]; then return; fi
  rm -rf "$run"
  mkdir -p "$(dirname "$run")"
  echo "$(date +%T) $dataset $folder seed $seed" >&2
  local epochs=(--epochs "$(epochs "$dataset")")
  case " $* " in *" --epochs "*) epochs=() ;; esac
  # shellcheck disable=SC2046
  "${LORA[@]}" train --model "$MODEL" $(data_args "$dataset") --validation "$(evaluation "$dataset")" "${epochs[@]}" \
    --batch-size 32 "${PLAIN[@]}" --seed "$seed" --output "$run" "$@" --json > "$run.json"
}

for dataset in $DATASETS; do
  if [ "$dataset" = imdb ] && [ ! -f "$OUT/data/imdb-test.jsonl" ]; then
    "${BENCH[@]}" --mode quality-data --data ../shared/data/imdb --output "$OUT/data" --per-class 2500 --seed 0
  fi
  for seed in $SEEDS; do
    train "$dataset" head "$seed" --method head --learning-rate 1e-3
    train "$dataset" last-layers-2 "$seed" --method last-layers:2 --learning-rate 1e-4
    train "$dataset" lora "$seed" --learning-rate 1e-3 --lora-query --lora-value
    train "$dataset" full "$seed" --method full --learning-rate 1e-4
  done

  # The sweep chooses on 10% of the training rows held out (stratified), never on the evaluation set.
  sweep="$OUT/sweeps/$dataset"
  read -r -a data <<< "$(data_args "$dataset")"
  space=(--ranks 4,8,16 --alphas 8,16,32 --learning-rates 5e-4,1e-3,2e-3,4e-3 --query on --value on --key both --projection both --mlp both)
  if [ "$dataset" = imdb ]; then
    strategy=(--strategy halving --budget "$IMDB_SWEEP_CONFIGS" --eta 3 --min-epochs 1 --max-epochs 3)
  else
    strategy=(--strategy random --budget "$SWEEP_TRIALS" --epochs "$(epochs "$dataset")")
  fi
  if [ ! -f "$sweep/best.json" ]; then
    mkdir -p "$OUT/sweeps"
    echo "$(date +%T) $dataset sweep" >&2
    "${LORA[@]}" sweep --model "$MODEL" "${data[@]}" --validation-fraction 0.1 --seed 7 --batch-size 32 "${PLAIN[@]}" \
      "${space[@]}" "${strategy[@]}" --output "$sweep" --json > "$sweep.json"
  fi
  read -r -a best <<< "$("${BENCH[@]}" --mode sweep-best --input "$sweep")"
  for seed in $SEEDS; do
    train "$dataset" lora-tuned "$seed" "${best[@]}"
  done
done

"${BENCH[@]}" --mode quality-report --input "$OUT/runs" --output "$CHART" \
  --title "bert-tiny-mlm-en fine-tuned five ways: accuracy, mean ± sd over seeds" | tee "$OUT/quality.md"
