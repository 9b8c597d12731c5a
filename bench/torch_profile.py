#!/usr/bin/env python3
"""PyTorch baselines for `iris profile`: the same ops on the same inputs.

    torch_profile.py --cases CASES.jsonl [--device cpu|cuda] [--threads T] [--quick]

CASES.jsonl (written by `iris profile`): one object per line, {"index", "spec", "in", "out"}:
spec names the op ("conv2d_fwd", "attention_bwd", ...) and what the inputs do not say (stride,
padding, causal, scale); "in" is a safetensors file of the inputs iris used, "out" where this
script writes its outputs (named as iris's). Prints one JSON line per case:
{"index", "op", "baseline", "ms"} or {"index", "error"}. Timing: warm-up, then the median of
at least 5 runs (a steady clock on CPU, CUDA events on a GPU). Without torch it prints one
line {"index": -1, "error": ...} and exits 0.
"""
import json
import struct
import sys
import time

try:
    import torch
    import torch.nn.functional as F
except Exception as e:  # noqa: BLE001 - any import failure means "no baseline"
    print(json.dumps({"index": -1, "error": f"torch not importable: {e}"}))
    sys.exit(0)

_DT = {"F32": torch.float32, "F64": torch.float64, "I32": torch.int32, "I64": torch.int64,
       "U8": torch.uint8, "BOOL": torch.bool}


def load_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        a, b = e["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=_DT[e["dtype"]]) if b > a else \
            torch.empty(0, dtype=_DT[e["dtype"]])
        out[name] = t.reshape(e["shape"])
    return out


def save_safetensors(tensors, path):
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        raw = t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h)
        for b in blobs:
            f.write(b)


