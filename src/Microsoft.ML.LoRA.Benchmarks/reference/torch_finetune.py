#!/usr/bin/env python3
"""Plain PyTorch reference for docs/quality.md ("Parity with PyTorch"): fine-tunes a BERT sequence classifier from a
Hugging Face folder (config.json, model.safetensors, vocab.txt) with LoRA on query and value, the head only, or in
full, under the same protocol as `lora train`, and prints one JSON line with the test accuracy.

Nothing but torch and numpy: the safetensors header is parsed here, the WordPiece tokenizer (BERT's BasicTokenizer:
cleaning, CJK spacing, lower-casing, accent stripping, punctuation splitting; then greedy longest-match WordPiece with
'##') is written here, and so is the model (Hugging Face's BertForSequenceClassification, module for module).

Protocol (docs/quality.md): AdamW (torch.optim.AdamW, betas 0.9/0.999, eps 1e-8) with the weight decay on parameters
of two or more dimensions only (weight matrices, embedding tables, LoRA factors; not biases or LayerNorm), linear
warm-up over round(warmup x total steps) steps then linear decay to 0 (Hugging Face's get_linear_schedule_with_warmup),
batch 32 drawn in a seeded shuffled order every epoch (the last batch may be short), no gradient clipping, dropout
from config.json in the model, mean cross-entropy, evaluation on the test file after the last epoch. A checkpoint
without a pooler (a masked-LM one) gets a pooler and a classifier created with normal(0, 0.02) weights and zero
biases; both train in every method. LoRA: A Kaiming-uniform (a = sqrt 5), B zero, output += (alpha / r) B A drop(x),
as PEFT.

Run it with the system Python, which has torch (apt's python3-torch). That torch does its matrix products with the
reference BLAS unless libopenblas0-pthread is installed: a TREC-6 run then takes about 15 minutes on 2 cores instead of
one (OMP_WAIT_POLICY=PASSIVE helps too on a shared machine); the accuracies come out the same. parity.sh, beside this
file, runs every comparison of docs/quality.md on both sides.

  # the data files both sides read (JSON Lines with "text" and "label"):
  /usr/bin/python3 src/Microsoft.ML.LoRA.Benchmarks/reference/torch_finetune.py prepare trec \
      --source ../shared/data/trec --out /tmp/parity/trec
  /usr/bin/python3 src/Microsoft.ML.LoRA.Benchmarks/reference/torch_finetune.py prepare sms \
      --source ../shared/data/sms_spam/SMSSpamCollection --out /tmp/parity/sms
  # one fine-tuning run:
  /usr/bin/python3 src/Microsoft.ML.LoRA.Benchmarks/reference/torch_finetune.py train \
      --model ../shared/models/bert-tiny-mlm-en --train /tmp/parity/trec/train.jsonl --test /tmp/parity/trec/test.jsonl \
      --method lora --max-length 64 --batch-size 32 --epochs 3 --learning-rate 1e-3 --seed 1

  prepare trec: train_5500.label -> train.jsonl, TREC_10.label -> test.jsonl; the coarse label (before ':').
  prepare sms:  SMSSpamCollection's first 4,000 rows -> train.jsonl, the other 1,574 -> test.jsonl.
  tokens:       prints the token ids of each line of a file (to compare tokenizers).
"""
import argparse
import json
import math
import os
import random
import struct
import sys
import time
import unicodedata

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------------------------------------------------------------
# Tokenizer: BERT's BasicTokenizer then WordPiece, from vocab.txt.

def _is_whitespace(ch):
    if ch in (" ", "\t", "\n", "\r"):
        return True
    return unicodedata.category(ch) == "Zs"


def _is_control(ch):
    if ch in ("\t", "\n", "\r"):
        return False
    return unicodedata.category(ch) in ("Cc", "Cf")


