"""Checks `lora` against the real Hugging Face transformers and PEFT, on checkpoints neither side has seen before.

Needs Python with torch, transformers and peft (not needed by the build or CI; the committed fixtures and their
cases.json carry the reference logits there). Two parts:

1. Their files, our logits. For each configuration below (every family, with the config switches that change the
   arithmetic), transformers builds a random model from the config alone and saves it; PEFT wraps it with a LoRA
   adapter of random A and B (and DoRA, rsLoRA, rank/alpha patterns, layers_to_transform, all-linear on some) and
   saves the adapter. transformers and PEFT compute the logits of a few right-padded token rows; `lora logits` must
   give the same within --tolerance, without and with the adapter.

2. Our files, their logits. `lora train` fits bert-tiny-mlm-en briefly on SMS spam with each adapter variant
   (LoRA, DoRA, PiSSA, OLoRA, LoftQ, rank and alpha patterns, layers_to_transform); `lora export-adapter` and
   `lora merge` write PEFT's and transformers' folders. PeftModel.from_pretrained over the untouched base, and
   AutoModelForSequenceClassification over the merged folder, must give the logits `lora logits` gives.

    python3 check_with_transformers.py --lora "dotnet src/Microsoft.ML.LoRA.Cli/bin/Release/net10.0/lora.dll" \
        --shared ../shared --work /tmp/hf-check

3. Tokenizers (with --tokenizer DIR, repeatable; DIR holds config.json and the tokenizer files, as a Hub snapshot
   does): AutoTokenizer.from_pretrained(DIR) and `lora tokenize` on every row of SMS spam and TREC, the first 20,000
   of SST-2 and some hard cases (runs of spaces, newlines, accents, CJK, emoji, special tokens inside the text) must
   give the same ids.

It prints one line per comparison and exits 1 if any differs by more than the tolerance (any id, for tokenizers).
"""

import argparse
import importlib.util
import json
import os
import shlex
import shutil
import subprocess
import sys

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification
from peft import LoraConfig, PeftModel, get_peft_model

SEQ = 12
LENGTHS = [12, 7, 3, 9]

LLAMA = dict(hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
             vocab_size=90, max_position_embeddings=64, rms_norm_eps=1e-6, pad_token_id=0, bos_token_id=1,
             eos_token_id=2, tie_word_embeddings=False)
DEBERTA = dict(hidden_size=24, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4, vocab_size=90,
               max_position_embeddings=64, type_vocab_size=0, relative_attention=True, pad_token_id=0,
               layer_norm_eps=1e-7, pooler_hidden_size=24, pooler_dropout=0.0)
ATTN_LLAMA = ["q_proj", "k_proj", "v_proj", "o_proj"]
MLP_LLAMA = ["gate_proj", "up_proj", "down_proj"]

