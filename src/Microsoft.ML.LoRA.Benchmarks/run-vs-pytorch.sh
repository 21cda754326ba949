#!/usr/bin/env bash
# Runs Microsoft.ML.LoRA's CPU benchmark and the PyTorch eager anchor (../shared/anchors/torch_lora_bench.py) side by
# side, one process per configuration, and prints the comparison table (raw ratios and ratios divided by the 1024³
# matmul ratio), LoRA vs full fine-tuning, merged vs base inference, and length bucketing vs pad-to-max.
#
#   src/Microsoft.ML.LoRA.Benchmarks/run-vs-pytorch.sh                 # everything (30-40 minutes on 2 idle cores)
#   CONFIGS="bert-tiny" STEPS=3 REPEATS=1 src/Microsoft.ML.LoRA.Benchmarks/run-vs-pytorch.sh   # a quick look
#
# Environment: CONFIGS (names under ../shared/configs), STEPS (timed steps per run, default 5), REPEATS (rounds of
# the whole comparison, default 2: the report keeps each figure's best round, for both sides alike, because a shared
# machine's load comes and goes), THREADS (2), BATCH (32), SEQ (128), PADDING_CONFIG (all-MiniLM-L6-v2),
# PADDING_SAMPLES (256), LORA_SHARED (../shared), OUT (artifacts/bench: results.jsonl, report.md, chart.png).
# Our library sets two native runtime settings when it loads (NativeRuntimeTuning: OpenMP threads wait passively,
# glibc keeps freed blocks up to 32 MiB); the anchor runs as PyTorch users run it, and once more with the same two
# settings given through the environment (ANCHOR_PASSIVE=0 to skip) so the report shows how much they explain.
# The LoRA/full step ratio is also measured with both kinds of step interleaved in one process (mode step-ratio),
# which keeps the drift between separate processes out of it. Our LoRA training also runs with bf16 matrix products (--precision bf16) and with activation checkpointing. The
# bf16 speed runs need a CPU with native bf16 products (AVX-512 BF16 or AMX): elsewhere libtorch emulates them, ~8x
# slower than fp32 (bert-tiny: 25.8 vs 222 samples/s on a Zen 3), so they are skipped unless BF16=1 (BF16=0 skips
# them everywhere); the bf16 and int8 accuracy check runs on every CPU. Our LoRA runs also time int8 scoring
# (Precision = Int8: int8 weights and activations in the linear layers), reported beside the fp32 inference ratio.
# Without python3-torch only our side runs.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
SHARED="${LORA_SHARED:-$REPO/../shared}"
CONFIGS="${CONFIGS:-bert-tiny all-MiniLM-L6-v2 distilbert-base-uncased}"
STEPS="${STEPS:-5}"
REPEATS="${REPEATS:-2}"
THREADS="${THREADS:-2}"
BATCH="${BATCH:-32}"
SEQ="${SEQ:-128}"
PADDING_CONFIG="${PADDING_CONFIG:-all-MiniLM-L6-v2}"
PADDING_SAMPLES="${PADDING_SAMPLES:-256}"
OUT="${OUT:-$REPO/artifacts/bench}"
ANCHOR_PASSIVE="${ANCHOR_PASSIVE:-1}"
BF16="${BF16:-auto}"
if [ "$BF16" = auto ]; then
  if grep -q -w -E 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null; then BF16=1; else
    BF16=0; echo "!! this CPU has no native bf16 products (AVX-512 BF16 or AMX): skipping the bf16 speed runs (BF16=1 forces them)" >&2
  fi
fi
PY=/usr/bin/python3
TUNED_MALLOC="MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824 MALLOC_TOP_PAD_=67108864"   # = NativeRuntimeTuning
ANCHOR="$SHARED/anchors/torch_lora_bench.py"

mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"

echo "== building the benchmark (Release)" >&2
dotnet build "$HERE/Microsoft.ML.LoRA.Benchmarks.csproj" -c Release -nologo -v q >&2
BENCH="$HERE/bin/Release/net10.0/Microsoft.ML.LoRA.Benchmarks"

HAVE_TORCH=0
if [ -x "$PY" ] && "$PY" -c "import torch" 2>/dev/null && [ -f "$ANCHOR" ]; then
  HAVE_TORCH=1
else
  echo "!! PyTorch (python3-torch) is not installed, so only our side runs. Install the anchor's PyTorch with:" >&2
  echo "!!     apt-get update && apt-get install -y python3-torch libopenblas0-pthread" >&2
fi

ours() { # ours <config name> <mode> [extra args...]: one process, one JSON line
  local name="$1" mode="$2"; shift 2
  echo "-- ours    $name $mode" >&2
  "$BENCH" --config "$SHARED/configs/$name.json" --mode "$mode" --batch "$BATCH" --seq "$SEQ" --steps "$STEPS" \
    --threads "$THREADS" --json "$@" | tee -a "$RESULTS"
}