def median_ms(fn, device, quick):
    warm, min_runs, max_runs, min_s = (1, 3, 5, 0.05) if quick else (2, 5, 50, 0.3)
    for _ in range(warm):
        fn()
    ts, start = [], time.perf_counter()
    while len(ts) < max_runs and (len(ts) < min_runs or time.perf_counter() - start < min_s):
        if device == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record(); fn(); b.record(); torch.cuda.synchronize()
            ts.append(a.elapsed_time(b))
        else:
            t = time.perf_counter(); fn(); ts.append((time.perf_counter() - t) * 1e3)
    ts.sort()
    return ts[len(ts) // 2]


def conv_backward(dout, x, w, spec, mask):
    s, p = spec["stride"], spec["pad"]
    return torch.ops.aten.convolution_backward(dout, x, w, None, [s, s], [p, p], [1, 1], False,
                                               [0, 0], 1, mask)


def attention_setup(t, spec, dev):
    """The math attention of the case (torch 1.13 has no fused SDPA): masks built once."""
    q, k = t["q"], t["k"]
    B, H, Lq, D = q.shape
    Lk = k.shape[2]
    ql = t["q_lens"].long().to(dev) if "q_lens" in t else torch.full((B,), Lq, device=dev)
    kl = t["k_lens"].long().to(dev) if "k_lens" in t else torch.full((B,), Lk, device=dev)
    i = torch.arange(Lq, device=dev).view(1, Lq, 1)
    j = torch.arange(Lk, device=dev).view(1, 1, Lk)
    masked = (j >= kl.view(B, 1, 1)) & (i >= 0)  # [B, Lq, Lk]
    if spec["causal"]:  # bottom-right aligned on each sample's lengths
        masked = masked | (j > i + (kl - ql).view(B, 1, 1))
    masked = masked.view(B, 1, Lq, Lk) if bool(masked.any()) else None
    qkeep = (i.view(1, Lq) < ql.view(B, 1)).to(q.dtype).view(B, 1, Lq, 1)
    scale = spec["scale"]

    def attend(q, k, v):
        s = torch.matmul(q, k.transpose(-1, -2)) * scale
        if masked is not None:
            s = s.masked_fill(masked, float("-inf"))
        p = torch.softmax(s, dim=-1)
        if masked is not None:
            p = torch.nan_to_num(p)  # padding rows with no key at all
        return torch.matmul(p, v) * qkeep
    return attend


def run_case(op, spec, t, dev, quick):
    """Returns (outputs, ms) for the op on inputs t (already on dev)."""
    if op == "conv2d_fwd":
        s, p = spec["stride"], spec["pad"]
        fn = lambda: F.conv2d(t["x"], t["w"], None, s, p)
        return {"out": fn()}, median_ms(fn, dev, quick)
    if op == "conv2d_bwd_data":
        x = torch.empty(spec["input_shape"], device=dev)
        fn = lambda: conv_backward(t["dout"], x, t["w"], spec, [True, False, False])[0]
        return {"dinp": fn()}, median_ms(fn, dev, quick)
    if op == "conv2d_bwd_weight":
        w = torch.empty(spec["weight_shape"], device=dev)
        fn = lambda: conv_backward(t["dout"], t["x"], w, spec, [False, True, False])[1]
        return {"dweight": fn()}, median_ms(fn, dev, quick)
    if op == "attention_fwd":
        attend = attention_setup(t, spec, dev)
        with torch.no_grad():
            fn = lambda: attend(t["q"], t["k"], t["v"])
            return {"out": fn()}, median_ms(fn, dev, quick)
    if op == "attention_bwd":
        attend = attention_setup(t, spec, dev)
        q, k, v = (t[n].clone().requires_grad_() for n in ("q", "k", "v"))
        out = attend(q, k, v)
        fn = lambda: torch.autograd.grad(out, (q, k, v), t["dout"], retain_graph=True)
        dq, dk, dv = fn()
        return {"dq": dq, "dk": dk, "dv": dv}, median_ms(fn, dev, quick)
    if op == "layer_norm_fwd":
        n = t["x"].shape[-1]
        fn = lambda: F.layer_norm(t["x"], (n,), t["w"], t["b"], spec["eps"])
        return {"out": fn()}, median_ms(fn, dev, quick)
    if op == "layer_norm_bwd":
        x, w, b = t["x"], t["w"], t["b"]
        n = x.shape[-1]
        _, mean, rstd = torch.ops.aten.native_layer_norm(x, [n], w, b, spec["eps"])
        fn = lambda: torch.ops.aten.native_layer_norm_backward(t["dy"], x, [n], mean, rstd, w, b,
                                                               [True, True, True])
        dx, dw, db = fn()
        return {"dx": dx, "dweight": dw, "dbias": db}, median_ms(fn, dev, quick)
    if op == "softmax_fwd":
        fn = lambda: torch.softmax(t["x"], dim=-1)
        return {"out": fn()}, median_ms(fn, dev, quick)
    if op == "softmax_bwd":
        fn = lambda: torch._softmax_backward_data(t["dy"], t["y"], -1, t["y"].dtype)
        return {"dx": fn()}, median_ms(fn, dev, quick)
    if op == "cross_entropy_fwd":
        x, tg = t["logits"][..., 0], t["target"][:, 0]
        fn = lambda: F.cross_entropy(x, tg, reduction="none")
        return {"loss": fn().unsqueeze(1)}, median_ms(fn, dev, quick)
    if op == "cross_entropy_bwd":
        x = t["logits"][..., 0].clone().requires_grad_()
        loss = F.cross_entropy(x, t["target"][:, 0], reduction="none")
        fn = lambda: torch.autograd.grad(loss, x, t["dloss"][:, 0], retain_graph=True)[0]
        return {"dlogits": fn().unsqueeze(2)}, median_ms(fn, dev, quick)
    if op == "gemm":
        fn = lambda: torch.matmul(t["x"], t["w"].t())
        return {"out": fn()}, median_ms(fn, dev, quick)
    if op == "gemm_bias_gelu":
        fn = lambda: F.gelu(torch.addmm(t["b"], t["x"], t["w"].t()), approximate="tanh")
        return {"out": fn()}, median_ms(fn, dev, quick)
    raise ValueError(f"unknown op {op}")


def main(argv):
    opt = lambda k, d: type(d)(argv[argv.index(k) + 1]) if k in argv else d
    cases, dev, threads = opt("--cases", ""), opt("--device", "cpu"), opt("--threads", 0)
    quick = "--quick" in argv
    if not cases:
        print(__doc__)
        return 2
    if threads > 0:
        torch.set_num_threads(threads)
    if dev == "cuda" and not torch.cuda.is_available():
        print(json.dumps({"index": -1, "error": "torch has no CUDA device here"}))
        return 0
    name = f"torch {torch.__version__.split('+')[0]} {dev}"
    with open(cases) as f:
        for line in f:
            c = json.loads(line)
            op = c["spec"]["op"]
            res = {"index": c["index"], "op": op,
                   "baseline": name + (" math" if op.startswith("attention") else "")}
            try:
                t = {k: v.to(dev) for k, v in load_safetensors(c["in"]).items()}
                outputs, ms = run_case(op, c["spec"], t, dev, quick)
                save_safetensors(outputs, c["out"])
                res["ms"] = round(ms, 4)
            except Exception as e:  # noqa: BLE001 - reported per case, the run goes on
                res["error"] = f"{type(e).__name__}: {e}"
            print(json.dumps(res), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