def _is_punctuation(ch):
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _is_cjk(cp):
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF or 0x2A700 <= cp <= 0x2B73F
            or 0x2B740 <= cp <= 0x2B81F or 0x2B820 <= cp <= 0x2CEAF or 0xF900 <= cp <= 0xFAFF
            or 0x2F800 <= cp <= 0x2FA1F)


class WordPieceTokenizer:
    def __init__(self, vocab_path, lower_case=True, max_chars_per_word=100):
        with open(vocab_path, encoding="utf-8") as f:
            self.vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
        self.lower_case = lower_case
        self.max_chars = max_chars_per_word
        self.cls, self.sep, self.unk = self.vocab["[CLS]"], self.vocab["[SEP]"], self.vocab["[UNK]"]
        self.pad = self.vocab["[PAD]"]

    def _basic(self, text):
        out = []
        for ch in text:   # clean: drop NUL, U+FFFD and control characters; whitespace becomes a space
            cp = ord(ch)
            if cp == 0 or cp == 0xFFFD or _is_control(ch):
                continue
            if _is_cjk(cp):
                out.append(" " + ch + " ")
            elif _is_whitespace(ch):
                out.append(" ")
            else:
                out.append(ch)
        words = []
        for token in "".join(out).split():
            if self.lower_case:
                token = token.lower()
                token = "".join(c for c in unicodedata.normalize("NFD", token) if unicodedata.category(c) != "Mn")
            current = []
            for ch in token:   # punctuation characters become words of their own
                if _is_punctuation(ch):
                    if current:
                        words.append("".join(current))
                        current = []
                    words.append(ch)
                else:
                    current.append(ch)
            if current:
                words.append("".join(current))
        return words

    def _wordpiece(self, word):
        if len(word) > self.max_chars:
            return [self.unk]
        pieces, start = [], 0
        while start < len(word):
            end, found = len(word), None
            while start < end:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    found = self.vocab[piece]
                    break
                end -= 1
            if found is None:
                return [self.unk]
            pieces.append(found)
            start = end
        return pieces

    def encode(self, text, max_length):
        ids = []
        for word in self._basic(text):
            ids.extend(self._wordpiece(word))
            if len(ids) >= max_length - 2:
                break
        return [self.cls] + ids[: max_length - 2] + [self.sep]


# ---------------------------------------------------------------------------------------------------------------------
# Checkpoint: safetensors read by hand.

_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I64": np.int64, "I32": np.int32}


def load_safetensors(path):
    with open(path, "rb") as f:
        (header_size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_size))
        data = f.read()
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] == "BF16":
            begin, end = info["data_offsets"]
            raw = np.frombuffer(data[begin:end], dtype=np.uint16).astype(np.uint32) << 16
            array = raw.view(np.float32)
        else:
            begin, end = info["data_offsets"]
            array = np.frombuffer(data[begin:end], dtype=_DTYPES[info["dtype"]])
        tensors[name] = torch.from_numpy(array.reshape(info["shape"]).astype(np.float32 if array.dtype.kind == "f" else array.dtype))
    return tensors


# ---------------------------------------------------------------------------------------------------------------------
# Model: Hugging Face's BertForSequenceClassification, with optional LoRA on chosen linear layers.

class LoraLinear(nn.Module):
    """nn.Linear whose output may gain (alpha / r) B A dropout(x), as PEFT's lora.Linear."""

    def __init__(self, in_features, out_features):
        super().__init__()
        self.base = nn.Linear(in_features, out_features)
        self.lora_A = self.lora_B = None

    def add_lora(self, r, alpha, dropout):
        self.lora_A = nn.Linear(self.base.in_features, r, bias=False)
        self.lora_B = nn.Linear(r, self.base.out_features, bias=False)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.lora_dropout = nn.Dropout(dropout)
        self.scaling = alpha / r

    def forward(self, x):
        y = self.base(x)
        if self.lora_A is not None:
            y = y + self.lora_B(self.lora_A(self.lora_dropout(x))) * self.scaling
        return y


class BertLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c["hidden_size"]
        self.heads = c["num_attention_heads"]
        self.query, self.key, self.value = LoraLinear(h, h), LoraLinear(h, h), LoraLinear(h, h)
        self.attention_output = nn.Linear(h, h)
        self.attention_norm = nn.LayerNorm(h, eps=c["layer_norm_eps"])
        self.intermediate = nn.Linear(h, c["intermediate_size"])
        self.output = nn.Linear(c["intermediate_size"], h)
        self.output_norm = nn.LayerNorm(h, eps=c["layer_norm_eps"])
        self.hidden_dropout = nn.Dropout(c["hidden_dropout_prob"])
        self.attention_dropout = nn.Dropout(c["attention_probs_dropout_prob"])

    def forward(self, x, additive_mask):
        b, t, h = x.shape
        d = h // self.heads

        def split(z):
            return z.view(b, t, self.heads, d).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d) + additive_mask
        probs = self.attention_dropout(scores.softmax(-1))
        context = (probs @ v).transpose(1, 2).reshape(b, t, h)
        x = self.attention_norm(self.hidden_dropout(self.attention_output(context)) + x)
        up = F.gelu(self.intermediate(x))
        return self.output_norm(self.hidden_dropout(self.output(up)) + x)


class BertClassifier(nn.Module):
    def __init__(self, c, num_labels):
        super().__init__()
        h = c["hidden_size"]
        assert c.get("hidden_act", "gelu") == "gelu" and c.get("position_embedding_type", "absolute") == "absolute"
        self.word_embeddings = nn.Embedding(c["vocab_size"], h, padding_idx=c.get("pad_token_id", 0))
        self.position_embeddings = nn.Embedding(c["max_position_embeddings"], h)
        self.token_type_embeddings = nn.Embedding(c["type_vocab_size"], h)
        self.embeddings_norm = nn.LayerNorm(h, eps=c["layer_norm_eps"])
        self.embeddings_dropout = nn.Dropout(c["hidden_dropout_prob"])
        self.layers = nn.ModuleList(BertLayer(c) for _ in range(c["num_hidden_layers"]))
        self.pooler = nn.Linear(h, h)
        dropout = c.get("classifier_dropout")
        self.classifier_dropout = nn.Dropout(c["hidden_dropout_prob"] if dropout is None else dropout)
        self.classifier = nn.Linear(h, num_labels)

    def forward(self, ids, mask):
        t = ids.shape[1]
        positions = torch.arange(t).unsqueeze(0)
        x = self.word_embeddings(ids) + self.position_embeddings(positions) + self.token_type_embeddings(torch.zeros_like(ids))
        x = self.embeddings_dropout(self.embeddings_norm(x))
        additive = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        for layer in self.layers:
            x = layer(x, additive)
        pooled = torch.tanh(self.pooler(x[:, 0]))
        return self.classifier(self.classifier_dropout(pooled))

    # Hugging Face's names -> this module's.
    def load_checkpoint(self, tensors, std):
        names = {
            "bert.embeddings.word_embeddings.weight": "word_embeddings.weight",
            "bert.embeddings.position_embeddings.weight": "position_embeddings.weight",
            "bert.embeddings.token_type_embeddings.weight": "token_type_embeddings.weight",
            "bert.embeddings.LayerNorm.weight": "embeddings_norm.weight",
            "bert.embeddings.LayerNorm.bias": "embeddings_norm.bias",
            "bert.pooler.dense.weight": "pooler.weight",
            "bert.pooler.dense.bias": "pooler.bias",
            "classifier.weight": "classifier.weight",
            "classifier.bias": "classifier.bias",
        }
        for i in range(len(self.layers)):
            hf, me = f"bert.encoder.layer.{i}.", f"layers.{i}."
            for part, mine in [("attention.self.query", "query.base"), ("attention.self.key", "key.base"),
                               ("attention.self.value", "value.base"), ("attention.output.dense", "attention_output"),
                               ("attention.output.LayerNorm", "attention_norm"), ("intermediate.dense", "intermediate"),
                               ("output.dense", "output"), ("output.LayerNorm", "output_norm")]:
                for p in ("weight", "bias"):
                    names[f"{hf}{part}.{p}"] = f"{me}{mine}.{p}"
        own = dict(self.named_parameters())
        loaded = set()
        for name, tensor in tensors.items():
            key = name if name.startswith(("bert.", "classifier.")) else "bert." + name
            if key in names:
                with torch.no_grad():
                    own[names[key]].copy_(tensor)
                loaded.add(names[key])
        created = []
        for module in ("pooler", "classifier"):   # absent from a masked-LM checkpoint: created as Hugging Face does
            if f"{module}.weight" not in loaded:
                with torch.no_grad():
                    getattr(self, module).weight.normal_(0.0, std)
                    getattr(self, module).bias.zero_()
                created.append(module)
        missing = [n for n in own if n not in loaded and not n.startswith(tuple(created))]
        if missing:
            raise SystemExit(f"not in the checkpoint: {missing}")
        return created


