"""Parity cases for normalisation, softmax, cross-entropy and embedding
(tests/parity/test_parity_norm.cpp). Dropout has none: its mask comes from
iris's Philox contract (kernels/dropout.h), not from torch's generator."""
import torch
import torch.nn.functional as F

from torch_parity import Case


def r(*shape, grad=True, scale=1.0, shift=0.0):
    return (torch.randn(*shape) * scale + shift).requires_grad_(grad)


def batch_norm_with_stats(x, rm0, rv0, w=None, b=None, training=True, momentum=0.1, eps=1e-5):
    """F.batch_norm on copies of the running stats, returning them updated."""
    rm, rv = rm0.clone(), rv0.clone()
    return F.batch_norm(x, rm, rv, w, b, training, momentum, eps), rm, rv


def cases():
    torch.manual_seed(0)
    # ---- layer norm ----
    for n in (7, 192, 768):
        yield Case(f"layer_norm_affine_{n}", lambda x, w, b: F.layer_norm(x, x.shape[-1:], w, b),
                   {"x": r(5, n, scale=2.0, shift=1.0), "w": r(n), "b": r(n)}, {"d": n})
    yield Case("layer_norm_plain", lambda x: F.layer_norm(x, (4, 6), eps=1e-3),
               {"x": r(3, 4, 6)}, {"eps": 1e-3})
    # Mean 1e3: torch's fp32 kernel (x * rstd - mean * rstd) loses ~3 digits here, so the
    # reference is torch in float64 on the same fp32 inputs.
    yield Case("layer_norm_large_mean",
               lambda x, w, b: F.layer_norm(x.double(), (64,), w.double(), b.double()).float(),
               {"x": r(6, 64, shift=1e3), "w": r(64), "b": r(64)})
    # ---- batch norm ----
    for shape in ((8, 3), (4, 3, 5), (2, 3, 4, 5)):
        tag = "x".join(map(str, shape))
        c = shape[1]
        for training in (True, False):
            mode = "train" if training else "eval"
            yield Case(f"batch_norm_{mode}_{tag}",
                       lambda x, rm0, rv0, w, b, training=training:
                       batch_norm_with_stats(x, rm0, rv0, w, b, training, 0.2, 1e-4),
                       {"x": r(*shape, scale=1.5, shift=0.5), "rm0": r(c, grad=False),
                        "rv0": (torch.rand(c) + 0.5), "w": r(c), "b": r(c)},
                       {"training": training, "momentum": 0.2, "eps": 1e-4})
    # ---- softmax ----
    x = r(4, 5, 6, scale=3.0)
    for dim in (0, 1, 2, -1):
        yield Case(f"softmax_dim{dim}", lambda x, dim=dim: F.softmax(x, dim), {"x": x}, {"dim": dim})
        yield Case(f"log_softmax_dim{dim}", lambda x, dim=dim: F.log_softmax(x, dim), {"x": x},
                   {"dim": dim})
    masked = torch.randn(3, 9)
    masked[0, 2] = masked[1, 0] = masked[1, 5] = float("-inf")
    yield Case("softmax_neg_inf", lambda x: F.softmax(x, 1), {"x": masked.requires_grad_()},
               {"dim": 1})
    # ---- cross-entropy ----
    target = torch.tensor([3, -100, 0, 9, 4, 4, -100])
    for reduction in ("mean", "sum", "none"):
        for smoothing in (0.0, 0.15):
            yield Case(f"cross_entropy_{reduction}_{smoothing}",
                       lambda x, t, reduction=reduction, smoothing=smoothing:
                       F.cross_entropy(x, t, reduction=reduction, label_smoothing=smoothing),
                       {"x": r(7, 10, scale=2.0), "t": target},
                       {"reduction": reduction, "smoothing": smoothing, "ignore_index": -100})
    spatial_t = torch.randint(0, 5, (2, 3, 4))
    spatial_t[0, 1, 2] = 1
    yield Case("cross_entropy_spatial", lambda x, t: F.cross_entropy(x, t, ignore_index=1,
                                                                     label_smoothing=0.1),
               {"x": r(2, 5, 3, 4), "t": spatial_t},
               {"reduction": "mean", "smoothing": 0.1, "ignore_index": 1})
    # ---- embedding ----
    ids = torch.tensor([[1, 4, 4, 0], [2, 4, 1, 6]])
    yield Case("embedding_plain", lambda w, i: F.embedding(i, w), {"w": r(7, 5), "i": ids})
    yield Case("embedding_padding", lambda w, i: F.embedding(i, w, padding_idx=4),
               {"w": r(7, 5), "i": ids}, {"padding_idx": 4})
