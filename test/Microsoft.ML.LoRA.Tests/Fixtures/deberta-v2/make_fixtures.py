#!/usr/bin/python3
"""Tiny DeBERTa-v2 parity fixtures, with reference logits from an independent plain-PyTorch implementation.

No `transformers` here: this file re-implements DebertaV2ForSequenceClassification's forward (inference, no dropout)
by reading transformers/models/deberta_v2/modeling_deberta_v2.py function by function, and PEFT's LoRA Linear forward
(peft/tuners/lora/layer.py, Linear.forward: result = base(x) + lora_B(lora_A(dropout(x))) * scaling). Each function
below names the Hugging Face function it matches. It writes, per variant:

    <variant>/config.json             the config.json a Hugging Face checkpoint carries
    <variant>/model.safetensors       random weights under Hugging Face's tensor names (written by hand, F32)
    <variant>/adapter/                a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors, B nonzero)
    <variant>/cases.json              token ids, attention masks (right padding), logits without and with the adapter
    log_buckets.json                  build_relative_position tables for a few bucket settings (DeBERTa-v3-large's too)

Run from this folder:  /usr/bin/python3 make_fixtures.py   (PyTorch 1.13; deterministic, seeded)
"""
import json
import math
import os
import struct

import torch

HERE = os.path.dirname(os.path.abspath(__file__))


# ----------------------------------------------------------------------------------------------------------------------
# safetensors, by hand: 8-byte little-endian header length, a JSON header (dtype, shape, data_offsets), the raw bytes.
# ----------------------------------------------------------------------------------------------------------------------
def save_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous()
        data = t.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * ((8 - len(raw) % 8) % 8)   # the format pads the header with spaces to a multiple of 8
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


# ----------------------------------------------------------------------------------------------------------------------
# The config as DebertaV2Config and the modules' getattr defaults read it.
# ----------------------------------------------------------------------------------------------------------------------
class Cfg:
    def __init__(self, raw):
        self.raw = raw
        self.hidden = raw["hidden_size"]
        self.layers = raw["num_hidden_layers"]
        self.heads = raw["num_attention_heads"]
        self.intermediate = raw["intermediate_size"]
        self.vocab = raw["vocab_size"]
        self.max_pos = raw.get("max_position_embeddings", 512)
        self.type_vocab = raw.get("type_vocab_size", 0)
        self.eps = raw.get("layer_norm_eps", 1e-7)
        self.act = raw.get("hidden_act", "gelu")
        self.relative_attention = raw.get("relative_attention", False)
        self.position_biased_input = raw.get("position_biased_input", True)
        pat = raw.get("pos_att_type")
        if isinstance(pat, str):   # DebertaV2Config: "Backwards compatibility"
            pat = [x.strip() for x in pat.lower().split("|")]
        self.pos_att_type = pat if pat is not None else []
        self.share_att_key = raw.get("share_att_key", False)
        self.position_buckets = raw.get("position_buckets", -1)
        self.max_relative_positions = raw.get("max_relative_positions", -1)
        if self.max_relative_positions < 1:
            self.max_relative_positions = self.max_pos
        self.norm_rel_ebd = [x.strip() for x in raw.get("norm_rel_ebd", "none").lower().split("|")]
        self.embedding_size = raw.get("embedding_size", self.hidden)
        self.pooler_hidden_act = raw.get("pooler_hidden_act", "gelu")
        self.num_labels = raw["num_labels"]
        # DisentangledSelfAttention.__init__: pos_ebd_size (the attention span att_span)
        self.pos_ebd_size = self.position_buckets if self.position_buckets > 0 else self.max_relative_positions


def act(name, x):
    # transformers.activations.ACT2FN for the names used here
    if name == "gelu":
        return torch.nn.functional.gelu(x)
    if name == "gelu_new":
        return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))
    if name == "relu":
        return torch.relu(x)
    raise ValueError(name)


