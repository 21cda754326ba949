#!/usr/bin/env bash
# Which defaults should `lora train` have? Trains the pre-trained ../shared/models/bert-tiny-mlm-en with LoRA under
# candidate settings (targets, alpha, learning rate) on three tasks, every other setting at the library's defaults
# (batch 16, 3 epochs, warm-up 6%, weight decay 0.01, rank 8, no clipping, shuffled batches), and prints each run's
# accuracy on held-out data (the best epoch's; every candidate is scored the same way). docs/quality.md ("Defaults") gives the results.
#
#   src/Microsoft.ML.LoRA.Benchmarks/defaults.sh [OUT]        (default OUT: artifacts/defaults; SEEDS default "1 2")
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${1:-artifacts/defaults}
SEEDS=${SEEDS:-"1 2"}
MODEL=${MODEL:-../shared/models/bert-tiny-mlm-en}
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build src/Microsoft.ML.LoRA.Cli -c Release -v q -nologo >/dev/null
LORA=(dotnet src/Microsoft.ML.LoRA.Cli/bin/Release/net10.0/lora.dll)
mkdir -p "$OUT/data"

# TREC-6 (coarse labels) as TSV: the files are latin-1 lines "COARSE:fine question".
for f in train_5500 TREC_10; do
  [ -f "$OUT/data/$f.tsv" ] || { echo -e "label\ttext"; iconv -f latin1 -t utf-8 "../shared/data/trec/$f.label" | sed -E 's/^([A-Z]+):[^ ]+ /\1\t/'; } > "$OUT/data/$f.tsv"
done

task_args() {
  case $1 in
    sst2) echo "--data ../shared/data/sst2/train.tsv --max-rows 20000 --validation ../shared/data/sst2/dev.tsv" ;;
    trec) echo "--data $OUT/data/train_5500.tsv --validation $OUT/data/TREC_10.tsv" ;;
    sms) echo "--data ../shared/data/sms_spam/SMSSpamCollection --header no --text-column 1 --label-column 0 --validation-fraction 0.2" ;;
  esac
}
declare -A CANDIDATES=(
  [qv-5e-4]="--lora-query --lora-value --learning-rate 5e-4"
  [qv-1e-3]="--lora-query --lora-value --learning-rate 1e-3"
  [all-linear-1e-3]="--targets all-linear --learning-rate 1e-3"
  [all-linear-a32-1e-3]="--targets all-linear --alpha 32 --learning-rate 1e-3"
  [all-linear-a32-2e-3]="--targets all-linear --alpha 32 --learning-rate 2e-3"
)
printf "%-6s %-22s %-5s %-9s %-9s %s\n" task candidate seed accuracy macro seconds
for task in sst2 trec sms; do
  for name in qv-5e-4 qv-1e-3 all-linear-1e-3 all-linear-a32-1e-3 all-linear-a32-2e-3; do
    for seed in $SEEDS; do
      run="$OUT/$task/$name/s$seed"
      if [ ! -f "$run/metrics.json" ]; then
        rm -rf "$run"; mkdir -p "$(dirname "$run")"
        # shellcheck disable=SC2046
        "${LORA[@]}" train --model "$MODEL" $(task_args "$task") ${CANDIDATES[$name]} --seed "$seed" --output "$run" --json > /dev/null 2> "$run.err"
      fi
      m=$(tr -d ' \n' < "$run/metrics.json")
      acc=$(grep -o '"microAccuracy":[0-9.]*' <<< "$m" | head -1 | cut -d: -f2)
      macro=$(grep -o '"macroAccuracy":[0-9.]*' <<< "$m" | head -1 | cut -d: -f2)
      secs=$(grep -o '"trainingSeconds":[0-9.]*' <<< "$m" | head -1 | cut -d: -f2)
      printf "%-6s %-22s %-5s %-9.4f %-9.4f %.0f\n" "$task" "$name" "$seed" "$acc" "$macro" "$secs"
    done
  done
done
