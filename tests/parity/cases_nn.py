"""Parity cases for the nn/ layers (tests/parity/test_parity_nn.cpp): each runs a torch.nn
module through functional_call on weights given as inputs `w.<state_dict name>`, so the
C++ side loads the same tensors into the iris module by name and compares outputs and the
gradients of the inputs and of every parameter.

Run as a script, it is the torch half of the checkpoint round trip:
  python3 cases_nn.py roundtrip IN.safetensors OUT.safetensors
loads an iris-written Block state dict strictly into torch_ref's Block, runs it on the
file's `x` / `mem`, and writes the torch state_dict back with the output as `out`.
"""
import json
import math
import struct
import sys

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torch.nn.utils.stateless import functional_call

from torch_parity import Case, save_safetensors


class Block(nn.Module):
    """torch_ref.py's pre-LN transformer block, verbatim."""
    def __init__(s, d, h, mlp, cross=False, causal=False):
        super().__init__()
        s.ln1 = nn.LayerNorm(d); s.attn = nn.MultiheadAttention(d, h, batch_first=True)
        s.cross = cross; s.causal = causal
        if cross:
            s.lnx = nn.LayerNorm(d); s.xattn = nn.MultiheadAttention(d, h, batch_first=True)
        s.ln2 = nn.LayerNorm(d); s.mlp = nn.Sequential(nn.Linear(d, mlp), nn.GELU(), nn.Linear(mlp, d))

    def forward(s, x, mem=None):
        h = s.ln1(x); L = x.shape[1]
        mask = torch.triu(torch.full((L, L), float('-inf')), 1) if s.causal else None
        x = x + s.attn(h, h, h, attn_mask=mask, need_weights=False)[0]
        if s.cross:
            h = s.lnx(x); x = x + s.xattn(h, mem, mem, need_weights=False)[0]
        return x + s.mlp(s.ln2(x))


def r(*shape, scale=1.0):
    return (torch.randn(*shape) * scale).requires_grad_(True)