# ----------------------------------------------------------------------------------------------------------------------
# Random weights under Hugging Face's names (DebertaV2ForSequenceClassification.named_parameters()).
# ----------------------------------------------------------------------------------------------------------------------
def make_weights(c, g):
    w = {}

    def normal(shape, std):
        return torch.randn(*shape, generator=g) * std

    def linear(name, n_in, n_out, bias=True, std=0.15):
        w[name + ".weight"] = normal((n_out, n_in), std)
        if bias:
            w[name + ".bias"] = normal((n_out,), 0.05)

    def layer_norm(name, n):
        w[name + ".weight"] = 1.0 + normal((n,), 0.1)
        w[name + ".bias"] = normal((n,), 0.05)

    e, h = c.embedding_size, c.hidden
    w["deberta.embeddings.word_embeddings.weight"] = normal((c.vocab, e), 0.5)
    if c.position_biased_input:
        w["deberta.embeddings.position_embeddings.weight"] = normal((c.max_pos, e), 0.5)
    if c.type_vocab > 0:
        w["deberta.embeddings.token_type_embeddings.weight"] = normal((c.type_vocab, e), 0.5)
    if e != h:
        linear("deberta.embeddings.embed_proj", e, h, bias=False, std=0.2)
    layer_norm("deberta.embeddings.LayerNorm", h)
    for i in range(c.layers):
        p = f"deberta.encoder.layer.{i}."
        for n in ("query_proj", "key_proj", "value_proj"):
            linear(p + "attention.self." + n, h, h)
        if c.relative_attention and not c.share_att_key:
            if "c2p" in c.pos_att_type:
                linear(p + "attention.self.pos_key_proj", h, h)
            if "p2c" in c.pos_att_type:
                linear(p + "attention.self.pos_query_proj", h, h)
        linear(p + "attention.output.dense", h, h)
        layer_norm(p + "attention.output.LayerNorm", h)
        linear(p + "intermediate.dense", h, c.intermediate)
        linear(p + "output.dense", c.intermediate, h)
        layer_norm(p + "output.LayerNorm", h)
    if c.relative_attention:
        # DebertaV2Encoder.__init__: pos_ebd_size = position_buckets * 2 (or max_relative_positions * 2)
        w["deberta.encoder.rel_embeddings.weight"] = normal((c.pos_ebd_size * 2, h), 0.8)
    if "layer_norm" in c.norm_rel_ebd:
        layer_norm("deberta.encoder.LayerNorm", h)
    linear("pooler.dense", h, h, std=0.2)
    linear("classifier", h, c.num_labels, std=0.3)
    return w