# (name, model_type, config fields, PEFT LoraConfig fields)
THEIR_FILES = [
    ("llama-default", "llama", dict(LLAMA), dict(target_modules=ATTN_LLAMA + MLP_LLAMA)),
    ("llama-llama3-rope-biases-headdim", "llama",
     dict(LLAMA, head_dim=12, attention_bias=True, mlp_bias=True, rope_theta=50000.0,
          rope_scaling=dict(rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                            original_max_position_embeddings=16)),
     dict(target_modules=["q_proj", "v_proj"], use_dora=True)),
    ("llama-linear-rope-tied", "llama",
     dict(LLAMA, tie_word_embeddings=True, rope_scaling=dict(rope_type="linear", factor=4.0)),
     dict(target_modules="all-linear", use_rslora=True)),
    ("llama-one-kv-head", "llama", dict(LLAMA, num_key_value_heads=1),
     dict(target_modules=ATTN_LLAMA, rank_pattern={"v_proj": 2}, alpha_pattern={"o_proj": 3.0})),
    ("mistral-sliding-window", "mistral", dict(LLAMA, sliding_window=4),
     dict(target_modules=ATTN_LLAMA + MLP_LLAMA, layers_to_transform=[1], layers_pattern="layers")),
    ("qwen2-no-pad-token", "qwen2", dict(LLAMA, pad_token_id=None, tie_word_embeddings=True, rope_theta=1e6),
     dict(target_modules=ATTN_LLAMA + MLP_LLAMA)),
    ("qwen2-sliding-window-upper-layer", "qwen2",
     dict(LLAMA, use_sliding_window=True, sliding_window=4, max_window_layers=1),
     dict(target_modules=["q_proj", "v_proj"])),
    ("qwen2-dora", "qwen2", dict(LLAMA), dict(target_modules=["q_proj", "k_proj", "v_proj"], use_dora=True)),
    ("deberta-v3-shape", "deberta-v2",
     dict(DEBERTA, max_relative_positions=-1, position_buckets=8, pos_att_type=["p2c", "c2p"], share_att_key=True,
          norm_rel_ebd="layer_norm", position_biased_input=False),
     dict(target_modules=["query_proj", "key_proj", "value_proj", "dense"])),
    ("deberta-v2-unshared-keys", "deberta-v2",
     dict(DEBERTA, max_relative_positions=6, position_buckets=-1, pos_att_type="c2p|p2c", share_att_key=False,
          norm_rel_ebd="none", position_biased_input=True, type_vocab_size=2, embedding_size=16, hidden_act="gelu_new",
          pooler_hidden_act="relu"),
     dict(target_modules=["query_proj", "value_proj", "pos_key_proj", "pos_query_proj"], use_dora=True)),
    ("deberta-c2p-only", "deberta-v2",
     dict(DEBERTA, max_relative_positions=-1, position_buckets=4, pos_att_type=["c2p"], share_att_key=True,
          norm_rel_ebd="layer_norm", position_biased_input=False),
     dict(target_modules=["query_proj", "value_proj"], rank_pattern={"query_proj": 2})),
    ("deberta-no-relative", "deberta-v2",
     dict(DEBERTA, relative_attention=False, position_biased_input=True),
     dict(target_modules=["query_proj", "value_proj"])),
    ("bert", "bert", dict(hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
                          vocab_size=90, max_position_embeddings=64, pad_token_id=0),
     dict(target_modules=["query", "value"], use_dora=True)),
    ("distilbert", "distilbert", dict(dim=32, hidden_dim=40, n_layers=2, n_heads=4, vocab_size=90,
                                      max_position_embeddings=64, pad_token_id=0),
     dict(target_modules=["q_lin", "v_lin", "lin1"])),
    ("roberta", "roberta", dict(hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
                                vocab_size=90, max_position_embeddings=70, pad_token_id=1),
     dict(target_modules=["query", "value"], use_rslora=True)),
    ("gpt2", "gpt2", dict(n_embd=32, n_layer=2, n_head=4, vocab_size=90, n_positions=64, pad_token_id=89),
     dict(target_modules=["c_attn"], fan_in_fan_out=True)),
    ("llama-attention-bias-only", "llama", dict(LLAMA, attention_bias=True, head_dim=16),
     dict(target_modules=["q_proj", "o_proj"])),
    ("llama-one-label", "llama", dict(LLAMA), dict(target_modules=["q_proj", "v_proj"])),
    ("mistral-no-window", "mistral", dict(LLAMA, sliding_window=None), dict(target_modules=["q_proj", "v_proj"])),
    ("qwen2-window-unused", "qwen2", dict(LLAMA, use_sliding_window=False, sliding_window=4, tie_word_embeddings=False),
     dict(target_modules=["q_proj", "v_proj"])),
    ("deberta-large-buckets", "deberta-v2",
     dict(DEBERTA, max_relative_positions=512, position_buckets=256, pos_att_type=["p2c", "c2p"], share_att_key=True,
          norm_rel_ebd="layer_norm", position_biased_input=False),
     dict(target_modules=["query_proj", "value_proj"])),
    ("deberta-p2c-biased", "deberta-v2",
     dict(DEBERTA, max_relative_positions=-1, position_buckets=4, pos_att_type=["p2c"], share_att_key=True,
          norm_rel_ebd="layer_norm", position_biased_input=True),
     dict(target_modules=["query_proj", "value_proj"])),
    ("gpt2-inverse-layer-scale", "gpt2",
     dict(n_embd=32, n_layer=2, n_head=4, vocab_size=90, n_positions=64, pad_token_id=89, scale_attn_by_inverse_layer_idx=True),
     dict(target_modules=["c_attn"], fan_in_fan_out=True)),
    ("gpt2-no-scale", "gpt2",
     dict(n_embd=32, n_layer=2, n_head=4, vocab_size=90, n_positions=64, pad_token_id=89, scale_attn_weights=False),
     dict(target_modules=["c_attn"], fan_in_fan_out=True)),
    ("bert-relu", "bert", dict(hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
                               vocab_size=90, max_position_embeddings=64, pad_token_id=0, hidden_act="relu"),
     dict(target_modules=["query", "value"])),
    ("roberta-gelu-new", "roberta", dict(hidden_size=32, intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
                                         vocab_size=90, max_position_embeddings=70, pad_token_id=1, hidden_act="gelu_new"),
     dict(target_modules=["query", "value"])),
    ("distilbert-sinusoidal", "distilbert", dict(dim=32, hidden_dim=40, n_layers=2, n_heads=4, vocab_size=90,
                                                 max_position_embeddings=64, pad_token_id=0, sinusoidal_pos_embds=True),
     dict(target_modules=["q_lin", "v_lin"])),
]

