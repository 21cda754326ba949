#!/usr/bin/env bash
# Does domain adaptation help? Adapts the pre-trained bert-tiny-mlm-en (../shared/models) to SMS text by masked-LM
# training on the messages of a training part (`lora adapt`, LoRA merged and full), then fine-tunes each adapted folder
# and the unadapted model on a small labelled subset with the same `lora train` settings and seeds, evaluates each on a
# test part the adaptation never saw, and prints a table: mean ± sd accuracy and macro accuracy (ham is 87% of the
# messages, so macro accuracy, the mean of the per-class recalls, shows what the majority class hides), the held-out
# masked-LM loss before and after adaptation, and the adaptation time.
#
#   src/Microsoft.ML.LoRA.Benchmarks/domain-adaptation.sh          # about 4 minutes on 2 cores
#   LABELLED=500 SEEDS="1 2 3 4 5" src/Microsoft.ML.LoRA.Benchmarks/domain-adaptation.sh
#
# Split (fixed): SMSSpamCollection in file order, the first 80% of rows are the training part, the last 20% the test
# part. Adaptation reads the training part's text only (no labels; 10% of it held out to measure the masked-LM loss);
# fine-tuning reads the first LABELLED rows of the training part with their labels.
# Environment: LABELLED (300), SEEDS ("1 2 3"), THREADS (2), ADAPT_EPOCHS (3), LORA_ADAPT ("--targets all-linear
# --learning-rate 2e-3"), FULL_ADAPT ("--learning-rate 2e-4"), TRAIN ("--epochs 5 --learning-rate 1e-3 --batch-size 16
# --max-length 64"), MODEL (../shared/models/bert-tiny-mlm-en), LORA_SHARED (../shared), OUT (artifacts/domain-adaptation).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
SHARED="${LORA_SHARED:-$REPO/../shared}"
MODEL="${MODEL:-$SHARED/models/bert-tiny-mlm-en}"
DATA="$SHARED/data/sms_spam/SMSSpamCollection"
OUT="${OUT:-$REPO/artifacts/domain-adaptation}"
LABELLED="${LABELLED:-300}"
SEEDS="${SEEDS:-1 2 3}"
THREADS="${THREADS:-2}"
ADAPT_EPOCHS="${ADAPT_EPOCHS:-3}"
LORA_ADAPT="${LORA_ADAPT:---targets all-linear --learning-rate 2e-3}"
FULL_ADAPT="${FULL_ADAPT:---learning-rate 2e-4}"
TRAIN="${TRAIN:---epochs 5 --learning-rate 1e-3 --batch-size 16 --max-length 64}"

echo "== building the CLI (Release)" >&2
dotnet build "$REPO/src/Microsoft.ML.LoRA.Cli/Microsoft.ML.LoRA.Cli.csproj" -c Release -nologo -v q >&2
LORA=(dotnet "$REPO/src/Microsoft.ML.LoRA.Cli/bin/Release/net10.0/lora.dll")

# The first number after "key": in a JSON file (the CLI's --json output is one indented object).
number() { grep -o "\"$2\": *[-0-9.eE+]*" "$1" | sed -n '1s/.*: *//p'; }

rm -rf "$OUT"
mkdir -p "$OUT/runs"
rows=$(wc -l < "$DATA")
train_rows=$((rows * 8 / 10))
{ printf 'label\ttext\n'; head -n "$train_rows" "$DATA"; } > "$OUT/train.tsv"
{ printf 'label\ttext\n'; tail -n +"$((train_rows + 1))" "$DATA"; } > "$OUT/test.tsv"
{ printf 'label\ttext\n'; head -n "$((LABELLED < train_rows ? LABELLED : train_rows))" "$DATA"; } > "$OUT/labelled.tsv"
spam() { awk -F'\t' 'NR > 1 && $1 == "spam"' "$1" | wc -l; }
echo "== SMS spam: $train_rows training rows ($(spam "$OUT/train.tsv") spam), $((rows - train_rows)) test rows ($(spam "$OUT/test.tsv") spam), $LABELLED labelled rows ($(spam "$OUT/labelled.tsv") spam)" >&2

for variant in lora full; do
  if [ "$variant" = lora ]; then args=($LORA_ADAPT); else args=(--method full $FULL_ADAPT); fi
  echo "== lora adapt ($variant)" >&2
  "${LORA[@]}" adapt --model "$MODEL" --data "$OUT/train.tsv" --validation-fraction 0.1 --epochs "$ADAPT_EPOCHS" \
    --threads "$THREADS" "${args[@]}" --output "$OUT/adapted-$variant" --json > "$OUT/adapt-$variant.json" 2> "$OUT/adapt-$variant.log"
done

for variant in unadapted lora full; do
  if [ "$variant" = unadapted ]; then model="$MODEL"; else model="$OUT/adapted-$variant"; fi
  for seed in $SEEDS; do
    echo "== lora train + evaluate ($variant, seed $seed)" >&2
    run="$OUT/runs/$variant-$seed"
    "${LORA[@]}" train --model "$model" --data "$OUT/labelled.tsv" $TRAIN --seed "$seed" --threads "$THREADS" --output "$run" --json > /dev/null 2> "$run.log"
    "${LORA[@]}" evaluate --model "$run/model.zip" --data "$OUT/test.tsv" --json > "$run.json"
    echo "$variant $seed $(number "$run.json" microAccuracy) $(number "$run.json" macroAccuracy)" >> "$OUT/results.txt"
  done
done

# mean ± sample standard deviation of column $2 over the rows of variant $1, in percent
stats() { awk -v v="$1" -v c="$2" '$1 == v { x = 100 * $c; s += x; q += x * x; n++ }
  END { m = s / n; sd = n > 1 ? sqrt((q - n * m * m) / (n - 1)) : 0; if (sd < 0) sd = 0; printf "%.1f ± %.1f", m, sd }' "$OUT/results.txt"; }

echo
echo "bert-tiny-mlm-en on SMS spam: $LABELLED labelled rows, seeds $SEEDS, test part of $((rows - train_rows)) rows; $(date -u +%Y-%m-%d), $(sed -n '/model name/{s/.*: //p;q}' /proc/cpuinfo), $THREADS threads"
echo "adapt: $ADAPT_EPOCHS epochs on the training part's text; lora: $LORA_ADAPT; full: $FULL_ADAPT. train: $TRAIN"
echo
echo "| variant | held-out masked-LM loss | accuracy | macro accuracy | adapt time |"
echo "| --- | --- | ---: | ---: | ---: |"
for variant in unadapted lora full; do
  if [ "$variant" = unadapted ]; then
    loss="$(printf '%.3f' "$(number "$OUT/adapt-lora.json" validationLossBefore)")"; took="-"
  else
    loss="$(printf '%.3f → %.3f' "$(number "$OUT/adapt-$variant.json" validationLossBefore)" "$(number "$OUT/adapt-$variant.json" validationLossAfter)")"
    took="$(printf '%.0f s' "$(number "$OUT/adapt-$variant.json" seconds)")"
  fi
  name=$variant; [ "$variant" = lora ] && name="LoRA-adapted (merged)"; [ "$variant" = full ] && name="fully adapted"
  echo "| $name | $loss | $(stats "$variant" 3) | $(stats "$variant" 4) | $took |"
done