# ----------------------------------------------------------------------------------------------------------------------
# The model, function by function.
# ----------------------------------------------------------------------------------------------------------------------
class Model:
    def __init__(self, c, w, adapter=None):
        self.c, self.w = c, w
        self.adapter = adapter or {}   # module name -> (A [r, in], B [out, r], scaling)

    def linear(self, name, x):
        """nn.Linear, wrapped as PEFT's lora.Linear.forward where the adapter targets the module."""
        y = torch.nn.functional.linear(x, self.w[name + ".weight"], self.w.get(name + ".bias"))
        if name in self.adapter:
            a, b, scaling = self.adapter[name]
            y = y + torch.nn.functional.linear(torch.nn.functional.linear(x, a), b) * scaling   # dropout: identity at eval
        return y

    def layer_norm(self, name, x):
        return torch.nn.functional.layer_norm(x, (x.shape[-1],), self.w[name + ".weight"], self.w[name + ".bias"], self.c.eps)

    # DebertaV2Embeddings.forward
    def embeddings(self, input_ids, token_type_ids, mask):
        c = self.c
        seq_length = input_ids.shape[1]
        position_ids = torch.arange(c.max_pos).expand((1, -1))[:, :seq_length]
        if token_type_ids is None:
            token_type_ids = torch.zeros(input_ids.shape, dtype=torch.long)
        inputs_embeds = torch.nn.functional.embedding(input_ids, self.w["deberta.embeddings.word_embeddings.weight"])
        if c.position_biased_input:
            position_embeddings = torch.nn.functional.embedding(position_ids.long(), self.w["deberta.embeddings.position_embeddings.weight"])
        else:
            position_embeddings = torch.zeros_like(inputs_embeds)
        embeddings = inputs_embeds
        if c.position_biased_input:
            embeddings = embeddings + position_embeddings
        if c.type_vocab > 0:
            embeddings = embeddings + torch.nn.functional.embedding(token_type_ids, self.w["deberta.embeddings.token_type_embeddings.weight"])
        if c.embedding_size != c.hidden:
            embeddings = self.linear("deberta.embeddings.embed_proj", embeddings)
        embeddings = self.layer_norm("deberta.embeddings.LayerNorm", embeddings)
        if mask is not None:
            if mask.dim() != embeddings.dim():
                if mask.dim() == 4:
                    mask = mask.squeeze(1).squeeze(1)
                mask = mask.unsqueeze(2)
            mask = mask.to(embeddings.dtype)
            embeddings = embeddings * mask
        return embeddings   # StableDropout: identity at eval

    # DebertaV2Encoder.get_rel_embedding
    def get_rel_embedding(self):
        rel = self.w["deberta.encoder.rel_embeddings.weight"] if self.c.relative_attention else None
        if rel is not None and "layer_norm" in self.c.norm_rel_ebd:
            rel = self.layer_norm("deberta.encoder.LayerNorm", rel)
        return rel

    # DebertaV2Encoder.get_attention_mask
    @staticmethod
    def get_attention_mask(attention_mask):
        if attention_mask.dim() <= 2:
            extended = attention_mask.unsqueeze(1).unsqueeze(2)
            attention_mask = extended * extended.squeeze(-2).unsqueeze(-1)
            attention_mask = attention_mask.byte()
        elif attention_mask.dim() == 3:
            attention_mask = attention_mask.unsqueeze(1)
        return attention_mask

    @staticmethod
    def transpose_for_scores(x, heads):
        # DisentangledSelfAttention.transpose_for_scores: [b, n, h*d] -> [b*h, n, d]
        new_shape = x.size()[:-1] + (heads, -1)
        x = x.view(new_shape)
        return x.permute(0, 2, 1, 3).contiguous().view(-1, x.size(1), x.size(-1))

    # DisentangledSelfAttention.forward
    def self_attention(self, p, hidden_states, attention_mask, relative_pos, rel_embeddings):
        c, heads = self.c, self.c.heads
        query_layer = self.transpose_for_scores(self.linear(p + "query_proj", hidden_states), heads)
        key_layer = self.transpose_for_scores(self.linear(p + "key_proj", hidden_states), heads)
        value_layer = self.transpose_for_scores(self.linear(p + "value_proj", hidden_states), heads)
        rel_att = None
        scale_factor = 1
        if "c2p" in c.pos_att_type:
            scale_factor += 1
        if "p2c" in c.pos_att_type:
            scale_factor += 1
        scale = torch.sqrt(torch.tensor(query_layer.size(-1), dtype=torch.float) * scale_factor)
        attention_scores = torch.bmm(query_layer, key_layer.transpose(-1, -2)) / scale.to(query_layer.dtype)
        if c.relative_attention:
            rel_att = self.disentangled_attention_bias(p, query_layer, key_layer, relative_pos, rel_embeddings, scale_factor)
        if rel_att is not None:
            attention_scores = attention_scores + rel_att
        attention_scores = attention_scores.view(-1, heads, attention_scores.size(-2), attention_scores.size(-1))
        attention_probs = xsoftmax(attention_scores, attention_mask, -1)   # dropout: identity at eval
        context = torch.bmm(attention_probs.view(-1, attention_probs.size(-2), attention_probs.size(-1)), value_layer)
        context = context.view(-1, heads, context.size(-2), context.size(-1)).permute(0, 2, 1, 3).contiguous()
        return context.view(context.size()[:-2] + (-1,))

    # DisentangledSelfAttention.disentangled_attention_bias
    def disentangled_attention_bias(self, p, query_layer, key_layer, relative_pos, rel_embeddings, scale_factor):
        c, heads = self.c, self.c.heads
        if relative_pos.dim() == 2:
            relative_pos = relative_pos.unsqueeze(0).unsqueeze(0)
        elif relative_pos.dim() == 3:
            relative_pos = relative_pos.unsqueeze(1)
        att_span = c.pos_ebd_size
        relative_pos = relative_pos.long()
        rel_embeddings = rel_embeddings[0:att_span * 2, :].unsqueeze(0)   # pos_dropout: identity at eval
        repeat = query_layer.size(0) // heads
        if c.share_att_key:
            pos_query_layer = self.transpose_for_scores(self.linear(p + "query_proj", rel_embeddings), heads).repeat(repeat, 1, 1)
            pos_key_layer = self.transpose_for_scores(self.linear(p + "key_proj", rel_embeddings), heads).repeat(repeat, 1, 1)
        else:
            if "c2p" in c.pos_att_type:
                pos_key_layer = self.transpose_for_scores(self.linear(p + "pos_key_proj", rel_embeddings), heads).repeat(repeat, 1, 1)
            if "p2c" in c.pos_att_type:
                pos_query_layer = self.transpose_for_scores(self.linear(p + "pos_query_proj", rel_embeddings), heads).repeat(repeat, 1, 1)
        score = 0
        if "c2p" in c.pos_att_type:   # content -> position
            scale = torch.sqrt(torch.tensor(pos_key_layer.size(-1), dtype=torch.float) * scale_factor)
            c2p_att = torch.bmm(query_layer, pos_key_layer.transpose(-1, -2))
            c2p_pos = torch.clamp(relative_pos + att_span, 0, att_span * 2 - 1)
            c2p_att = torch.gather(c2p_att, dim=-1,
                                   index=c2p_pos.squeeze(0).expand([query_layer.size(0), query_layer.size(1), relative_pos.size(-1)]))
            score += c2p_att / scale.to(c2p_att.dtype)
        if "p2c" in c.pos_att_type:   # position -> content (query and key of the same length here)
            scale = torch.sqrt(torch.tensor(pos_query_layer.size(-1), dtype=torch.float) * scale_factor)
            r_pos = relative_pos
            p2c_pos = torch.clamp(-r_pos + att_span, 0, att_span * 2 - 1)
            p2c_att = torch.bmm(key_layer, pos_query_layer.transpose(-1, -2))
            p2c_att = torch.gather(p2c_att, dim=-1,
                                   index=p2c_pos.squeeze(0).expand([query_layer.size(0), key_layer.size(-2), key_layer.size(-2)])).transpose(-1, -2)
            score += p2c_att / scale.to(p2c_att.dtype)
        return score

    # DebertaV2Layer.forward (DebertaV2Attention, DebertaV2SelfOutput, DebertaV2Intermediate, DebertaV2Output)
    def layer(self, i, hidden_states, attention_mask, relative_pos, rel_embeddings):
        p = f"deberta.encoder.layer.{i}."
        self_output = self.self_attention(p + "attention.self.", hidden_states, attention_mask, relative_pos, rel_embeddings)
        attention_output = self.layer_norm(p + "attention.output.LayerNorm", self.linear(p + "attention.output.dense", self_output) + hidden_states)
        intermediate = act(self.c.act, self.linear(p + "intermediate.dense", attention_output))
        return self.layer_norm(p + "output.LayerNorm", self.linear(p + "output.dense", intermediate) + attention_output)

    # DebertaV2Encoder.forward (no conv layer: conv_kernel_size is absent)
    def encoder(self, hidden_states, attention_mask):
        attention_mask = self.get_attention_mask(attention_mask)
        relative_pos = None
        if self.c.relative_attention:   # get_rel_pos
            relative_pos = build_relative_position(hidden_states.size(-2), hidden_states.size(-2),
                                                   self.c.position_buckets, self.c.max_relative_positions)
        rel_embeddings = self.get_rel_embedding()
        output = hidden_states
        for i in range(self.c.layers):
            output = self.layer(i, output, attention_mask, relative_pos, rel_embeddings)
        return output

    # DebertaV2ForSequenceClassification.forward: DebertaV2Model, ContextPooler, dropout (identity), classifier
    def logits(self, input_ids, attention_mask, token_type_ids=None):
        embedding_output = self.embeddings(input_ids, token_type_ids, attention_mask)
        sequence_output = self.encoder(embedding_output, attention_mask)
        context_token = sequence_output[:, 0]                              # ContextPooler.forward
        pooled = act(self.c.pooler_hidden_act, self.linear("pooler.dense", context_token))
        return self.linear("classifier", pooled)