def randomise(module, scale=0.3):
    """Non-trivial values everywhere (torch zeroes some biases at init)."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if name.endswith("weight") and p.dim() == 1:  # norm scales around 1
                p.copy_(1 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(scale * torch.randn_like(p))
    return module


def module_case(name, module, inputs, call, attrs=None):
    """call(f, state, **inputs): f runs the module on the given weights; state holds them
    (buffers as fresh copies, so their in-place updates can be returned)."""
    params = dict(module.named_parameters())
    sd = module.state_dict()
    weights = {f"w.{k}": v.detach().clone().requires_grad_(k in params) for k, v in sd.items()}

    def fn(**kw):
        state = {k[2:]: (v if k[2:] in params else v.clone()) for k, v in kw.items()
                 if k.startswith("w.")}
        args = {k: v for k, v in kw.items() if not k.startswith("w.")}
        if isinstance(module, nn.RNNBase):
            # functional_call does not reach the weight list RNNs cache (_flat_weights).
            def f(*a, **k2):
                module._flat_weights = [state[n] for n in module._flat_weights_names]
                return module(*a, **k2)
            return call(f, state, **args)
        return call(lambda *a, **k2: functional_call(module, state, a, k2), state, **args)

    return Case(name, fn, {**inputs, **weights}, {**(attrs or {}), "weights": len(sd)})


def causal_mask(L):
    return torch.triu(torch.full((L, L), float("-inf")), 1)


def cases():
    torch.manual_seed(0)
    yield module_case("linear", randomise(nn.Linear(7, 5)), {"x": r(2, 3, 7)},
                      lambda f, s, x: f(x), {"in": 7, "out": 5})

    conv_bn = randomise(nn.Sequential(nn.Conv2d(3, 4, 3, 2, 1, bias=False), nn.BatchNorm2d(4)))
    with torch.no_grad():
        conv_bn[1].running_mean.normal_(0, 0.2)
        conv_bn[1].running_var.uniform_(0.5, 1.5)
    yield module_case("conv_bn_train", conv_bn.train(), {"x": r(2, 3, 9, 7)},
                      lambda f, s, x: (f(x), s["1.running_mean"], s["1.running_var"],
                                       s["1.num_batches_tracked"]))
    yield module_case("conv_bn_eval", conv_bn.eval(), {"x": r(2, 3, 9, 7)},
                      lambda f, s, x: f(x))

    yield module_case("layer_norm", randomise(nn.LayerNorm(12)), {"x": r(3, 5, 12, scale=2.0)},
                      lambda f, s, x: f(x), {"d": 12})

    mha = randomise(nn.MultiheadAttention(12, 3, batch_first=True))
    yield module_case("mha_self_causal", mha, {"x": r(2, 6, 12)},
                      lambda f, s, x: f(x, x, x, attn_mask=causal_mask(6), need_weights=False)[0],
                      {"E": 12, "H": 3})
    kpm = torch.zeros(2, 7, dtype=torch.bool)
    kpm[0, 5:] = True
    kpm[1, 2] = True
    yield module_case("mha_cross_kpm", mha, {"q": r(2, 4, 12), "mem": r(2, 7, 12), "kpm": kpm},
                      lambda f, s, q, mem, kpm: f(q, mem, mem, key_padding_mask=kpm,
                                                  need_weights=False)[0],
                      {"E": 12, "H": 3})
    yield module_case("mha_cross_weights", mha,
                      {"q": r(2, 4, 12), "mem": r(2, 7, 12), "kpm": kpm},
                      lambda f, s, q, mem, kpm: f(q, mem, mem, key_padding_mask=kpm,
                                                  need_weights=True),
                      {"E": 12, "H": 3})

    yield module_case("block_cross_causal", randomise(Block(12, 3, 20, cross=True, causal=True)),
                      {"x": r(2, 5, 12), "mem": r(2, 6, 12)},
                      lambda f, s, x, mem: f(x, mem), {"d": 12, "h": 3, "mlp": 20, "cross": 1})
    yield module_case("block_encoder", randomise(Block(12, 3, 20)), {"x": r(2, 5, 12)},
                      lambda f, s, x: f(x), {"d": 12, "h": 3, "mlp": 20, "cross": 0})

    yield module_case("lstm_cell", randomise(nn.LSTMCell(5, 6)),
                      {"x": r(3, 5), "h": r(3, 6), "c": r(3, 6)},
                      lambda f, s, x, h, c: f(x, (h, c)), {"in": 5, "hidden": 6})

    def packed(f, x, lengths, state, batch_first):
        seq = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
        out, st = f(seq, state)
        out, _ = pad_packed_sequence(out, batch_first=batch_first,
                                     total_length=x.shape[1 if batch_first else 0])
        return out, st

    def lstm_call(f, s, x, lengths, h0, c0):
        out, (h, c) = packed(f, x, lengths, (h0, c0), True)
        return out, h, c

    yield module_case("lstm_lengths", randomise(nn.LSTM(4, 5, num_layers=2, batch_first=True)),
                      {"x": r(3, 6, 4), "lengths": torch.tensor([6, 2, 4]), "h0": r(2, 3, 5),
                       "c0": r(2, 3, 5)},
                      lstm_call, {"in": 4, "hidden": 5, "layers": 2})

    def gru_call(f, s, x, lengths, h0):
        out, h = packed(f, x, lengths, h0, False)
        return out, h

    yield module_case("gru_lengths", randomise(nn.GRU(3, 4, num_layers=2)),
                      {"x": r(5, 3, 3), "lengths": torch.tensor([3, 5, 1]), "h0": r(2, 3, 4)},
                      gru_call, {"in": 3, "hidden": 4, "layers": 2})
    yield module_case("gru_cell", randomise(nn.GRUCell(3, 4)), {"x": r(2, 3), "h": r(2, 4)},
                      lambda f, s, x, h: f(x, h), {"in": 3, "hidden": 4})


# ---- the torch half of the checkpoint round trip ----------------------------

_TD = {"F32": torch.float32, "F64": torch.float64, "I64": torch.int64, "I32": torch.int32,
       "U8": torch.uint8, "BOOL": torch.bool}


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=_TD[meta["dtype"]]) if b > a else \
            torch.empty(0, dtype=_TD[meta["dtype"]])
        out[name] = t.reshape(meta["shape"])
    return out


def roundtrip(src, dst):
    tensors = load_safetensors(src)
    d, h, mlp = (int(tensors.pop(k).item()) for k in ("cfg.d", "cfg.h", "cfg.mlp"))
    x, mem = tensors.pop("x"), tensors.pop("mem")
    block = Block(d, h, mlp, cross=True, causal=True)
    block.load_state_dict(tensors, strict=True)
    with torch.no_grad():
        out = block(x, mem)
    save_safetensors({**block.state_dict(), "out": out}, {"writer": "torch"}, dst)
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "roundtrip":
        sys.exit(roundtrip(sys.argv[2], sys.argv[3]))
    print(__doc__)
    sys.exit(2)