# (name, `lora train` switches) over bert-tiny-mlm-en
OUR_FILES = [
    ("lora", ["--targets", "query,value"]),
    ("dora", ["--targets", "query,value", "--dora"]),
    ("pissa", ["--targets", "query,value", "--init", "pissa"]),
    ("olora", ["--targets", "query,key,value", "--init", "olora"]),
    ("loftq", ["--targets", "query,value", "--init", "loftq", "--loftq-iter", "1"]),
    ("loftq-2-iterations", ["--targets", "query,value", "--init", "loftq", "--loftq-iter", "2"]),
    ("patterns-layers", ["--targets", "query,value,dense", "--rank-pattern", "value=4", "--alpha-pattern",
                         "dense=8", "--layers", "1"]),
    ("all-linear-rslora-free-alpha", ["--targets", "all-linear", "--rank", "4", "--alpha", "4"]),
    ("lora-on-the-head", ["--targets", "query,value", "--lora-head"]),
]


# (family, folder under Fixtures/sentencepiece whose config and tokenizer a random base is made from, switches)
OUR_FAMILY_FILES = [
    ("llama", "llama", ["--targets", "all-linear", "--dora"]),
    ("llama", "llama", ["--targets", "q_proj,v_proj", "--init", "pissa", "--rank-pattern", "v_proj=2", "--layers", "1"]),
    ("deberta-v3", "deberta-v3", ["--targets", "all-linear", "--dora"]),
    ("deberta-v3", "deberta-v3", ["--targets", "query_proj,value_proj", "--init", "olora"]),
]


def randomize(model, seed):
    """Weights large enough that every term moves the logits (the default 0.02 init leaves them near zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias") or p.dim() == 1 and "norm" not in name.lower():
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
            elif p.dim() == 1:
                p.copy_(1 + torch.randn(p.shape, generator=g) * 0.1)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)


def cases_for(config, seed, token_types):
    g = torch.Generator().manual_seed(seed)
    pad = config.pad_token_id if config.pad_token_id is not None else 0
    ids = torch.full((len(LENGTHS), SEQ), pad, dtype=torch.long)
    mask = torch.zeros((len(LENGTHS), SEQ), dtype=torch.long)
    for r, n in enumerate(LENGTHS):
        row = torch.randint(3, config.vocab_size, (n,), generator=g)
        row[row == pad] = 3
        ids[r, :n], mask[r, :n] = row, 1
    case = {"input_ids": ids.tolist(), "attention_mask": mask.tolist()}
    if token_types:
        tt = torch.zeros_like(ids)
        for r, n in enumerate(LENGTHS):
            tt[r, n // 2:n] = 1
        case["token_type_ids"] = tt.tolist()
    return case


def without_lora_updates(peft_model, case):
    """The same PEFT model's logits with every lora_B zeroed: how much the trained factors move the output."""
    saved = {n: p.detach().clone() for n, p in peft_model.named_parameters() if ".lora_B." in n}
    with torch.no_grad():
        for n, p in peft_model.named_parameters():
            if n in saved:
                p.zero_()
        logits = reference_logits(peft_model, case)
        for n, p in peft_model.named_parameters():
            if n in saved:
                p.copy_(saved[n])
    return logits


