"""Parity cases for convolution and pooling (tests/parity/test_parity_conv.cpp).

Size pairs travel as "h,w" attrs; case names start with the op (conv2d_, max_pool2d_,
avg_pool2d_, adaptive_avg_pool2d_)."""
import torch
import torch.nn.functional as F

from torch_parity import Case


def r(*shape, grad=True):
    return torch.randn(*shape).requires_grad_(grad)


def pair(v):
    return f"{v[0]},{v[1]}"


def conv_case(name, x, w, bias, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1):
    inputs = {"x": x, "w": w}
    if bias:
        inputs["b"] = r(w.shape[0])
    attrs = {"stride": pair(stride), "padding": pair(padding), "dilation": pair(dilation),
             "groups": groups, "bias": bias}
    if bias:
        fn = lambda x, w, b: F.conv2d(x, w, b, stride, padding, dilation, groups)
    else:
        fn = lambda x, w: F.conv2d(x, w, None, stride, padding, dilation, groups)
    return Case("conv2d_" + name, fn, inputs, attrs)


def max_case(name, x, kernel, stride, padding=(0, 0), dilation=(1, 1), ceil_mode=False):
    return Case("max_pool2d_" + name,
                lambda x: F.max_pool2d(x, kernel, stride, padding, dilation, ceil_mode,
                                       return_indices=True),
                {"x": x}, {"kernel": pair(kernel), "stride": pair(stride), "padding": pair(padding),
                           "dilation": pair(dilation), "ceil_mode": ceil_mode})


def avg_case(name, x, kernel, stride, padding=(0, 0), ceil_mode=False, count_include_pad=True,
             divisor=None):
    return Case("avg_pool2d_" + name,
                lambda x: F.avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad,
                                       divisor),
                {"x": x}, {"kernel": pair(kernel), "stride": pair(stride), "padding": pair(padding),
                           "ceil_mode": ceil_mode, "count_include_pad": count_include_pad,
                           "divisor": divisor or 0})


def cases():
    torch.manual_seed(0)
    # ---- conv2d ----
    yield conv_case("basic", r(2, 3, 9, 7), r(4, 3, 3, 3), True, padding=(1, 1))
    yield conv_case("stride2", r(3, 4, 7, 9), r(6, 4, 3, 3), True, (2, 2), (1, 1))
    yield conv_case("dilation2", r(2, 4, 9, 8), r(5, 4, 3, 3), True, (1, 1), (2, 2), (2, 2))
    yield conv_case("groups2", r(2, 4, 7, 9), r(6, 2, 3, 3), True, (1, 1), (1, 1), groups=2)
    yield conv_case("depthwise", r(2, 6, 7, 9), r(6, 1, 3, 3), True, (2, 2), (1, 1), groups=6)
    yield conv_case("depthwise_multiplier", r(2, 3, 8, 7), r(6, 1, 5, 5), False, (1, 1), (2, 2),
                    groups=3)
    yield conv_case("nonsquare", r(3, 3, 7, 9), r(4, 3, 2, 5), True, (2, 1), (1, 2), (1, 2))
    yield conv_case("pointwise", r(2, 5, 7, 9), r(7, 5, 1, 1), False)
    yield conv_case("patchify", r(2, 3, 32, 24), r(8, 3, 8, 8), True, (8, 8))
    yield conv_case("unbatched", r(3, 8, 6), r(4, 3, 3, 3), True, (1, 2), (1, 1))
    # A cnn-rnn stage-2 layer at batch 2: sums of 576 (forward, dinp) and 512 (dweight) terms,
    # scaled so that outputs and gradients are O(1) (the harness's atol is absolute); the
    # reference is torch in float64 on the same fp32 inputs, not torch's own rounding.
    yield Case("conv2d_cnn_rnn_stage2",
               lambda x, w: F.conv2d(x.double(), w.double(), None, 1, 1).float(),
               {"x": r(2, 64, 16, 16) / 16, "w": r(64, 64, 3, 3) / 24},
               {"stride": "1,1", "padding": "1,1", "dilation": "1,1", "groups": 1, "bias": False})
    # ---- max pooling (output and int64 indices) ----
    yield max_case("k2", r(2, 3, 8, 6), (2, 2), (2, 2))
    yield max_case("k3_s2_p1", r(3, 2, 7, 9), (3, 3), (2, 2), (1, 1))
    yield max_case("dilation2", r(2, 2, 9, 9), (3, 3), (1, 1), (1, 1), (2, 2))
    yield max_case("ceil_mode", r(2, 2, 7, 9), (3, 2), (2, 2), (0, 1), (1, 1), True)
    yield max_case("nonsquare_unbatched", r(3, 7, 9), (2, 3), (1, 2), (1, 0), (2, 1))
    # ---- average pooling ----
    yield avg_case("k2", r(2, 3, 8, 6), (2, 2), (2, 2))
    yield avg_case("k3_s2_p1", r(3, 2, 7, 9), (3, 3), (2, 2), (1, 1))
    yield avg_case("exclude_pad", r(3, 2, 7, 9), (3, 3), (2, 2), (1, 1), False, False)
    yield avg_case("ceil_mode", r(2, 2, 7, 9), (3, 2), (2, 2), (1, 1), True)
    yield avg_case("ceil_exclude_pad", r(2, 2, 7, 9), (3, 3), (2, 2), (1, 1), True, False)
    yield avg_case("divisor", r(2, 2, 7, 9), (3, 3), (2, 2), (1, 1), True, True, 4)
    # ---- adaptive average pooling ----
    for (h, w), (oh, ow) in [((7, 9), (3, 4)), ((5, 5), (2, 2)), ((4, 3), (6, 5)), ((8, 8), (1, 1)),
                             ((4, 4), (4, 4))]:
        yield Case(f"adaptive_avg_pool2d_{h}x{w}_to_{oh}x{ow}",
                   lambda x, oh=oh, ow=ow: F.adaptive_avg_pool2d(x, (oh, ow)),
                   {"x": r(2, 3, h, w)}, {"output_size": pair((oh, ow))})
