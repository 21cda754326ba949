"""Parity fixtures for the LLaMA family (model_type llama, mistral, qwen2).

Writes, for each variant, a tiny random checkpoint in Hugging Face layout (config.json, model.safetensors with HF
tensor names), a PEFT LoRA adapter (adapter/adapter_config.json, adapter/adapter_model.safetensors) and cases.json:
token ids, attention masks (right padding included) and the reference logits without and with the adapter.

The reference is an independent plain-PyTorch implementation of the Hugging Face forward pass, written from
transformers' modeling_llama.py, modeling_mistral.py, modeling_qwen2.py and modeling_rope_utils.py; each function
names the HF function it matches. No transformers or peft is needed (neither is installed here):

    /usr/bin/python3 make_fixtures.py        # torch 1.13; run in this folder

Everything is float32 and seeded, so a rerun writes the same files.
"""

import json
import math
import os
import struct

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
SEQ = 12
# Real lengths of the four cases: one full row, three right-padded (HF pads classification batches on the right).
LENGTHS = [12, 7, 3, 9]
LORA_R, LORA_ALPHA = 4, 8
TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


# ----------------------------------------------------------------------------------------------------------------
# The model, as Hugging Face computes it


def rms_norm(x, weight, eps):
    """LlamaRMSNorm.forward (also MistralRMSNorm, Qwen2RMSNorm)."""
    input_dtype = x.dtype
    x = x.to(torch.float32)
    variance = x.pow(2).mean(-1, keepdim=True)
    x = x * torch.rsqrt(variance + eps)
    return weight * x.to(input_dtype)


def head_dim_of(cfg):
    """LlamaAttention.__init__: getattr(config, "head_dim", hidden_size // num_attention_heads)."""
    return cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]