# ---------------------------------------------------------------------------------------------------------------------
# Data.

def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [r["text"] for r in rows], [str(r["label"]) for r in rows]


def write_jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for text, label in rows:
            f.write(json.dumps({"text": text, "label": label}, ensure_ascii=False) + "\n")


def prepare(args):
    os.makedirs(args.out, exist_ok=True)
    if args.dataset == "trec":
        def read(name):
            rows = []
            with open(os.path.join(args.source, name), encoding="latin-1") as f:
                for line in f:
                    line = line.rstrip("\r\n")
                    if not line:
                        continue
                    first, _, question = line.partition(" ")
                    rows.append((question, first.split(":", 1)[0]))
            return rows
        train, test = read("train_5500.label"), read("TREC_10.label")
    else:
        rows = []
        with open(args.source, encoding="utf-8") as f:
            for line in f:
                line = line.rstrip("\r\n")
                if line:
                    label, text = line.split("\t", 1)
                    rows.append((text, label))
        train, test = rows[: args.train_rows], rows[args.train_rows:]
    write_jsonl(os.path.join(args.out, "train.jsonl"), train)
    write_jsonl(os.path.join(args.out, "test.jsonl"), test)
    print(json.dumps({"train": len(train), "test": len(test), "out": args.out}))


def batches_of(encoded, order, batch_size, pad):
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        width = max(len(encoded[i]) for i in index)
        ids = torch.full((len(index), width), pad, dtype=torch.long)
        mask = torch.zeros((len(index), width), dtype=torch.long)
        for row, i in enumerate(index):
            ids[row, :len(encoded[i])] = torch.tensor(encoded[i])
            mask[row, :len(encoded[i])] = 1
        yield index, ids, mask


# ---------------------------------------------------------------------------------------------------------------------
# Training.