# XSoftmax.forward
def xsoftmax(input, mask, dim):
    rmask = ~(mask.to(torch.bool))
    output = input.masked_fill(rmask, torch.tensor(torch.finfo(input.dtype).min))
    output = torch.softmax(output, dim)
    output.masked_fill_(rmask, 0)
    return output


# make_log_bucket_position
def make_log_bucket_position(relative_pos, bucket_size, max_position):
    sign = torch.sign(relative_pos)
    mid = bucket_size // 2
    abs_pos = torch.where((relative_pos < mid) & (relative_pos > -mid), torch.tensor(mid - 1).type_as(relative_pos), torch.abs(relative_pos))
    log_pos = torch.ceil(torch.log(abs_pos / mid) / torch.log(torch.tensor((max_position - 1) / mid)) * (mid - 1)) + mid
    bucket_pos = torch.where(abs_pos <= mid, relative_pos.type_as(log_pos), log_pos * sign)
    return bucket_pos


# build_relative_position
def build_relative_position(query_size, key_size, bucket_size=-1, max_position=-1):
    q_ids = torch.arange(0, query_size)
    k_ids = torch.arange(0, key_size)
    rel_pos_ids = q_ids[:, None] - k_ids[None, :]
    if bucket_size > 0 and max_position > 0:
        rel_pos_ids = make_log_bucket_position(rel_pos_ids, bucket_size, max_position)
    rel_pos_ids = rel_pos_ids.to(torch.long)
    rel_pos_ids = rel_pos_ids[:query_size, :]
    return rel_pos_ids.unsqueeze(0)


