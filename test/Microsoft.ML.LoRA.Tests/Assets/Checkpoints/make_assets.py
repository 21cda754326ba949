#!/usr/bin/env python3
"""Generates the small checkpoint assets the Checkpoints tests read. Run from this folder:

    /usr/bin/python3 make_assets.py      # Debian 12: apt-get install -y python3-torch (PyTorch 1.13)

The tests never run Python; they read the committed outputs. Regenerating gives byte-identical files except
legacy.bin (the legacy format keys storages by memory address). Every file is a few KB:

  tiny-bert-bin/                 config.json + pytorch_model.bin (torch.save zip) of a tiny random BERT classifier
  tiny-bert.safetensors          the same state dict as safetensors (written below with struct, no safetensors package)
  tiny-bert-bin-sharded/         the same state dict as two .bin shards + pytorch_model.bin.index.json
  dtypes.bin / dtypes.safetensors  float16, bfloat16, float64, int64, int32, int16, int8, uint8, bool, a scalar, an
                                 empty tensor, a transposed (non-contiguous) tensor, views sharing one storage
  dtypes-bigendian.bin           dtypes.bin rewritten with byteorder "big" and byte-swapped storages
  legacy.bin                     the pre-1.6 format (_use_new_zipfile_serialization=False)
  malicious-os-system.bin        a torch-layout zip whose pickle calls os.system (built opcode by opcode, never run)
"""
import io
import json
import os
import pickle
import struct
import zipfile
from collections import OrderedDict

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
# What the malicious pickle would run if a loader executed it: it creates this file.
PWNED_MARKER = "/tmp/microsoft-ml-lora-pwned"

SAFETENSORS_DTYPES = {
    torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
    torch.int64: "I64", torch.int32: "I32", torch.int16: "I16", torch.int8: "I8",
    torch.uint8: "U8", torch.bool: "BOOL",
}


def out(*parts):
    return os.path.join(HERE, *parts)


def raw_bytes(t):
    """The little-endian bytes of a tensor's elements in row-major order."""
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    if t.dtype == torch.bool:
        t = t.to(torch.uint8)
    return t.numpy().tobytes()


def write_safetensors(path, tensors, metadata=None):
    """The safetensors layout: u64 header length, JSON header padded with spaces to 8 bytes, then the data."""
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        data = raw_bytes(t)
        header[name] = {"dtype": SAFETENSORS_DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def tiny_bert_config():
    return OrderedDict([
        ("architectures", ["BertForSequenceClassification"]),
        ("model_type", "bert"),
        ("hidden_size", 16), ("num_hidden_layers", 2), ("num_attention_heads", 2), ("intermediate_size", 32),
        ("hidden_act", "gelu"), ("max_position_embeddings", 32), ("type_vocab_size", 2), ("vocab_size", 60),
        ("layer_norm_eps", 1e-12), ("pad_token_id", 0), ("num_labels", 2),
        ("id2label", {"0": "negative", "1": "positive"}), ("label2id", {"negative": 0, "positive": 1}),
    ])


def tiny_bert_state_dict(cfg):
    """Random weights under BertForSequenceClassification's names (as older transformers saved them, with position_ids)."""
    g = torch.Generator().manual_seed(1234)
    h, i, v, p, t, n = (cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"],
                        cfg["max_position_embeddings"], cfg["type_vocab_size"], cfg["num_labels"])

    def w(*shape):
        return torch.randn(*shape, generator=g) * 0.2

    def ln(prefix, sd):
        sd[prefix + ".weight"] = 1.0 + w(h) * 0.5
        sd[prefix + ".bias"] = w(h) * 0.5

    sd = OrderedDict()
    sd["bert.embeddings.position_ids"] = torch.arange(p).unsqueeze(0)
    sd["bert.embeddings.word_embeddings.weight"] = w(v, h)
    sd["bert.embeddings.position_embeddings.weight"] = w(p, h)
    sd["bert.embeddings.token_type_embeddings.weight"] = w(t, h)
    ln("bert.embeddings.LayerNorm", sd)
    for layer in range(cfg["num_hidden_layers"]):
        pre = f"bert.encoder.layer.{layer}."
        for part in ("query", "key", "value"):
            sd[pre + f"attention.self.{part}.weight"] = w(h, h)
            sd[pre + f"attention.self.{part}.bias"] = w(h)
        sd[pre + "attention.output.dense.weight"] = w(h, h)
        sd[pre + "attention.output.dense.bias"] = w(h)
        ln(pre + "attention.output.LayerNorm", sd)
        sd[pre + "intermediate.dense.weight"] = w(i, h)
        sd[pre + "intermediate.dense.bias"] = w(i)
        sd[pre + "output.dense.weight"] = w(h, i)
        sd[pre + "output.dense.bias"] = w(h)
        ln(pre + "output.LayerNorm", sd)
    sd["bert.pooler.dense.weight"] = w(h, h)
    sd["bert.pooler.dense.bias"] = w(h)
    sd["classifier.weight"] = w(n, h)
    sd["classifier.bias"] = w(n)
    # nn.Module.state_dict() attaches per-module versions; pickle writes them with BUILD after the items.
    modules = sorted({name.rsplit(".", 1)[0] for name in sd} | {""})
    sd._metadata = OrderedDict((m, {"version": 1}) for m in modules)
    return sd


def dtypes_state_dict():
    g = torch.Generator().manual_seed(99)
    base = torch.randn(4, 6, generator=g)
    sd = OrderedDict()
    sd["float16"] = (torch.randn(3, 5, generator=g) * 10).to(torch.float16)
    sd["bfloat16"] = (torch.randn(2, 7, generator=g) * 10).to(torch.bfloat16)
    sd["float64"] = torch.randn(3, generator=g, dtype=torch.float64)
    sd["int64"] = torch.tensor([[0, -1, 2 ** 40], [7, -(2 ** 62), 5]], dtype=torch.int64)
    sd["int32"] = torch.tensor([-5, 0, 2 ** 30], dtype=torch.int32)
    sd["int16"] = torch.tensor([-300, 300], dtype=torch.int16)
    sd["int8"] = torch.tensor([-128, 0, 127], dtype=torch.int8)
    sd["uint8"] = torch.tensor([0, 128, 255], dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True, True])
    sd["scalar"] = torch.tensor(3.25)
    sd["empty"] = torch.zeros(0, 3)
    # Views of one storage: the whole matrix, its transpose (strides (1, 6)), a row block (storage offset 6) and a
    # column slice (offset 2, strides (6, 2)).
    sd["shared.base"] = base
    sd["shared.transposed"] = base.t()
    sd["shared.rows"] = base[1:3]
    sd["shared.columns"] = base[:, 2::2]
    assert not sd["shared.transposed"].is_contiguous() and not sd["shared.columns"].is_contiguous()
    return sd


