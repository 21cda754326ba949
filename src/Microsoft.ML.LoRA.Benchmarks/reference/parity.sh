#!/usr/bin/env bash
# Ours against plain PyTorch on TREC-6 and SMS spam (docs/quality.md, "The same comparison on TREC-6 and SMS spam"):
# fine-tunes ../shared/models/bert-tiny-mlm-en with LoRA on query and value, the head only and in full, three seeds
# each, once with `lora train` and once with torch_finetune.py (beside this script), and prints the Markdown table.
#
#   src/Microsoft.ML.LoRA.Benchmarks/reference/parity.sh [OUT]      (default OUT: /tmp/parity; about 30 minutes on 2 cores)
#
# Environment: SEEDS (default "1 2 3"), DATASETS (default "trec sms"), MODEL, THREADS (default 2), PY (default
# /usr/bin/python3, which needs torch and numpy). Finished runs are kept and skipped when the script runs again.
# Protocol (both sides): max length 64, batch 32, 3 epochs, AdamW, 6% linear warm-up then linear decay, weight decay
# 0.01 on weight matrices, no clipping, shuffled batches; LoRA r 8, alpha 16, dropout 0.05 on query and value, lr 1e-3;
# head lr 1e-3; full lr 1e-4; accuracy on the test file after the last epoch.
# TREC-6: the 5,452 questions of train_5500.label, tested on the 500 of TREC_10.label (coarse labels). SMS spam: the
# first 4,000 messages of SMSSpamCollection, tested on the other 1,574.
set -euo pipefail
cd "$(dirname "$0")/../../.."
OUT=${1:-/tmp/parity}
SEEDS=${SEEDS:-"1 2 3"}
DATASETS=${DATASETS:-"trec sms"}
MODEL=${MODEL:-../shared/models/bert-tiny-mlm-en}
THREADS=${THREADS:-2}
PY=${PY:-/usr/bin/python3}
REF=src/Microsoft.ML.LoRA.Benchmarks/reference/torch_finetune.py
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
# Speed only (the results do not depend on them): OpenMP threads wait passively, as our library sets for itself.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}

dotnet build src/Microsoft.ML.LoRA.Cli -c Release -v q -nologo >/dev/null
LORA=(dotnet src/Microsoft.ML.LoRA.Cli/bin/Release/net10.0/lora.dll)

[ -f "$OUT/trec/test.jsonl" ] || "$PY" "$REF" prepare trec --source ../shared/data/trec --out "$OUT/trec" >/dev/null
[ -f "$OUT/sms/test.jsonl" ] || "$PY" "$REF" prepare sms --source ../shared/data/sms_spam/SMSSpamCollection --out "$OUT/sms" >/dev/null

method_args() {   # ours; PyTorch takes --method and --learning-rate alike
  case $1 in
    lora) echo "--lora-query --lora-value --learning-rate 1e-3" ;;
    head) echo "--method head --learning-rate 1e-3" ;;
    full) echo "--method full --learning-rate 1e-4" ;;
  esac
}
rate() { case $1 in full) echo 1e-4 ;; *) echo 1e-3 ;; esac; }

for dataset in $DATASETS; do
  for method in lora head full; do
    for seed in $SEEDS; do
      run="$OUT/runs/$dataset-$method-s$seed"
      mkdir -p "$OUT/runs"
      if [ ! -f "$run/history.json" ]; then
        echo "$(date +%T) ours    $dataset $method seed $seed" >&2
        rm -rf "$run"
        # shellcheck disable=SC2046
        "${LORA[@]}" train --model "$MODEL" --data "$OUT/$dataset/train.jsonl" --validation "$OUT/$dataset/test.jsonl" \
          --max-length 64 --batch-size 32 --epochs 3 --warmup 0.06 --weight-decay 0.01 --rank 8 --alpha 16 --dropout 0.05 \
          $(method_args "$method") --seed "$seed" --threads "$THREADS" --output "$run" --json > "$run.json" 2> "$run.err"
      fi
      if [ ! -s "$run.torch.json" ]; then
        echo "$(date +%T) pytorch $dataset $method seed $seed" >&2
        "$PY" "$REF" train --model "$MODEL" --train "$OUT/$dataset/train.jsonl" --test "$OUT/$dataset/test.jsonl" \
          --method "$method" --max-length 64 --batch-size 32 --epochs 3 --learning-rate "$(rate "$method")" --warmup 0.06 \
          --weight-decay 0.01 --rank 8 --alpha 16 --dropout 0.05 --seed "$seed" --threads "$THREADS" > "$run.torch.json"
      fi
    done
  done
done

"$PY" - "$OUT" "$DATASETS" "$SEEDS" <<'EOF'
import json, statistics, sys
out, datasets, seeds = sys.argv[1], sys.argv[2].split(), sys.argv[3].split()
names = {"trec": "TREC-6", "sms": "SMS spam"}
labels = {"lora": "LoRA q,v, lr 1e-3", "head": "head only, lr 1e-3", "full": "full, lr 1e-4"}
print("| data set | method | PyTorch, mean ± sd | ours, mean ± sd | difference | PyTorch per seed | ours per seed |")
print("| --- | --- | ---: | ---: | ---: | --- | --- |")
for d in datasets:
    for m in ("lora", "head", "full"):
        torch_acc, ours = [], []
        for s in seeds:
            run = f"{out}/runs/{d}-{m}-s{s}"
            torch_acc.append(100 * json.load(open(run + ".torch.json"))["accuracy"])
            ours.append(100 * json.load(open(run + "/history.json"))["epochs"][-1]["validationAccuracy"])
        sd = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0
        mt, mo = statistics.mean(torch_acc), statistics.mean(ours)
        print(f"| {names[d]} | {labels[m]} | {mt:.1f}% ± {sd(torch_acc):.1f} | {mo:.1f}% ± {sd(ours):.1f} | {mo - mt:+.1f} | "
              f"{', '.join(f'{a:.2f}' for a in torch_acc)} | {', '.join(f'{a:.2f}' for a in ours)} |")
EOF
