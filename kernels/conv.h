#pragma once
// 2-D convolution kernels (any device), NCHW, PyTorch's cross-correlation. The op layer
// validates shapes and passes dense row-major tensors: input [N, Cin, H, W], weight
// [Cout, Cin/groups, kH, kW], bias [Cout] (or undefined), out [N, Cout, OH, OW].
#include <cstdint>

#include "core/tensor.h"
#include "kernels/dispatch.h"

namespace iris::kernels {

struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
};

// floor((in + 2 pad - dilation (kernel - 1) - 1) / stride) + 1; <= 0 when the kernel does
// not fit (callers report that as an error).
inline int64_t conv_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad,
                                int64_t dilation) {
  const int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1;
  return span < 0 ? 0 : span / stride + 1;
}

// out = conv(input, weight) + bias
IRIS_DECLARE_KERNEL(conv2d_forward,
                    void(const Tensor& input, const Tensor& weight, const Tensor& bias,
                         const Conv2dParams& p, const Tensor& out));
// dinp = d out / d input given dout (all dense; dinp is overwritten).
IRIS_DECLARE_KERNEL(conv2d_backward_data, void(const Tensor& dout, const Tensor& weight,
                                               const Conv2dParams& p, const Tensor& dinp));
// dweight (overwritten) and, when defined, dbias = sum of dout over N, OH, OW.
IRIS_DECLARE_KERNEL(conv2d_backward_weight,
                    void(const Tensor& dout, const Tensor& input, const Conv2dParams& p,
                         const Tensor& dweight, const Tensor& dbias));

}  // namespace iris::kernels