# ----------------------------------------------------------------------------------------------------------------------
# Variants, adapters, cases.
# ----------------------------------------------------------------------------------------------------------------------
VARIANTS = {
    # DeBERTa-v3's shape: relative attention only, log buckets (8 < 16 tokens, so the log part is exercised), shared
    # attention keys, LayerNorm'd relative embeddings, no token types, no absolute positions.
    "v3": {
        "architectures": ["DebertaV2ForSequenceClassification"],
        "model_type": "deberta-v2",
        "hidden_size": 24, "num_hidden_layers": 3, "num_attention_heads": 4, "intermediate_size": 32,
        "hidden_act": "gelu", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 64, "type_vocab_size": 0, "vocab_size": 100, "layer_norm_eps": 1e-7,
        "relative_attention": True, "max_relative_positions": -1, "position_buckets": 8,
        "pos_att_type": ["p2c", "c2p"], "share_att_key": True, "norm_rel_ebd": "layer_norm",
        "position_biased_input": False, "pad_token_id": 0, "pooler_hidden_size": 24, "pooler_dropout": 0,
        "pooler_hidden_act": "gelu", "initializer_range": 0.02, "num_labels": 3,
    },
    # DeBERTa-v2's other switches: separate position projections (pos_key_proj, pos_query_proj), absolute positions
    # added to the input, token types, a narrower embedding with embed_proj, no buckets (relative distances clamped
    # at max_relative_positions = 6 < 16 tokens), no LayerNorm on the relative embeddings, pos_att_type as a string.
    "v2": {
        "architectures": ["DebertaV2ForSequenceClassification"],
        "model_type": "deberta-v2",
        "hidden_size": 24, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 40,
        "hidden_act": "gelu_new", "hidden_dropout_prob": 0.1, "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": 32, "type_vocab_size": 2, "vocab_size": 100, "layer_norm_eps": 1e-7,
        "relative_attention": True, "max_relative_positions": 6, "position_buckets": -1,
        "pos_att_type": "c2p|p2c", "share_att_key": False, "norm_rel_ebd": "none",
        "position_biased_input": True, "embedding_size": 16, "pad_token_id": 0, "pooler_dropout": 0,
        "pooler_hidden_act": "relu", "num_labels": 2,
    },
}

ADAPTER_TARGETS = {
    "v3": ["query_proj", "key_proj", "value_proj", "dense"],
    "v2": ["query_proj", "key_proj", "value_proj", "dense", "pos_key_proj", "pos_query_proj"],
}


EMBEDDING_TABLES = ("word_embeddings", "position_embeddings", "token_type_embeddings", "rel_embeddings")


def linear_modules(w):
    """The nn.Linear modules: every 2-D weight but the embedding tables."""
    return sorted(n[:-len(".weight")] for n in w
                  if n.endswith(".weight") and w[n].dim() == 2 and not any(t in n for t in EMBEDDING_TABLES))


def make_adapter(c, w, targets, g, r=4, alpha=8):
    # PEFT's target_modules list rule: a module is targeted when its name equals an entry or ends with "." + entry.
    # ("dense" also reaches pooler.dense, as in PEFT; "query_proj" does not reach pos_query_proj.)
    adapter = {}
    for name in linear_modules(w):
        if name == "classifier" or not any(name == t or name.endswith("." + t) for t in targets):
            continue
        out_f, in_f = w[name + ".weight"].shape
        a = torch.randn(r, in_f, generator=g) * 0.3
        b = torch.randn(out_f, r, generator=g) * 0.3    # nonzero, as after training
        adapter[name] = (a, b, alpha / r)
    return adapter