def reference_logits(model, case):
    """Each row alone on its real tokens (what transformers does without a pad token) and, where the config has
    one, the padded batch: both must agree with the batch `lora logits` scores."""
    ids, mask = torch.tensor(case["input_ids"]), torch.tensor(case["attention_mask"])
    tt = torch.tensor(case["token_type_ids"]) if "token_type_ids" in case else None
    with torch.no_grad():
        rows = []
        for r in range(ids.shape[0]):
            n = int(mask[r].sum())
            kw = dict(input_ids=ids[r:r + 1, :n], attention_mask=mask[r:r + 1, :n])
            if tt is not None:
                kw["token_type_ids"] = tt[r:r + 1, :n]
            rows.append(model(**kw).logits[0])
        alone = torch.stack(rows)
        if model.config.pad_token_id is None:
            return alone
        kw = dict(input_ids=ids, attention_mask=mask)
        if tt is not None:
            kw["token_type_ids"] = tt
        batch = model(**kw).logits
        assert (batch - alone).abs().max() < 1e-5, "transformers' padded batch differs from its rows alone"
        return batch


class Checker:
    def __init__(self, lora, tolerance):
        self.lora, self.tolerance, self.failures, self.lines = lora, tolerance, 0, []

    def our_logits(self, model_dir, cases_path, adapter=None):
        cmd = self.lora + ["logits", "--model", model_dir, "--cases", cases_path]
        if adapter:
            cmd += ["--adapter", adapter]
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            return None, out.stderr.strip().splitlines()[-1] if out.stderr.strip() else f"exit {out.returncode}"
        return torch.tensor(json.loads(out.stdout)), None

    def record(self, ok, line):
        self.failures += 0 if ok else 1
        line = f"{'ok  ' if ok else 'FAIL'}  {line}"
        print(line, flush=True)
        self.lines.append(line)

    def compare(self, label, ours, theirs, error=None):
        if ours is None:
            self.failures += 1
            line = f"FAIL  {label}: lora failed: {error}"
        else:
            d = (ours - theirs).abs().max().item()
            ok = d <= self.tolerance
            self.failures += 0 if ok else 1
            line = f"{'ok  ' if ok else 'FAIL'}  {label}: max |ours - theirs| {d:.2e} (logits up to {theirs.abs().max().item():.2f})"
        print(line, flush=True)
        self.lines.append(line)


def their_files(checker, work):
    for i, (name, model_type, fields, peft_fields) in enumerate(THEIR_FILES):
        folder = os.path.join(work, "theirs", name)
        shutil.rmtree(folder, ignore_errors=True)
        torch.manual_seed(100 + i)
        config = AutoConfig.for_model(model_type, num_labels=1 if "one-label" in name else 3, **fields)
        model = AutoModelForSequenceClassification.from_config(config, attn_implementation="eager").eval()
        randomize(model, 100 + i)
        model.save_pretrained(folder, safe_serialization=True)
        case = cases_for(config, 200 + i, token_types=getattr(config, "type_vocab_size", 0) > 1)
        base = reference_logits(model, case)
        lora = LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=8, lora_dropout=0.0, init_lora_weights=False,
                          **peft_fields)
        peft_model = get_peft_model(model, lora).eval()
        adapted = reference_logits(peft_model, case)
        peft_model.save_pretrained(os.path.join(folder, "adapter"))
        cases_path = os.path.join(folder, "cases.json")
        with open(cases_path, "w") as f:
            json.dump(case, f)
        if (adapted - base).abs().max() < 1e-3:
            raise SystemExit(f"{name}: the adapter does not move the logits; the check would prove nothing")
        ours, err = checker.our_logits(folder, cases_path)
        checker.compare(f"{name} base", ours, base, err)
        ours, err = checker.our_logits(folder, cases_path, os.path.join(folder, "adapter"))
        checker.compare(f"{name} + PEFT adapter ({', '.join(f'{k}={v}' for k, v in peft_fields.items())})",
                        ours, adapted, err)


def family_base(work, family, fixture, seed):
    """A random base of the family with the SentencePiece tokenizer of Fixtures/sentencepiece/<fixture>."""
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sentencepiece", fixture)
    folder = os.path.join(work, "bases", family)
    shutil.rmtree(folder, ignore_errors=True)
    torch.manual_seed(seed)
    config = AutoConfig.from_pretrained(source, num_labels=2)
    model = AutoModelForSequenceClassification.from_config(config, attn_implementation="eager")
    randomize(model, seed)
    model.save_pretrained(folder, safe_serialization=True)
    for name in os.listdir(source):
        if name not in ("config.json", "cases.json"):
            shutil.copy(os.path.join(source, name), folder)
    return folder


