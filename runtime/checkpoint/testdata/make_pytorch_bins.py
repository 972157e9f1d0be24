"""Writes the pytorch_model.bin test inputs for runtime/checkpoint/pytorch_test.go.

Run from runtime/checkpoint:  /usr/bin/python3 testdata/make_pytorch_bins.py
Needs torch (any version >= 1.6 writes the zip format) and numpy.

  tiny-neo.bin        the tiny-neo fixture's state dict, F32/U8 as stored in
                      model.safetensors, plus lm_head.weight sharing wte's storage
                      (tied weights, as transformers saves them).
  layouts-f16.bin     F16/BF16/F32 tensors in awkward layouts: transposed
                      (non-contiguous), sliced (storage offset), expanded
                      (stride 0), 0-dim, empty, and two views of one storage.
  layouts-f16.expected.safetensors
                      the same tensors made contiguous, for bit-exact comparison.
  legacy.bin          a tensor saved in the pre-1.6 (non-zip) format.
  layouts-legacy.bin  layouts-f16.bin's tensors in the pre-1.6 format.

With --generated DIR it writes only DIR/half.bin, the tiny-neo state dict
cast to float16 (the U8 mask buffers kept), and DIR/legacy.bin, tiny-neo.bin's
state dict in the pre-1.6 format; pytorch_test.go runs this when torch is
present.
"""
import collections
import json
import os
import struct
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "..", "..", "..", "shared", "fixtures", "tiny-neo", "model.safetensors")

ST_DTYPES = {"F32": np.float32, "F16": np.float16, "U8": np.uint8}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8 : 8 + n])
    body = data[8 + n :]
    out = collections.OrderedDict()
    for name in sorted(header):
        if name == "__metadata__":
            continue
        info = header[name]
        lo, hi = info["data_offsets"]
        arr = np.frombuffer(body[lo:hi], dtype=ST_DTYPES[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out


def write_safetensors(path, tensors):
    names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.uint8: "U8"}
    header, blobs, off = {}, [], 0
    for name, t in tensors.items():
        t = t.contiguous()
        if t.dtype == torch.bfloat16:
            raw = t.view(torch.int16).numpy().tobytes()
        else:
            raw = t.numpy().tobytes()
        header[name] = {"dtype": names[t.dtype], "shape": list(t.shape), "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def tiny_neo():
    sd = read_safetensors(FIXTURE)
    sd["lm_head.weight"] = sd["transformer.wte.weight"]  # same storage: tied
    # Module.state_dict() sets _metadata, pickled as the OrderedDict's __dict__ (BUILD).
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("transformer", {"version": 1})])
    return sd


def main():
    torch.save(tiny_neo(), os.path.join(HERE, "tiny-neo.bin"))

    g = torch.Generator().manual_seed(7)
    base = torch.randn(6, 10, generator=g)
    big = torch.randn(40, generator=g).half()
    layouts = collections.OrderedDict()
    layouts["half.contiguous"] = torch.randn(3, 5, generator=g).half()
    layouts["half.transposed"] = torch.randn(4, 7, generator=g).half().t()  # stride (1, 7)
    layouts["half.slice_a"] = big[3:19].view(4, 4)  # offset 3, shares big's storage
    layouts["half.slice_b"] = big[20:40:2]  # offset 20, stride 2
    layouts["half.scalar"] = torch.tensor(-1.5).half()
    layouts["half.empty"] = torch.zeros(0, 3).half()
    layouts["bf16.matrix"] = torch.randn(3, 4, generator=g).bfloat16()
    layouts["f32.permuted"] = torch.randn(2, 3, 4, generator=g).permute(2, 0, 1)
    layouts["f32.expanded"] = base[1].unsqueeze(0).expand(3, 10)  # stride (0, 1)
    layouts["f32.column"] = base[:, 4]  # offset 4, stride 10
    layouts["u8.mask"] = torch.tril(torch.ones(5, 5, dtype=torch.uint8))
    torch.save(layouts, os.path.join(HERE, "layouts-f16.bin"))
    write_safetensors(os.path.join(HERE, "layouts-f16.expected.safetensors"), layouts)
    torch.save(layouts, os.path.join(HERE, "layouts-legacy.bin"), _use_new_zipfile_serialization=False)

    torch.save({"w": torch.ones(2, 2)}, os.path.join(HERE, "legacy.bin"), _use_new_zipfile_serialization=False)


def main_half(out):
    sd = read_safetensors(FIXTURE)
    half = collections.OrderedDict((k, v.half() if v.is_floating_point() else v) for k, v in sd.items())
    torch.save(half, out)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--generated":
        main_half(os.path.join(sys.argv[2], "half.bin"))
        torch.save(tiny_neo(), os.path.join(sys.argv[2], "legacy.bin"), _use_new_zipfile_serialization=False)
    else:
        main()
