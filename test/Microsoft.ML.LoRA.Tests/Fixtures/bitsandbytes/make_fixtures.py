"""What bitsandbytes stores and gives back for a 4-bit weight, for Models/Quantization/BitsAndBytesParityTests.

Quantizes seeded random weights with bitsandbytes' own functions (bitsandbytes.functional.quantize_4bit and
dequantize_4bit: NF4 and FP4, blocks of 64, with and without double quantization of the block maxima) and writes
cases.safetensors: each weight, the packed codes, the block maxima as dequantize_4bit uses them, and the weight it
gives back. The shapes cut the last block short (a remainder of 32 values) and make more than 256 blocks, so double
quantization has two second-level blocks, the second one partial.

    pip install bitsandbytes    # 0.45 or later runs these on the CPU (its plain-PyTorch kernels)
    python3 make_fixtures.py    # run in this folder; --device cuda uses bitsandbytes' CUDA kernels
"""

import argparse
import json
import os
import struct

import torch
import bitsandbytes.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = {"w96x200": (96, 200), "w7x50": (7, 50)}


def block_maxima(state):
    """The fp32 block maxima dequantize_4bit multiplies by (read back from 8 bits when double-quantized)."""
    if state.nested:
        return F.dequantize_blockwise(state.absmax, state.state2) + state.offset
    return state.absmax.float()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cpu")
    device = parser.parse_args().device
    g = torch.Generator().manual_seed(4)
    tensors = {}
    for name, shape in SHAPES.items():
        w = torch.randn(shape, generator=g) * 0.05
        w[0, :64] = 0.0  # an all-zero block
        tensors[f"{name}.weight"] = w
        for quant_type in ("nf4", "fp4"):
            for double in (False, True):
                packed, state = F.quantize_4bit(w.to(device), blocksize=64, quant_type=quant_type, compress_statistics=double)
                key = f"{name}.{quant_type}{'.double' if double else ''}"
                tensors[key + ".packed"] = packed.reshape(-1).cpu().contiguous()
                tensors[key + ".scales"] = block_maxima(state).float().cpu().contiguous()
                tensors[key + ".dequantized"] = F.dequantize_4bit(packed, state).float().cpu().contiguous()
    write_safetensors(os.path.join(HERE, "cases.safetensors"), tensors)


def write_safetensors(path, tensors):
    dtypes = {torch.float32: "F32", torch.uint8: "U8"}
    header, blobs, offset = {}, [], 0
    for key in sorted(tensors):
        t = tensors[key]
        raw = t.numpy().tobytes()
        header[key] = {"dtype": dtypes[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * ((8 - len(head) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(head)) + head + b"".join(blobs))


if __name__ == "__main__":
    main()