def our_files(checker, work, shared):
    bert = os.path.join(shared, "models", "bert-tiny-mlm-en")
    runs = [(f"bert-tiny-mlm-en {name}", bert, switches) for name, switches in OUR_FILES]
    for i, (family, fixture, switches) in enumerate(OUR_FAMILY_FILES):
        base = family_base(work, family, fixture, 300 + i)
        runs.append((f"{family} {' '.join(switches)}", base, switches))
    for label, base_dir, switches in runs:
        our_run(checker, work, shared, label, base_dir, switches)


def our_run(checker, work, shared, name, base_dir, switches):
    data = os.path.join(shared, "data", "sms_spam", "SMSSpamCollection")
    base = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=2, attn_implementation="eager").eval()
    case = cases_for(base.config, 7, token_types=False)
    if "loftq" in switches and importlib.util.find_spec("bitsandbytes") is None:
        print(f"skip  ours {name}: PEFT re-runs LoftQ's quantization when it loads the adapter, which needs bitsandbytes")
        return
    run = os.path.join(work, "ours", name.replace(" ", "_").replace(",", "+"))
    shutil.rmtree(run, ignore_errors=True)
    train = checker.lora + ["train", "--model", base_dir, "--data", data, "--header", "no", "--label-column", "0",
                            "--text-column", "1", "--max-rows", "256", "--epochs", "1", "--batch-size", "32", "--learning-rate", "5e-3", "--dropout", "0", "--warmup", "0",
                            "--max-length", "32", "--output", run] + switches
    out = subprocess.run(train, capture_output=True, text=True)
    if out.returncode != 0:
        checker.compare(f"ours {name}", None, None, "train: " + out.stderr.strip()[-400:])
        return
    adapter, merged = os.path.join(run, "peft-adapter"), os.path.join(run, "merged")
    for cmd in (["export-adapter", "--model", os.path.join(run, "model.zip"), "--output", adapter],
                ["merge", "--model", os.path.join(run, "model.zip"), "--output", merged]):
        out = subprocess.run(checker.lora + cmd, capture_output=True, text=True)
        if out.returncode != 0:
            raise SystemExit(f"{name}: lora {cmd[0]} failed: {out.stderr[-400:]}")
    cases_path = os.path.join(run, "cases.json")
    with open(cases_path, "w") as f:
        json.dump(case, f)
    ours, err = checker.our_logits(merged, cases_path)
    fresh_base = AutoModelForSequenceClassification.from_pretrained(base_dir, num_labels=2, attn_implementation="eager").eval()
    peft_model = PeftModel.from_pretrained(fresh_base, adapter).eval()
    theirs = reference_logits(peft_model, case)
    moved = (theirs - without_lora_updates(peft_model, case)).abs().max().item()
    if moved < 1e-3:
        raise SystemExit(f"{name}: the trained factors move the logits by {moved:.1e} only; the check would prove nothing")
    checker.compare(f"ours {name}: PeftModel.from_pretrained(base, exported adapter) [B·A moves the logits by {moved:.2f}]",
                    ours, theirs, err)
    merged_model = AutoModelForSequenceClassification.from_pretrained(merged, attn_implementation="eager").eval()
    checker.compare(f"ours {name}: from_pretrained(merged folder)", ours, reference_logits(merged_model, case), err)


HARD_TEXTS = [
    "hello world", "  two leading spaces, three   inside and two trailing  ", "tabs\tand\nnewlines\r\nmixed",
    "Numbers: 3.14159, 1,000,000 and 2026-12-06", "Accents: café naïve résumé Ångström façade",
    "Full-width ＡＢＣ１２３ and the ligature ﬁne", "CJK 東京タワー and 한국어", "Emoji 😀👍🏽 and symbols ™ © € £ ¥",
    "ALL CAPS SHOUTING!!! and lower case", "URL http://example.com/a?b=c&d=e and me@example.org", " ", "a",
    "don't won't can't it's", "\u00a0non-breaking\u00a0spaces\u2009thin\u200bzero-width", "x" * 50,
    "Pipes || between | words and arrows>> here << there", "line one\nline two\r\n\tindented",
]


