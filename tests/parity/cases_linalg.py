"""Parity cases for matmul / bmm / linear (tests/parity/test_parity_linalg.cpp)."""
import torch
import torch.nn.functional as F

from torch_parity import Case


def r(*shape):
    return torch.randn(*shape).requires_grad_(True)


def cases():
    yield Case("matmul_2d", lambda a, b: a @ b, {"a": r(33, 65), "b": r(65, 17)})
    yield Case("matmul_batched_bcast", lambda a, b: a @ b, {"a": r(2, 1, 9, 6), "b": r(3, 6, 5)})
    yield Case("matmul_3d_2d", lambda a, b: a @ b, {"a": r(4, 13, 20), "b": r(20, 7)})
    yield Case("matmul_vec", lambda a, b: a @ b, {"a": r(5, 8), "b": r(8)})
    yield Case("bmm", lambda a, b: torch.bmm(a, b), {"a": r(3, 7, 4), "b": r(3, 4, 9)})
    yield Case("linear_bias", lambda x, w, b: F.linear(x, w, b),
               {"x": r(4, 16, 192), "w": r(96, 192), "b": r(96)})
    yield Case("linear_nobias", lambda x, w: F.linear(x, w), {"x": r(10, 31), "w": r(17, 31)})