def inverse_frequencies(cfg):
    """ROPE_INIT_FUNCTIONS[rope_type](config): _compute_default_rope_parameters, then the scaling of
    _compute_linear_scaling_rope_parameters or _compute_llama3_parameters."""
    base = cfg.get("rope_theta", 10000.0)
    dim = head_dim_of(cfg)
    inv_freq = 1.0 / (base ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
    scaling = cfg.get("rope_scaling")
    rope_type = "default" if scaling is None else scaling.get("rope_type", scaling.get("type"))
    if rope_type == "default":
        return inv_freq
    if rope_type == "linear":
        return inv_freq / scaling["factor"]
    if rope_type == "llama3":
        factor = scaling["factor"]
        low_freq_factor = scaling["low_freq_factor"]
        high_freq_factor = scaling["high_freq_factor"]
        old_context_len = scaling["original_max_position_embeddings"]
        low_freq_wavelen = old_context_len / low_freq_factor
        high_freq_wavelen = old_context_len / high_freq_factor
        wavelen = 2 * math.pi / inv_freq
        inv_freq_llama = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
        smooth_factor = (old_context_len / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor)
        smoothed_inv_freq = (1 - smooth_factor) * inv_freq_llama / factor + smooth_factor * inv_freq_llama
        is_medium_freq = ~(wavelen < high_freq_wavelen) * ~(wavelen > low_freq_wavelen)
        return torch.where(is_medium_freq, smoothed_inv_freq, inv_freq_llama)
    raise ValueError(rope_type)


def rotary_cos_sin(inv_freq, position_ids):
    """LlamaRotaryEmbedding.forward (attention_scaling is 1 for default, linear and llama3)."""
    inv_freq_expanded = inv_freq[None, :, None].float().expand(position_ids.shape[0], -1, 1)
    position_ids_expanded = position_ids[:, None, :].float()
    freqs = (inv_freq_expanded.float() @ position_ids_expanded.float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    """rotate_half."""
    x1 = x[..., : x.shape[-1] // 2]
    x2 = x[..., x.shape[-1] // 2:]
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(q, k, cos, sin, unsqueeze_dim=1):
    """apply_rotary_pos_emb."""
    cos = cos.unsqueeze(unsqueeze_dim)
    sin = sin.unsqueeze(unsqueeze_dim)
    return (q * cos) + (rotate_half(q) * sin), (k * cos) + (rotate_half(k) * sin)


def repeat_kv(hidden_states, n_rep):
    """repeat_kv."""
    batch, num_key_value_heads, slen, head_dim = hidden_states.shape
    if n_rep == 1:
        return hidden_states
    hidden_states = hidden_states[:, :, None, :, :].expand(batch, num_key_value_heads, n_rep, slen, head_dim)
    return hidden_states.reshape(batch, num_key_value_heads * n_rep, slen, head_dim)


def causal_mask(attention_mask, sequence_length, sliding_window):
    """MistralModel._prepare_4d_causal_attention_mask_with_cache_position (LlamaModel's is the same without the
    sliding window): an additive float mask, min_dtype where a query may not see a key (future keys, keys that are
    sliding_window or more positions back, padding keys), 0 elsewhere. No cache: cache_position = 0 .. seq-1."""
    dtype = torch.float32
    min_dtype = torch.finfo(dtype).min
    target_length = attention_mask.shape[-1]
    cache_position = torch.arange(sequence_length)
    mask = torch.full((sequence_length, target_length), fill_value=min_dtype, dtype=dtype)
    diagonal_attend_mask = torch.arange(target_length) > cache_position.reshape(-1, 1)
    if sliding_window is not None:
        sliding_attend_mask = torch.arange(target_length) <= (cache_position.reshape(-1, 1) - sliding_window)
        diagonal_attend_mask.bitwise_or_(sliding_attend_mask)
    mask *= diagonal_attend_mask
    mask = mask[None, None, :, :].expand(attention_mask.shape[0], 1, -1, -1).clone()
    padding_mask = mask[:, :, :, :target_length] + attention_mask[:, None, None, :]
    padding_mask = padding_mask == 0
    mask[:, :, :, :target_length] = mask[:, :, :, :target_length].masked_fill(padding_mask, min_dtype)
    return mask


def biases(cfg):
    """Which projections have a bias, per module class: LlamaAttention (attention_bias, on q/k/v/o) and LlamaMLP
    (mlp_bias); Qwen2Attention (q/k/v always, o_proj never; no MLP bias); Mistral none."""
    llama = cfg["model_type"] == "llama"
    attention_bias = llama and cfg.get("attention_bias", False)
    return {"q_proj": attention_bias or cfg["model_type"] == "qwen2", "k_proj": attention_bias or cfg["model_type"] == "qwen2",
            "v_proj": attention_bias or cfg["model_type"] == "qwen2", "o_proj": attention_bias,
            "gate_proj": llama and cfg.get("mlp_bias", False), "up_proj": llama and cfg.get("mlp_bias", False),
            "down_proj": llama and cfg.get("mlp_bias", False)}


def linear(cfg, x, weights, name, adapter):
    """nn.Linear (bias as the module class has one), with PEFT's LoRA Linear.forward where the adapter holds the
    module: result + lora_B(lora_A(dropout(x))) * scaling, scaling = lora_alpha / r, dropout 0."""
    bias = weights[name + ".bias"] if biases(cfg)[name.split(".")[-1]] else None
    y = F.linear(x, weights[name + ".weight"], bias)
    if adapter is not None and name + ".lora_A.weight" in adapter:
        a, b = adapter[name + ".lora_A.weight"], adapter[name + ".lora_B.weight"]
        y = y + F.linear(F.linear(x, a), b) * (LORA_ALPHA / LORA_R)
    return y


def attention(cfg, w, adapter, prefix, hidden_states, cos, sin, mask):
    """LlamaAttention.forward with eager_attention_forward (Mistral's and Qwen2's are the same modules)."""
    bsz, q_len, _ = hidden_states.shape
    head_dim = head_dim_of(cfg)
    groups = cfg["num_attention_heads"] // cfg["num_key_value_heads"]
    hidden_shape = (bsz, q_len, -1, head_dim)
    q = linear(cfg, hidden_states, w, prefix + ".q_proj", adapter).view(hidden_shape).transpose(1, 2)
    k = linear(cfg, hidden_states, w, prefix + ".k_proj", adapter).view(hidden_shape).transpose(1, 2)
    v = linear(cfg, hidden_states, w, prefix + ".v_proj", adapter).view(hidden_shape).transpose(1, 2)
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    k = repeat_kv(k, groups)
    v = repeat_kv(v, groups)
    scores = torch.matmul(q, k.transpose(2, 3)) * head_dim ** -0.5
    scores = scores + mask[:, :, :, : k.shape[-2]]
    probs = F.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    out = torch.matmul(probs, v).transpose(1, 2).contiguous().reshape(bsz, q_len, -1)
    return linear(cfg, out, w, prefix + ".o_proj", adapter)


def mlp(cfg, w, adapter, prefix, x):
    """LlamaMLP.forward: down_proj(act_fn(gate_proj(x)) * up_proj(x)), act_fn = ACT2FN["silu"]."""
    gate = linear(cfg, x, w, prefix + ".gate_proj", adapter)
    up = linear(cfg, x, w, prefix + ".up_proj", adapter)
    return linear(cfg, F.silu(gate) * up, w, prefix + ".down_proj", adapter)


def sliding_window_of(cfg):
    """The window every layer uses: MistralConfig.sliding_window; Qwen2 only with use_sliding_window (these
    fixtures leave it off); LlamaModel has none."""
    if cfg["model_type"] == "mistral":
        return cfg.get("sliding_window", 4096)
    return None


def sequence_classification_logits(cfg, w, adapter, input_ids, attention_mask):
    """LlamaForSequenceClassification.forward over LlamaModel.forward (LlamaDecoderLayer.forward per layer)."""
    eps = cfg["rms_norm_eps"]
    hidden = w["model.embed_tokens.weight"][input_ids]
    position_ids = torch.arange(input_ids.shape[1]).unsqueeze(0)        # cache_position.unsqueeze(0)
    mask = causal_mask(attention_mask, input_ids.shape[1], sliding_window_of(cfg))
    cos, sin = rotary_cos_sin(inverse_frequencies(cfg), position_ids)
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d" % i
        residual = hidden
        h = rms_norm(hidden, w[p + ".input_layernorm.weight"], eps)
        hidden = residual + attention(cfg, w, adapter, p + ".self_attn", h, cos, sin, mask)
        residual = hidden
        h = rms_norm(hidden, w[p + ".post_attention_layernorm.weight"], eps)
        hidden = residual + mlp(cfg, w, adapter, p + ".mlp", h)
    hidden = rms_norm(hidden, w["model.norm.weight"], eps)
    logits = F.linear(hidden, w["score.weight"])
    batch_size = input_ids.shape[0]
    pad = cfg.get("pad_token_id")
    if pad is None and batch_size != 1:
        raise ValueError("Cannot handle batch sizes > 1 if no padding token is defined.")
    if pad is None:
        last_non_pad_token = -1
    else:
        non_pad_mask = (input_ids != pad).to(torch.int32)
        token_indices = torch.arange(input_ids.shape[-1])
        last_non_pad_token = (token_indices * non_pad_mask).argmax(-1)
    return logits[torch.arange(batch_size), last_non_pad_token]


def reference_logits(cfg, w, adapter, ids, masks):
    """The classifier's logits for the cases. Without pad_token_id Hugging Face takes batches of one only, so each
    case then runs alone on its real tokens (what a right-padded row computes under causal attention)."""
    if cfg.get("pad_token_id") is not None:
        return sequence_classification_logits(cfg, w, adapter, ids, masks)
    rows = []
    for i, n in enumerate(LENGTHS):
        rows.append(sequence_classification_logits(cfg, w, adapter, ids[i:i + 1, :n], masks[i:i + 1, :n])[0])
    return torch.stack(rows)


# ----------------------------------------------------------------------------------------------------------------
# Files


def write_safetensors(path, tensors):
    """The safetensors format by hand: 8-byte little-endian header length, the JSON header (dtype, shape,
    data_offsets per tensor, padded with spaces to a multiple of 8), then the raw little-endian bytes."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        t = tensors[name].detach().to(torch.float32).contiguous()
        data = t.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for data in blobs:
            f.write(data)


def write_json(path, value):
    with open(path, "w") as f:
        json.dump(value, f, indent=1)
        f.write("\n")


def random_weights(cfg, labels, generator, extra_names=()):
    """HF tensor names and shapes of LlamaForSequenceClassification; values drawn large enough that every part
    moves the logits (HF's initializer_range 0.02 would leave them near zero)."""
    hidden, inter = cfg["hidden_size"], cfg["intermediate_size"]
    heads, kv, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], head_dim_of(cfg)
    has_bias = biases(cfg)

    def normal(*shape, std):
        return torch.randn(*shape, generator=generator) * std

    w = {"model.embed_tokens.weight": normal(cfg["vocab_size"], hidden, std=1.0)}
    for i in range(cfg["num_hidden_layers"]):
        p = "model.layers.%d" % i
        w[p + ".input_layernorm.weight"] = 1 + normal(hidden, std=0.1)
        w[p + ".post_attention_layernorm.weight"] = 1 + normal(hidden, std=0.1)
        shapes = {
            "self_attn.q_proj": (heads * hd, hidden),
            "self_attn.k_proj": (kv * hd, hidden),
            "self_attn.v_proj": (kv * hd, hidden),
            "self_attn.o_proj": (hidden, heads * hd),
            "mlp.gate_proj": (inter, hidden),
            "mlp.up_proj": (inter, hidden),
            "mlp.down_proj": (hidden, inter),
        }
        for name, (out, inp) in shapes.items():
            w["%s.%s.weight" % (p, name)] = normal(out, inp, std=inp ** -0.5)
            if has_bias[name.split(".")[-1]]:
                w["%s.%s.bias" % (p, name)] = normal(out, std=0.3)
    w["model.norm.weight"] = 1 + normal(hidden, std=0.1)
    w["score.weight"] = normal(labels, hidden, std=0.5)
    for name, shape in extra_names:
        w[name] = normal(*shape, std=1.0)
    return w


def random_adapter(cfg, w, generator):
    """A trained-looking PEFT adapter on every linear layer of the decoder: A and B both nonzero."""
    adapter = {}
    for name, t in w.items():
        module = name[: -len(".weight")]
        if name.endswith(".weight") and module.split(".")[-1] in TARGETS:
            out, inp = t.shape
            adapter[module + ".lora_A.weight"] = torch.randn(LORA_R, inp, generator=generator) * inp ** -0.5
            adapter[module + ".lora_B.weight"] = torch.randn(out, LORA_R, generator=generator) * 0.2
    return adapter


def cases(cfg, generator):
    """Token ids (real tokens never equal the pad token, so HF's pad search and our attention mask agree) and masks."""
    pad = cfg.get("pad_token_id")
    fill = pad if pad is not None else 1
    ids = torch.full((len(LENGTHS), SEQ), fill, dtype=torch.int64)
    masks = torch.zeros((len(LENGTHS), SEQ), dtype=torch.int64)
    for i, n in enumerate(LENGTHS):
        ids[i, :n] = torch.randint(3, cfg["vocab_size"], (n,), generator=generator)
        masks[i, :n] = 1
    return ids, masks


def max_diff(a, b):
    return (a - b).abs().max().item()


def make(variant, cfg, labels, seed, extra_names=(), checks=()):
    folder = os.path.join(HERE, variant)
    os.makedirs(os.path.join(folder, "adapter"), exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    w = random_weights(cfg, labels, g, extra_names)
    adapter = random_adapter(cfg, w, g)
    ids, masks = cases(cfg, g)
    with torch.no_grad():
        base = reference_logits(cfg, w, None, ids, masks)
        adapted = reference_logits(cfg, w, adapter, ids, masks)
        # Each fixture must exercise what it is for: the feature changes the logits well beyond the tolerance.
        assert max_diff(base, adapted) > 1e-2, "the adapter must change the logits"
        for description, other_cfg in checks:
            other = reference_logits(other_cfg, w, None, ids, masks)
            assert max_diff(base, other) > 1e-3, description + " must change the logits"
            print("  %s: logits move by %.4f" % (description, max_diff(base, other)))

    config = dict(cfg)
    config["architectures"] = [{"llama": "Llama", "mistral": "Mistral", "qwen2": "Qwen2"}[cfg["model_type"]] + "ForSequenceClassification"]
    config["num_labels"] = labels
    config["id2label"] = {str(i): "LABEL_%d" % i for i in range(labels)}
    config["label2id"] = {"LABEL_%d" % i: i for i in range(labels)}
    write_json(os.path.join(folder, "config.json"), config)
    write_safetensors(os.path.join(folder, "model.safetensors"), w)
    write_json(os.path.join(folder, "adapter", "adapter_config.json"), {
        "peft_type": "LORA", "task_type": "SEQ_CLS", "r": LORA_R, "lora_alpha": LORA_ALPHA, "lora_dropout": 0.0,
        "target_modules": TARGETS, "bias": "none", "use_rslora": False, "fan_in_fan_out": False,
        "modules_to_save": None, "base_model_name_or_path": None, "init_lora_weights": True, "inference_mode": True,
    })
    write_safetensors(os.path.join(folder, "adapter", "adapter_model.safetensors"),
                      {"base_model.model." + k: v for k, v in adapter.items()})
    write_json(os.path.join(folder, "cases.json"), {
        "family": cfg["model_type"],
        "input_ids": ids.tolist(),
        "attention_mask": masks.tolist(),
        "logits": base.tolist(),
        "logits_with_adapter": adapted.tolist(),
        "tolerance": 1e-4,
    })
    for root, _, files in os.walk(folder):
        for f in files:
            size = os.path.getsize(os.path.join(root, f))
            assert size < 90_000, "%s is %d bytes" % (f, size)
    print("%s: written (%s)" % (variant, ", ".join(
        "%s %d B" % (f, os.path.getsize(os.path.join(folder, f))) for f in ("model.safetensors", "cases.json"))))


def without(cfg, **changes):
    other = dict(cfg)
    for key, value in changes.items():
        if value is None:
            other.pop(key, None)
        else:
            other[key] = value
    return other


def main():
    common = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
              "hidden_act": "silu", "rms_norm_eps": 1e-5, "initializer_range": 0.02}

    # LLaMA 3.1-style: llama3 rope scaling with a frequency in each of its bands (head_dim 8: wavelengths 6.3, 63, 628
    # and 6283 positions; with original 128 the first is below 128 / high 4 = 32 and kept, the second between 32 and
    # 128 / low 1 and blended, the others divided by the factor), attention and MLP biases on, eos_token_id a list,
    # lm_head and old inv_freq buffers in the checkpoint (to be ignored).
    llama = dict(common, model_type="llama", vocab_size=80, intermediate_size=40, max_position_embeddings=256,
                 rope_theta=10000.0, attention_bias=True, mlp_bias=True, tie_word_embeddings=False,
                 rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                               "original_max_position_embeddings": 128},
                 pad_token_id=0, bos_token_id=1, eos_token_id=[2, 3])
    make("llama", llama, labels=3, seed=1,
         extra_names=[("lm_head.weight", (80, 32))] + [("model.layers.%d.self_attn.rotary_emb.inv_freq" % i, (4,)) for i in range(2)],
         checks=[("llama3 rope scaling", without(llama, rope_scaling=None)),
                 ("biases", without(llama, attention_bias=False, mlp_bias=False))])

    # Qwen2: q/k/v biases (none on o_proj or the MLP), rope_theta 1e6 with linear scaling, tied embeddings (no
    # lm_head), no pad_token_id (HF then classifies one example at a time).
    qwen2 = dict(common, model_type="qwen2", vocab_size=80, intermediate_size=40, max_position_embeddings=512,
                 rope_theta=1000000.0, rope_scaling={"type": "linear", "factor": 2.0}, tie_word_embeddings=True,
                 use_sliding_window=False, sliding_window=4096, max_window_layers=2, bos_token_id=1, eos_token_id=2)
    make("qwen2", qwen2, labels=2, seed=2,
         checks=[("linear rope scaling", without(qwen2, rope_scaling=None))])

    # Mistral: a 4-token sliding window, shorter than most cases (the last real token of every case but the 3-token
    # one sits 4 or more positions past the first), and head_dim 12 rather than hidden_size / heads = 8.
    mistral = dict(common, model_type="mistral", vocab_size=80, intermediate_size=32, max_position_embeddings=4096 * 32,
                   rope_theta=10000.0, sliding_window=4, head_dim=12, tie_word_embeddings=False,
                   pad_token_id=0, bos_token_id=1, eos_token_id=2)
    make("mistral", mistral, labels=3, seed=3,
         checks=[("the sliding window", without(mistral, sliding_window=64))])


if __name__ == "__main__":
    main()