def data_rows(shared):
    rows = []
    with open(os.path.join(shared, "data", "sms_spam", "SMSSpamCollection"), encoding="utf-8", newline="\n") as f:
        rows += [l.rstrip("\n").split("\t", 1)[1] for l in f if "\t" in l]
    with open(os.path.join(shared, "data", "trec", "train_5500.label"), encoding="latin-1", newline="\n") as f:
        rows += [l.rstrip("\n").split(" ", 1)[1] for l in f if " " in l]
    with open(os.path.join(shared, "data", "sst2", "train.tsv"), encoding="utf-8", newline="\n") as f:
        rows += [l.rstrip("\n").split("\t")[0] for l in list(f)[1:20001]]
    return rows


def tokenizers(checker, work, shared, folders):
    from transformers import AutoTokenizer
    texts = data_rows(shared) + HARD_TEXTS
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, "texts.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(texts, f, ensure_ascii=False)
    for folder in folders:
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder)
        except ImportError:  # no `tokenizers` library: the slow (Python) class
            tokenizer = AutoTokenizer.from_pretrained(folder, use_fast=False)
        out = subprocess.run(checker.lora + ["tokenize", "--model", folder, "--texts", path], capture_output=True, text=True)
        label = f"tokenizer {folder} ({type(tokenizer).__name__}, {len(texts)} texts)"
        if out.returncode != 0:
            checker.record(False, f"{label}: lora failed: {out.stderr.strip()[-300:]}")
            continue
        ours = json.loads(out.stdout)
        wrong = [(t, tokenizer(t)["input_ids"], o) for t, o in zip(texts, ours) if tokenizer(t)["input_ids"] != o]
        # transformers gives an empty text no ids; a classifier needs one, so `lora` gives the end-of-text token alone.
        wrong = [w for w in wrong if w[0].strip() or w[1]]
        ties = [w for w in wrong if is_tie(tokenizer, w[1], w[2])]
        wrong = [w for w in wrong if w not in ties]
        detail = "".join(f"\n        {t[:60]!r}: theirs {h[:12]} ours {o[:12]}" for t, h, o in wrong[:3])
        tied = f" (and {len(ties)} exact ties: the same pieces' text, the same total score)" if ties else ""
        checker.record(not wrong, f"{label}: {len(wrong)} differ{tied}{detail}")


def is_tie(tokenizer, theirs, ours):
    """For a SentencePiece Unigram tokenizer (DeBERTa-v3's slow class): two segmentations of the same text whose piece
    scores add up to the same total. SentencePiece's whole-text lattice, summing in float32, breaks such ties one way;
    transformers' fast tokenizer, and `lora`, score word by word in float64 and may break them the other."""
    sp = getattr(tokenizer, "sp_model", None) or getattr(getattr(tokenizer, "_tokenizer", None), "spm", None)
    if sp is None:
        return False
    text = lambda ids: "".join(tokenizer.convert_ids_to_tokens(ids))
    score = lambda ids: sum(sp.get_score(i) for i in ids if i < sp.get_piece_size())
    return text(theirs) == text(ours) and abs(score(theirs) - score(ours)) < 1e-6


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--lora", required=True, help="how to run the CLI, e.g. 'dotnet path/to/lora.dll'")
    p.add_argument("--shared", default=os.path.join("..", "shared"), help="the shared folder (models, data)")
    p.add_argument("--work", default="/tmp/hf-check", help="scratch folder for the generated files")
    p.add_argument("--tolerance", type=float, default=1e-4)
    p.add_argument("--part", choices=["all", "theirs", "ours", "tokenizers"], default="all")
    p.add_argument("--tokenizer", action="append", default=[], help="a folder with config.json and tokenizer files")
    a = p.parse_args()
    checker = Checker(shlex.split(a.lora), a.tolerance)
    import transformers, peft
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}")
    if a.part in ("all", "theirs"):
        their_files(checker, a.work)
    if a.part in ("all", "ours"):
        our_files(checker, a.work, a.shared)
    if a.part in ("all", "tokenizers") and a.tokenizer:
        tokenizers(checker, a.work, a.shared, a.tokenizer)
    print(f"{len(checker.lines) - checker.failures} of {len(checker.lines)} comparisons within {a.tolerance}")
    sys.exit(1 if checker.failures else 0)


if __name__ == "__main__":
    main()
