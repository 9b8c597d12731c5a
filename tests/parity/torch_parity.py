"""PyTorch side of the parity tests.

usage: python3 torch_parity.py CASES_FILE OUT_DIR

CASES_FILE (tests/parity/cases_<family>.py) defines `cases()`, yielding
`Case(name, fn, inputs, attrs)`:
  * inputs: dict name -> torch tensor. Floating tensors with requires_grad=True
    get a gradient; others (indices, masks) are passed as they are.
  * fn(**inputs) -> a tensor or a tuple of tensors (the op under test, in torch).
  * attrs: dict of scalars/strings (hyper-parameters) the C++ side reads back.
For each case this writes OUT_DIR/<name>.safetensors holding `in.<name>`,
`out.<i>`, `proj.<i>` (a fixed random projection of each floating output) and
`grad.<name>` = d sum_i(sum(out_i * proj_i)) / d input, with the attrs (and
"op", "outputs") in the metadata. tests/support/parity.h loads these files.
"""
import importlib.util
import json
import os
import struct
import sys
import zlib

import torch

_DT = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.int32: "I32",
       torch.float16: "F16", torch.bfloat16: "BF16", torch.uint8: "U8", torch.bool: "BOOL"}


class Case:
    def __init__(self, name, fn, inputs, attrs=None):
        self.name, self.fn, self.inputs, self.attrs = name, fn, inputs, dict(attrs or {})


def save_safetensors(tensors, metadata, path):
    header, blobs, off = {"__metadata__": metadata}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        raw = t.view(torch.uint8).numpy().tobytes() if t.dtype in (torch.bfloat16, torch.float16) \
            else t.numpy().tobytes()
        header[name] = {"dtype": _DT[t.dtype], "shape": list(t.shape),
                        "data_offsets": [off, off + len(raw)]}
        blobs.append(raw)
        off += len(raw)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


def run_case(case, out_dir):
    torch.manual_seed(zlib.crc32(case.name.encode()))
    inputs = {k: (v.detach().clone().requires_grad_(v.requires_grad) if torch.is_tensor(v) else v)
              for k, v in case.inputs.items()}
    outs = case.fn(**inputs)
    if torch.is_tensor(outs):
        outs = (outs,)
    tensors = {f"in.{k}": v for k, v in inputs.items() if torch.is_tensor(v)}
    total = None
    for i, o in enumerate(outs):
        tensors[f"out.{i}"] = o
        if o.is_floating_point() and o.requires_grad:
            g = torch.Generator().manual_seed(1000 + i)
            proj = torch.randn(o.shape, generator=g, dtype=o.dtype)
            tensors[f"proj.{i}"] = proj
            term = (o * proj).sum()
            total = term if total is None else total + term
    wants = [k for k, v in inputs.items() if torch.is_tensor(v) and v.requires_grad]
    if total is not None and wants:
        grads = torch.autograd.grad(total, [inputs[k] for k in wants], allow_unused=True)
        for k, g in zip(wants, grads):
            tensors[f"grad.{k}"] = g if g is not None else torch.zeros_like(inputs[k])
    meta = {k: str(v) for k, v in case.attrs.items()}
    meta["case"] = case.name
    meta["outputs"] = str(len(outs))
    save_safetensors(tensors, meta, os.path.join(out_dir, case.name + ".safetensors"))


def main(argv):
    if len(argv) != 2:
        print(__doc__)
        return 2
    cases_file, out_dir = argv
    os.makedirs(out_dir, exist_ok=True)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    spec = importlib.util.spec_from_file_location("cases", cases_file)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    torch.set_default_dtype(torch.float32)
    names = []
    for case in mod.cases():
        run_case(case, out_dir)
        names.append(case.name)
    with open(os.path.join(out_dir, "index.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