def train(args):
    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    clock = time.time()

    with open(os.path.join(args.model, "config.json")) as f:
        config = json.load(f)
    tokenizer = WordPieceTokenizer(os.path.join(args.model, "vocab.txt"))
    train_texts, train_labels = read_jsonl(args.train)
    test_texts, test_labels = read_jsonl(args.test)
    labels = sorted(set(train_labels))
    label_index = {label: i for i, label in enumerate(labels)}
    train_x = [tokenizer.encode(t, args.max_length) for t in train_texts]
    test_x = [tokenizer.encode(t, args.max_length) for t in test_texts]
    train_y = torch.tensor([label_index[l] for l in train_labels])
    test_y = [label_index.get(l, -1) for l in test_labels]

    model = BertClassifier(config, len(labels))
    created = model.load_checkpoint(load_safetensors(os.path.join(args.model, "model.safetensors")),
                                    config.get("initializer_range", 0.02))
    for p in model.parameters():
        p.requires_grad_(args.method == "full")
    if args.method == "lora":
        for layer in model.layers:
            for target in (layer.query, layer.value):
                target.add_lora(args.rank, args.alpha, args.dropout)
    for module in (model.pooler, model.classifier):   # the head (created pooler included) trains in every method
        for p in module.parameters():
            p.requires_grad_(True)
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]

    decay = [p for _, p in trainable if p.dim() >= 2]
    no_decay = [p for _, p in trainable if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}],
                                  lr=args.learning_rate, betas=(0.9, 0.999), eps=1e-8)
    steps_per_epoch = math.ceil(len(train_x) / args.batch_size)
    total = steps_per_epoch * args.epochs
    warmup = int(round(args.warmup * total))

    def rate(step):   # Hugging Face's get_linear_schedule_with_warmup
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    shuffle = np.random.RandomState(args.seed)

    epoch_losses = []
    for epoch in range(args.epochs):
        model.train()
        order = shuffle.permutation(len(train_x)).tolist()
        loss_sum = 0.0
        for index, ids, mask in batches_of(train_x, order, args.batch_size, tokenizer.pad):
            loss = F.cross_entropy(model(ids, mask), train_y[index])
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss_sum += loss.item() * len(index)
        epoch_losses.append(loss_sum / len(train_x))

    model.eval()
    correct = 0
    with torch.no_grad():
        for index, ids, mask in batches_of(test_x, list(range(len(test_x))), 128, tokenizer.pad):
            predicted = model(ids, mask).argmax(-1).tolist()
            correct += sum(int(p == test_y[i]) for p, i in zip(predicted, index))
    print(json.dumps({
        "method": args.method, "seed": args.seed, "accuracy": correct / len(test_x),
        "train_rows": len(train_x), "test_rows": len(test_x), "labels": labels, "created": created,
        "trainable_parameters": sum(p.numel() for _, p in trainable), "steps": total, "warmup_steps": warmup,
        "train_loss": [round(l, 5) for l in epoch_losses], "seconds": round(time.time() - clock, 1),
    }))


def tokens(args):
    tokenizer = WordPieceTokenizer(os.path.join(args.model, "vocab.txt"))
    texts, _ = read_jsonl(args.file)
    for text in texts[: args.rows]:
        print(json.dumps(tokenizer.encode(text, args.max_length)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)

    p = commands.add_parser("train", help="fine-tune and print the test accuracy as one JSON line")
    p.add_argument("--model", required=True, help="Hugging Face folder: config.json, model.safetensors, vocab.txt")
    p.add_argument("--train", required=True, help="JSON Lines with text and label")
    p.add_argument("--test", required=True, help="JSON Lines with text and label")
    p.add_argument("--method", choices=["lora", "head", "full"], default="lora")
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--warmup", type=float, default=0.06, help="share of the steps spent warming up")
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--alpha", type=float, default=16)
    p.add_argument("--dropout", type=float, default=0.05, help="LoRA dropout")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.set_defaults(run=train)

    p = commands.add_parser("prepare", help="write train.jsonl and test.jsonl for TREC-6 or SMS spam")
    p.add_argument("dataset", choices=["trec", "sms"])
    p.add_argument("--source", required=True, help="trec: the folder of the .label files; sms: SMSSpamCollection")
    p.add_argument("--out", required=True)
    p.add_argument("--train-rows", type=int, default=4000, help="sms: the first N rows train, the rest test")
    p.set_defaults(run=prepare)

    p = commands.add_parser("tokens", help="print the token ids of the first rows of a JSON Lines file")
    p.add_argument("--model", required=True)
    p.add_argument("--file", required=True)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--rows", type=int, default=20)
    p.set_defaults(run=tokens)

    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    sys.exit(main())
