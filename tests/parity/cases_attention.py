"""Parity cases for scaled_dot_product_attention (tests/parity/test_parity_attention.cpp).
torch 1.13 (Debian) has no F.scaled_dot_product_attention, so the reference is the
materialised softmax(q k^T / sqrt(D) + mask) v."""
import math

import torch

from torch_parity import Case


def reference(q, k, v, causal=False, kpm=None):
    lq, lk = q.shape[-2], k.shape[-2]
    s = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])
    if causal:
        i = torch.arange(lq)[:, None]
        j = torch.arange(lk)[None, :]
        s = s.masked_fill(j > i + (lk - lq), float("-inf"))
    if kpm is not None:
        s = s.masked_fill(kpm[:, None, None, :], float("-inf"))
    return torch.softmax(s, -1) @ v


def r(*shape):
    return torch.randn(*shape).requires_grad_(True)


def cases():
    # vit-cap shapes, scaled down: self-attention over 65 tokens, 3 heads of 64
    yield Case("attn_self", lambda q, k, v: reference(q, k, v),
               {"q": r(2, 3, 65, 64), "k": r(2, 3, 65, 64), "v": r(2, 3, 65, 64)}, {"causal": 0})
    yield Case("attn_causal", lambda q, k, v: reference(q, k, v, causal=True),
               {"q": r(2, 3, 16, 64), "k": r(2, 3, 16, 64), "v": r(2, 3, 16, 64)}, {"causal": 1})
    # cross-modal: 16 text queries over 65 image keys, and bottom-right causal with Lq < Lk
    yield Case("attn_cross", lambda q, k, v: reference(q, k, v),
               {"q": r(2, 3, 16, 64), "k": r(2, 3, 65, 64), "v": r(2, 3, 65, 32)}, {"causal": 0})
    yield Case("attn_cross_causal", lambda q, k, v: reference(q, k, v, causal=True),
               {"q": r(1, 2, 7, 32), "k": r(1, 2, 19, 32), "v": r(1, 2, 19, 32)}, {"causal": 1})
    kpm = torch.zeros(2, 23, dtype=torch.bool)
    kpm[0, 17:] = True
    kpm[1, 5] = True
    yield Case("attn_kpm", lambda q, k, v, kpm: reference(q, k, v, kpm=kpm),
               {"q": r(2, 4, 9, 16), "k": r(2, 4, 23, 16), "v": r(2, 4, 23, 16), "kpm": kpm},
               {"causal": 0})