def write_entry(z, name, data):
    """Adds a stored entry with a fixed timestamp, so regenerating gives byte-identical files."""
    z.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)


def torch_save(obj, path):
    torch.save(obj, path, _use_new_zipfile_serialization=True)


def storage_element_sizes(path):
    """Maps each storage key of a torch.save zip to its element size, by unpickling our own (trusted) file."""
    with zipfile.ZipFile(path) as z:
        pkl = next(n for n in z.namelist() if n.endswith("/data.pkl"))
        sizes = {}

        class Recorder(pickle.Unpickler):
            def persistent_load(self, pid):
                _, storage_type, key, _, numel = pid
                sizes[key] = storage_type(0).element_size()
                return storage_type(numel)

        Recorder(io.BytesIO(z.read(pkl))).load()
        return sizes


def big_endian_copy(source, target):
    sizes = storage_element_sizes(source)
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as dst:
        prefix = next(n for n in src.namelist() if n.endswith("/data.pkl"))[: -len("data.pkl")]
        for name in src.namelist():
            data = src.read(name)
            key = name[len(prefix + "data/"):] if name.startswith(prefix + "data/") else None
            if key is not None and sizes[key] > 1:
                size = sizes[key]
                data = b"".join(data[k:k + size][::-1] for k in range(0, len(data), size))
            write_entry(dst, name, data)
        write_entry(dst, prefix + "byteorder", b"big")


def malicious_pickle():
    """{'payload': os.system('echo ... > marker')} written opcode by opcode (protocol 2); nothing here runs it."""
    command = f"echo pwned > {PWNED_MARKER}".encode()

    def binunicode(b):
        return b"X" + struct.pack("<I", len(b)) + b

    return (b"\x80\x02" + b"}q\x00(" + binunicode(b"payload") + b"cos\nsystem\nq\x01" + binunicode(command)
            + b"\x85q\x02Rq\x03u.")


def write_torch_zip(path, pkl):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        write_entry(z, "archive/data.pkl", pkl)
        write_entry(z, "archive/version", b"3\n")


def main():
    cfg = tiny_bert_config()
    sd = tiny_bert_state_dict(cfg)

    os.makedirs(out("tiny-bert-bin"), exist_ok=True)
    with open(out("tiny-bert-bin", "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    torch_save(sd, out("tiny-bert-bin", "pytorch_model.bin"))
    write_safetensors(out("tiny-bert.safetensors"), sd, {"format": "pt"})

    os.makedirs(out("tiny-bert-bin-sharded"), exist_ok=True)
    with open(out("tiny-bert-bin-sharded", "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    names = list(sd)
    halves = [names[: len(names) // 2], names[len(names) // 2:]]
    weight_map = {}
    for k, part in enumerate(halves):
        shard = f"pytorch_model-{k + 1:05d}-of-00002.bin"
        torch_save(OrderedDict((n, sd[n]) for n in part), out("tiny-bert-bin-sharded", shard))
        weight_map.update({n: shard for n in part})
    total = sum(t.numel() * t.element_size() for t in sd.values())
    with open(out("tiny-bert-bin-sharded", "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)

    dt = dtypes_state_dict()
    torch_save(dt, out("dtypes.bin"))
    write_safetensors(out("dtypes.safetensors"), dt)
    big_endian_copy(out("dtypes.bin"), out("dtypes-bigendian.bin"))

    torch.save(OrderedDict([("weight", torch.arange(6.0).reshape(2, 3))]), out("legacy.bin"),
               _use_new_zipfile_serialization=False)

    write_torch_zip(out("malicious-os-system.bin"), malicious_pickle())

    # Self-checks: PyTorch reads back what we wrote.
    loaded = torch.load(out("dtypes.bin"))
    for name, t in dt.items():
        assert torch.equal(loaded[name], t), name
    assert loaded["shared.rows"].storage().data_ptr() == loaded["shared.base"].storage().data_ptr()
    assert not os.path.exists(PWNED_MARKER)


if __name__ == "__main__":
    main()
