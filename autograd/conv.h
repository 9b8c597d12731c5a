#pragma once
// Convolution and pooling ops, NCHW, with PyTorch's semantics and argument order
// (torch.nn.functional.conv2d, max_pool2d, avg_pool2d, adaptive_avg_pool2d). Inputs may be
// batched [N, C, H, W] or unbatched [C, H, W]; sizes are {height, width}.
#include <array>
#include <cstdint>
#include <optional>
#include <utility>

#include "core/tensor.h"

namespace iris {

// weight [Cout, Cin / groups, kH, kW]; bias [Cout] or undefined. Differentiable in input,
// weight and bias.
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor(),
              std::array<int64_t, 2> stride = {1, 1}, std::array<int64_t, 2> padding = {0, 0},
              std::array<int64_t, 2> dilation = {1, 1}, int64_t groups = 1);

// stride defaults to the kernel size. Padding is -inf (never the maximum) and at most half
// the kernel.
Tensor max_pool2d(const Tensor& x, std::array<int64_t, 2> kernel,
                  std::optional<std::array<int64_t, 2>> stride = std::nullopt,
                  std::array<int64_t, 2> padding = {0, 0}, std::array<int64_t, 2> dilation = {1, 1},
                  bool ceil_mode = false);
// (output, indices): int64 flat positions ih * W + iw of each maximum in its input plane,
// as torch's return_indices=True gives them.
std::pair<Tensor, Tensor> max_pool2d_with_indices(
    const Tensor& x, std::array<int64_t, 2> kernel,
    std::optional<std::array<int64_t, 2>> stride = std::nullopt,
    std::array<int64_t, 2> padding = {0, 0}, std::array<int64_t, 2> dilation = {1, 1},
    bool ceil_mode = false);

// Padding counts as zeros; count_include_pad = false divides by the in-image part of each
// window; divisor_override replaces the divisor altogether.
Tensor avg_pool2d(const Tensor& x, std::array<int64_t, 2> kernel,
                  std::optional<std::array<int64_t, 2>> stride = std::nullopt,
                  std::array<int64_t, 2> padding = {0, 0}, bool ceil_mode = false,
                  bool count_include_pad = true,
                  std::optional<int64_t> divisor_override = std::nullopt);

// Averages over bins [floor(i * H / outH), ceil((i + 1) * H / outH)) (likewise in width).
Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size);

}  // namespace iris