# The anchor reads BERT's field names; DistilBERT's (dim, n_layers, n_heads, hidden_dim) are translated into a
# temporary BERT-shaped config, so the anchor's DistilBERT carries token-type embeddings and a pooler ours lacks.
anchor_config() {
  local src="$SHARED/configs/$1.json" dst="$OUT/anchor-$1.json"
  "$PY" - "$src" "$dst" <<'PYEOF'
import json, sys
c = json.load(open(sys.argv[1]))
if c.get("model_type") == "distilbert":
    c = {"model_type": "bert", "hidden_size": c["dim"], "num_hidden_layers": c["n_layers"],
         "num_attention_heads": c["n_heads"], "intermediate_size": c["hidden_dim"],
         "max_position_embeddings": c["max_position_embeddings"], "vocab_size": c["vocab_size"], "type_vocab_size": 2}
json.dump(c, open(sys.argv[2], "w"))
PYEOF
  echo "$dst"
}

anchor() { # anchor <config name> <mode> [passive]: the anchor's JSON line, tagged with the config name
  local name="$1" mode="$2" tag="pytorch-eager" policy=""
  if [ "${3:-}" = passive ]; then tag="pytorch-eager-passive"; policy="PASSIVE"; fi
  echo "-- PyTorch $name $mode ${3:-}" >&2
  env ${policy:+OMP_WAIT_POLICY=$policy $TUNED_MALLOC} "$PY" "$ANCHOR" --config "$(anchor_config "$name")" --mode "$mode" \
    --batch "$BATCH" --seq "$SEQ" --steps "$STEPS" --threads "$THREADS" \
    | sed -e "s/^{/{\"config\": \"$name\", /" -e "s/\"anchor\": \"pytorch-eager\"/\"anchor\": \"$tag\"/" | tee -a "$RESULTS"
}

anchor_matmul() { # anchor_matmul [passive]
  local tag="pytorch-eager" policy=""
  if [ "${1:-}" = passive ]; then tag="pytorch-eager-passive"; policy="PASSIVE"; fi
  echo "-- PyTorch matmul ${1:-}" >&2
  env ${policy:+OMP_WAIT_POLICY=$policy $TUNED_MALLOC} "$PY" - "$THREADS" "$tag" <<'PYEOF' | tee -a "$RESULTS"
import json, sys, time, torch
torch.set_num_threads(int(sys.argv[1])); torch.manual_seed(0)
a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
for _ in range(3): a @ b
n, blocks = 20, []
for _ in range(5):  # the fastest of 5 blocks, as ours (MatmulBenchmark.Blocks)
    t = time.perf_counter()
    for _ in range(n): a @ b
    blocks.append((time.perf_counter() - t) / n)
s = min(blocks)
print(json.dumps({"anchor": sys.argv[2], "torch": torch.__version__, "threads": torch.get_num_threads(),
                  "mode": "matmul", "matmul_ms": round(s * 1000, 2), "matmul_gflops": round(2 * 1024**3 / s / 1e9, 2),
                  "matmul_block_ms": " ".join(f"{b * 1000:.2f}" for b in blocks)}))
PYEOF
}

for round in $(seq "$REPEATS"); do
  echo "== round $round of $REPEATS" >&2
  echo "-- ours    matmul" >&2
  "$BENCH" --mode matmul --threads "$THREADS" --steps 20 --json | tee -a "$RESULTS"
  if [ "$HAVE_TORCH" = 1 ]; then anchor_matmul; fi
  if [ "$HAVE_TORCH" = 1 ] && [ "$ANCHOR_PASSIVE" = 1 ]; then anchor_matmul passive; fi

  for name in $CONFIGS; do
    ours "$name" lora
    if [ "$HAVE_TORCH" = 1 ]; then anchor "$name" lora; fi
    ours "$name" full
    if [ "$HAVE_TORCH" = 1 ]; then anchor "$name" full; fi
    ours "$name" step-ratio
    if [ "$HAVE_TORCH" = 1 ] && [ "$ANCHOR_PASSIVE" = 1 ]; then anchor "$name" lora passive; fi
    if [ "$BF16" = 1 ]; then ours "$name" lora --bf16; fi
    ours "$name" lora --checkpointing
    ours "$name" infer-merged
  done

  if [ -f "$SHARED/data/imdb/test.csv.gz" ]; then
    ours "$PADDING_CONFIG" padding --seq 256 --max-length 256 --samples "$PADDING_SAMPLES" \
      --data "$SHARED/data/imdb/test.csv.gz" --vocab "$SHARED/tokenizers/bert-base-uncased/vocab.txt"
  fi
done

if [ -d "$SHARED/fixtures" ]; then
  echo "-- ours    bf16 and int8 accuracy" >&2
  "$BENCH" --mode precision-accuracy --fixtures "$SHARED/fixtures" --config "$SHARED/configs/distilbert-base-uncased.json" \
    --threads "$THREADS" --json | tee -a "$RESULTS"
fi

echo >&2
{
  echo "# Benchmark report ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $THREADS threads, batch $BATCH, seq $SEQ, $STEPS steps, best of $REPEATS rounds)"
  echo
  "$BENCH" --mode report --input "$RESULTS" --output "$OUT/chart.png"
} | tee "$OUT/report.md"
echo "results: $RESULTS, report: $OUT/report.md, chart: $OUT/chart.png" >&2