def make_cases(c, g, seq=16, lengths=(16, 11, 5, 14, 1)):
    ids, masks, types = [], [], []
    for n in lengths:
        row = [1] + [int(t) for t in torch.randint(4, c.vocab, (n - 1,), generator=g)]   # 1 = a [CLS]-like first token
        ids.append(row + [c.raw.get("pad_token_id", 0)] * (seq - n))
        masks.append([1] * n + [0] * (seq - n))
        split = max(1, n // 2)
        types.append([0] * split + [1] * (n - split) + [0] * (seq - n))
    return ids, masks, types


def write_variant(name, raw, seed):
    g = torch.Generator().manual_seed(seed)
    c = Cfg(raw)
    w = make_weights(c, g)
    folder = os.path.join(HERE, name)
    os.makedirs(os.path.join(folder, "adapter"), exist_ok=True)
    config = dict(raw)
    config["id2label"] = {str(i): f"LABEL_{i}" for i in range(c.num_labels)}
    config["label2id"] = {f"LABEL_{i}": i for i in range(c.num_labels)}
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    save_safetensors(os.path.join(folder, "model.safetensors"), w)

    targets = ADAPTER_TARGETS[name]
    adapter = make_adapter(c, w, targets, g)
    adapter_config = {
        "peft_type": "LORA", "task_type": "SEQ_CLS", "r": 4, "lora_alpha": 8, "lora_dropout": 0.0,
        "target_modules": targets, "bias": "none", "use_rslora": False, "fan_in_fan_out": False,
        "modules_to_save": None, "base_model_name_or_path": None, "init_lora_weights": True, "inference_mode": True,
    }
    with open(os.path.join(folder, "adapter", "adapter_config.json"), "w") as f:
        json.dump(adapter_config, f, indent=2)
    tensors = {}
    for module, (a, b, _) in adapter.items():
        tensors[f"base_model.model.{module}.lora_A.weight"] = a
        tensors[f"base_model.model.{module}.lora_B.weight"] = b
    save_safetensors(os.path.join(folder, "adapter", "adapter_model.safetensors"), tensors)

    ids, masks, types = make_cases(c, g)
    input_ids, attention_mask = torch.tensor(ids), torch.tensor(masks)
    token_type_ids = torch.tensor(types) if c.type_vocab > 0 else None
    with torch.no_grad():
        base = Model(c, w).logits(input_ids, attention_mask, token_type_ids)
        adapted = Model(c, w, adapter).logits(input_ids, attention_mask, token_type_ids)
        # Sanity: the relative-position terms matter (zeroing the relative embeddings changes the logits).
        w0 = dict(w)
        if c.relative_attention:
            w0["deberta.encoder.rel_embeddings.weight"] = torch.zeros_like(w["deberta.encoder.rel_embeddings.weight"])
            if "layer_norm" in c.norm_rel_ebd:
                w0["deberta.encoder.LayerNorm.bias"] = torch.zeros_like(w["deberta.encoder.LayerNorm.bias"])
            without_rel = Model(c, w0).logits(input_ids, attention_mask, token_type_ids)
            print(f"{name}: relative terms move the logits by up to {float((base - without_rel).abs().max()):.4f}")
        print(f"{name}: the adapter moves the logits by up to {float((adapted - base).abs().max()):.4f}; "
              f"adapted modules: {len(adapter)}")
    cases = {
        "family": "deberta-v2",
        "variant": name,
        "input_ids": ids,
        "attention_mask": masks,
    }
    if token_type_ids is not None:
        cases["token_type_ids"] = types
    cases["logits"] = base.tolist()
    cases["logits_with_adapter"] = adapted.tolist()
    cases["tolerance"] = 1e-4
    with open(os.path.join(folder, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)


def write_log_buckets():
    # build_relative_position tables (query x key) for the bucket settings of the fixtures and of DeBERTa-v3-large
    # (position_buckets 256, max_relative_positions -1 -> max_position_embeddings 512), over lengths past the buckets.
    tables = []
    for buckets, max_position, length in ((8, 64, 40), (256, 512, 512), (8, 16, 24)):
        rel = build_relative_position(length, length, buckets, max_position)[0]
        tables.append({"position_buckets": buckets, "max_relative_positions": max_position, "length": length,
                       "relative_positions": rel[0].tolist(),           # query 0 against every key
                       "first_key": rel[:, 0].tolist()})               # every query against key 0
    with open(os.path.join(HERE, "log_buckets.json"), "w") as f:
        json.dump(tables, f, separators=(",", ":"))


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    write_variant("v3", VARIANTS["v3"], seed=11)
    write_variant("v2", VARIANTS["v2"], seed=12)
    write_log_buckets()
