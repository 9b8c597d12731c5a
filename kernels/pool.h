#pragma once
// 2-D pooling kernels (any device), NCHW with PyTorch's window rules. The op layer
// validates and passes dense [N, C, H, W] inputs and freshly made dense outputs.
#include <cstdint>

#include "core/tensor.h"
#include "kernels/dispatch.h"

namespace iris::kernels {

struct Pool2dParams {
  int64_t kernel_h = 1, kernel_w = 1;
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;  // max pooling only
  bool ceil_mode = false;
  bool count_include_pad = true;  // average pooling only
  int64_t divisor_override = 0;   // average pooling: non-zero replaces the window size
};

// PyTorch's pooling_output_shape: floor (or ceil) of the span over the stride, plus one;
// in ceil mode the last window must start inside the input or the left padding.
inline int64_t pool_output_size(int64_t in, int64_t kernel, int64_t stride, int64_t pad,
                                int64_t dilation, bool ceil_mode) {
  const int64_t span = in + 2 * pad - dilation * (kernel - 1) - 1 + (ceil_mode ? stride - 1 : 0);
  if (span < 0) return 0;
  int64_t out = span / stride + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

// out = window maxima, indices = flat position ih * W + iw of each maximum in its plane
// (int64; the first maximum wins, NaN counts as the largest value).
IRIS_DECLARE_KERNEL(max_pool2d_forward, void(const Tensor& x, const Pool2dParams& p,
                                             const Tensor& out, const Tensor& indices));
// dinp (overwritten) = dout routed to the saved indices.
IRIS_DECLARE_KERNEL(max_pool2d_backward,
                    void(const Tensor& dout, const Tensor& indices, const Tensor& dinp));
IRIS_DECLARE_KERNEL(avg_pool2d_forward,
                    void(const Tensor& x, const Pool2dParams& p, const Tensor& out));
IRIS_DECLARE_KERNEL(avg_pool2d_backward,
                    void(const Tensor& dout, const Pool2dParams& p, const Tensor& dinp));
// Bins [floor(i * H / OH), ceil((i + 1) * H / OH)) per output row (likewise columns).
IRIS_DECLARE_KERNEL(adaptive_avg_pool2d_forward, void(const Tensor& x, const Tensor& out));
IRIS_DECLARE_KERNEL(adaptive_avg_pool2d_backward, void(const Tensor& dout, const Tensor& dinp));

}  // namespace iris::kernels
