"""Parity cases for elementwise ops, reductions and views (tests/parity/test_parity_core.cpp)."""
import torch
import torch.nn.functional as F

from torch_parity import Case


def r(*shape, grad=True, lo=None):
    t = torch.randn(*shape)
    if lo is not None:
        t = t.abs() + lo
    return t.requires_grad_(grad)


def cases():
    torch.manual_seed(0)
    # binary with broadcasting: [3,1,5] op [4,1]
    for op, fn in [("add", torch.add), ("sub", torch.sub), ("mul", torch.mul),
                   ("div", torch.div), ("maximum", torch.maximum), ("minimum", torch.minimum)]:
        yield Case(f"binary_{op}", lambda a, b, fn=fn: fn(a, b), {"a": r(3, 1, 5), "b": r(4, 1, lo=0.5 if op == "div" else None)},
                   {"op": op})
    yield Case("binary_pow", lambda a, b: torch.pow(a, b), {"a": r(3, 4, lo=0.5), "b": r(3, 4)}, {"op": "pow"})
    unary = {
        "neg": torch.neg, "abs": torch.abs, "exp": torch.exp, "tanh": torch.tanh,
        "sigmoid": torch.sigmoid, "relu": torch.relu, "silu": F.silu, "sin": torch.sin,
        "cos": torch.cos, "square": torch.square, "expm1": torch.expm1,
        "gelu": F.gelu, "gelu_tanh": lambda x: F.gelu(x, approximate="tanh"),
        "leaky_relu": lambda x: F.leaky_relu(x, 0.1),
        "clamp": lambda x: torch.clamp(x, -0.5, 0.7),
        "sign": torch.sign,
    }
    for name, fn in unary.items():
        yield Case(f"unary_{name}", lambda x, fn=fn: fn(x), {"x": r(5, 7)}, {"op": name})
    positive = {"log": torch.log, "sqrt": torch.sqrt, "rsqrt": torch.rsqrt,
                "reciprocal": torch.reciprocal, "log1p": torch.log1p,
                "pow_scalar": lambda x: torch.pow(x, 2.5)}
    for name, fn in positive.items():
        yield Case(f"unary_{name}", lambda x, fn=fn: fn(x), {"x": r(5, 7, lo=0.2)}, {"op": name})
    x = r(2, 3, 4)
    yield Case("reduce_sum_all", lambda x: x.sum(), {"x": x})
    yield Case("reduce_sum_dims", lambda x: x.sum(dim=(0, 2), keepdim=True), {"x": x})
    yield Case("reduce_mean_last", lambda x: x.mean(dim=-1), {"x": x})
    yield Case("reduce_var_1", lambda x: x.var(dim=1), {"x": x})
    yield Case("reduce_var_all_biased", lambda x: x.var(unbiased=False), {"x": x})
    yield Case("reduce_amax_0", lambda x: x.amax(dim=0), {"x": x})
    yield Case("reduce_amin_2", lambda x: x.amin(dim=2, keepdim=True), {"x": x})
    yield Case("reduce_cumsum_1", lambda x: x.cumsum(1), {"x": x})
    yield Case("view_permute_reshape", lambda x: x.permute(2, 0, 1).reshape(4, 6) * 2.0, {"x": x})
    yield Case("view_slice_expand",
               lambda x: x[:, 1:3, ::2].unsqueeze(0).expand(2, 2, 2, 2).sum(0), {"x": x})
    yield Case("view_select_narrow_squeeze",
               lambda x: x.transpose(0, 2).select(1, 2).narrow(0, 1, 2).unsqueeze(1).squeeze(1)
               .flatten().clone() * 3.0, {"x": x})
    yield Case("masked_fill", lambda x, m: x.masked_fill(m, -2.0),
               {"x": r(3, 4), "m": torch.rand(3, 4) > 0.5})
    yield Case("where_mask", lambda c, a, b: torch.where(c, a, b),
               {"c": torch.rand(3, 4) > 0.5, "a": r(3, 4), "b": r(4)})
