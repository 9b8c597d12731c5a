// Convolution and pooling ops with their derivatives. Inputs are made dense here (without
// recording the copy) so the kernels see row-major NCHW; unbatched inputs gain and lose a
// batch dim of one around the batched op.
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "autograd/autocast.h"
#include "autograd/conv.h"
#include "autograd/function.h"
#include "autograd/op_util.h"
#include "autograd/ops.h"
#include "kernels/conv.h"
#include "kernels/pool.h"

namespace iris {

using autograd::BackwardCtx;
using autograd::dense;
using autograd::Saved;
using kernels::Conv2dParams;
using kernels::Pool2dParams;

namespace {

std::string pair_str(std::array<int64_t, 2> v) { return detail::cat("(", v[0], ", ", v[1], ")"); }

void check_same_kind(const char* op, const Tensor& a, const char* a_name, const Tensor& b,
                     const char* b_name) {
  IRIS_CHECK(a.dtype() == b.dtype(), op, ": dtype mismatch: ", a_name, " ", a.desc(), " and ",
             b_name, " ", b.desc());
  IRIS_CHECK(a.device() == b.device(), op, ": device mismatch: ", a_name, " ", a.desc(), " and ",
             b_name, " ", b.desc());
}

void check_input_rank(const char* op, const Tensor& x) {
  IRIS_CHECK(x.defined(), op, ": undefined input");
  IRIS_CHECK(x.dim() == 3 || x.dim() == 4, op,
             ": expected a 3-D (C, H, W) or 4-D (N, C, H, W) input, got ", x.desc());
  IRIS_CHECK(is_floating(x.dtype()), op, ": expected a floating input, got ", x.desc());
}

// Runs a batched op on x, adding and removing a leading batch dim for unbatched x.
template <class Fn>
auto with_batch_dim(const Tensor& x, Fn&& fn) {
  if (x.dim() == 4) return fn(x);
  auto result = fn(x.unsqueeze(0));
  if constexpr (std::is_same_v<decltype(result), Tensor>) {
    return result.squeeze(0);
  } else {
    return std::make_pair(result.first.squeeze(0), result.second.squeeze(0));
  }
}

Conv2dParams conv_params(const Tensor& input, const Tensor& weight, const Tensor& bias,
                         std::array<int64_t, 2> stride, std::array<int64_t, 2> padding,
                         std::array<int64_t, 2> dilation, int64_t groups) {
  const char* op = "conv2d";
  check_input_rank(op, input);
  IRIS_CHECK(weight.defined() && weight.dim() == 4, op,
             ": expected a 4-D weight (Cout, Cin/groups, kH, kW), got ",
             weight.defined() ? weight.desc() : "undefined");
  check_same_kind(op, input, "input", weight, "weight");
  IRIS_CHECK(stride[0] > 0 && stride[1] > 0, op, ": stride must be positive, got ",
             pair_str(stride));
  IRIS_CHECK(padding[0] >= 0 && padding[1] >= 0, op, ": padding must be non-negative, got ",
             pair_str(padding));
  IRIS_CHECK(dilation[0] > 0 && dilation[1] > 0, op, ": dilation must be positive, got ",
             pair_str(dilation));
  IRIS_CHECK(groups > 0, op, ": groups must be positive, got ", groups);
  const int64_t Cin = input.size(-3), Cout = weight.size(0);
  IRIS_CHECK(Cin % groups == 0, op, ": input channels ", Cin,
             " are not divisible by groups=", groups, " (input ", input.desc(), ")");
  IRIS_CHECK(Cout % groups == 0, op, ": output channels ", Cout,
             " are not divisible by groups=", groups, " (weight ", weight.desc(), ")");
  IRIS_CHECK(weight.size(1) * groups == Cin, op, ": weight ", weight.desc(),
             " with groups=", groups, " expects ", weight.size(1) * groups,
             " input channels, but input ", input.desc(), " has ", Cin);
  IRIS_CHECK(weight.size(2) > 0 && weight.size(3) > 0 && Cout > 0, op, ": empty weight ",
             weight.desc());
  if (bias.defined()) {
    check_same_kind(op, input, "input", bias, "bias");
    IRIS_CHECK(bias.dim() == 1 && bias.size(0) == Cout, op, ": expected a bias of shape [", Cout,
               "], got ", bias.desc());
  }
  return {stride[0], stride[1], padding[0], padding[1], dilation[0], dilation[1], groups};
}

// {dinp, dweight, dbias}, each only where needed; x and w are the dense operands.
std::vector<Tensor> conv2d_grads(const BackwardCtx& c, const Saved& x, const Saved& w,
                                 const Shape& x_shape, const Shape& w_shape,
                                 const Conv2dParams& p) {
  const Tensor dout = c.grad().contiguous();
  const Device dev = dout.device();
  std::vector<Tensor> grads(3);
  if (c.need(0)) {
    grads[0] = Tensor::empty(x_shape, dout.dtype(), dev);
    kernels::conv2d_backward_data_table().get(dev)(dout, w.get(), p, grads[0]);
  }
  if (c.need(1)) {
    grads[1] = Tensor::empty(w_shape, dout.dtype(), dev);
    if (c.need(2)) grads[2] = Tensor::empty({w_shape[0]}, dout.dtype(), dev);
    kernels::conv2d_backward_weight_table().get(dev)(dout, x.get(), p, grads[1], grads[2]);
  } else if (c.need(2)) {
    grads[2] = sum(dout, {0, 2, 3});
  }
  return grads;
}

Tensor conv2d_batched(const Tensor& input, const Tensor& weight, const Tensor& bias,
                      const Conv2dParams& p) {
  const int64_t OH =
      kernels::conv_output_size(input.size(2), weight.size(2), p.stride_h, p.pad_h, p.dilation_h);
  const int64_t OW =
      kernels::conv_output_size(input.size(3), weight.size(3), p.stride_w, p.pad_w, p.dilation_w);
  IRIS_CHECK(OH > 0 && OW > 0, "conv2d: output size ", OH, "x", OW, " is empty: input ",
             input.desc(), ", weight ", weight.desc(), ", padding (", p.pad_h, ", ", p.pad_w,
             "), dilation (", p.dilation_h, ", ", p.dilation_w, ")");
  const Tensor x = dense(input), w = dense(weight), b = dense(bias);
  Tensor out = Tensor::empty({x.size(0), w.size(0), OH, OW}, x.dtype(), x.device());
  kernels::conv2d_forward_table().get(x.device())(x, w, b, p, out);
  if (autograd::any_requires_grad({&input, &weight, &bias})) {
    // Each operand is needed only for the other's gradient.
    autograd::record(
        "conv2d", {input, weight, bias}, {out},
        [X = Saved(weight.requires_grad() ? x : Tensor()),
         Wt = Saved(input.requires_grad() ? w : Tensor()), x_shape = x.shape(), w_shape = w.shape(),
         p](const BackwardCtx& c) { return conv2d_grads(c, X, Wt, x_shape, w_shape, p); });
  }
  return out;
}

// ---- pooling ----

void check_pool_sizes(const char* op, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                      std::array<int64_t, 2> padding, std::array<int64_t, 2> dilation) {
  IRIS_CHECK(kernel[0] > 0 && kernel[1] > 0, op, ": kernel size must be positive, got ",
             pair_str(kernel));
  IRIS_CHECK(stride[0] > 0 && stride[1] > 0, op, ": stride must be positive, got ",
             pair_str(stride));
  IRIS_CHECK(dilation[0] > 0 && dilation[1] > 0, op, ": dilation must be positive, got ",
             pair_str(dilation));
  IRIS_CHECK(padding[0] >= 0 && padding[1] >= 0 && padding[0] <= kernel[0] / 2 &&
                 padding[1] <= kernel[1] / 2,
             op, ": padding must be between 0 and half the kernel size, got padding ",
             pair_str(padding), " for kernel ", pair_str(kernel));
}

// Validated parameters and the output shape of a batched pooling op.
Shape pool_output_shape(const char* op, const Tensor& x, const Pool2dParams& p) {
  IRIS_CHECK(x.size(1) > 0 && x.size(2) > 0 && x.size(3) > 0, op,
             ": expected non-empty channel and spatial dims, got ", x.desc());
  const int64_t OH = kernels::pool_output_size(x.size(2), p.kernel_h, p.stride_h, p.pad_h,
                                               p.dilation_h, p.ceil_mode);
  const int64_t OW = kernels::pool_output_size(x.size(3), p.kernel_w, p.stride_w, p.pad_w,
                                               p.dilation_w, p.ceil_mode);
  IRIS_CHECK(OH > 0 && OW > 0, op, ": output size ", OH, "x", OW, " is too small for input ",
             x.desc(), " with kernel (", p.kernel_h, ", ", p.kernel_w, "), stride (", p.stride_h,
             ", ", p.stride_w, "), padding (", p.pad_h, ", ", p.pad_w, "), dilation (",
             p.dilation_h, ", ", p.dilation_w, ")");
  return {x.size(0), x.size(1), OH, OW};
}

std::pair<Tensor, Tensor> max_pool2d_batched(const Tensor& input, const Pool2dParams& p) {
  const Shape out_shape = pool_output_shape("max_pool2d", input, p);
  const Tensor x = dense(input);
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  Tensor indices = Tensor::empty(out_shape, DType::i64, x.device());
  kernels::max_pool2d_forward_table().get(x.device())(x, p, out, indices);
  if (autograd::any_requires_grad({&input}))
    autograd::record("max_pool2d", {input}, {out},
                     [I = Saved(indices), x_shape = x.shape()](const BackwardCtx& c) {
                       const Tensor dout = c.grad().contiguous();
                       Tensor dinp = Tensor::empty(x_shape, dout.dtype(), dout.device());
                       kernels::max_pool2d_backward_table().get(dout.device())(dout, I.get(), dinp);
                       return std::vector<Tensor>{dinp};
                     });
  return {out, indices};
}

Tensor avg_pool2d_batched(const Tensor& input, const Pool2dParams& p) {
  const Shape out_shape = pool_output_shape("avg_pool2d", input, p);
  const Tensor x = dense(input);
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  kernels::avg_pool2d_forward_table().get(x.device())(x, p, out);
  if (autograd::any_requires_grad({&input}))
    autograd::record("avg_pool2d", {input}, {out}, [p, x_shape = x.shape()](const BackwardCtx& c) {
      const Tensor dout = c.grad().contiguous();
      Tensor dinp = Tensor::empty(x_shape, dout.dtype(), dout.device());
      kernels::avg_pool2d_backward_table().get(dout.device())(dout, p, dinp);
      return std::vector<Tensor>{dinp};
    });
  return out;
}

Tensor adaptive_avg_pool2d_batched(const Tensor& input, std::array<int64_t, 2> output_size) {
  const char* op = "adaptive_avg_pool2d";
  IRIS_CHECK(input.size(1) > 0 && input.size(2) > 0 && input.size(3) > 0, op,
             ": expected non-empty channel and spatial dims, got ", input.desc());
  const Tensor x = dense(input);
  Tensor out =
      Tensor::empty({x.size(0), x.size(1), output_size[0], output_size[1]}, x.dtype(), x.device());
  kernels::adaptive_avg_pool2d_forward_table().get(x.device())(x, out);
  if (autograd::any_requires_grad({&input}))
    autograd::record(op, {input}, {out}, [x_shape = x.shape()](const BackwardCtx& c) {
      const Tensor dout = c.grad().contiguous();
      Tensor dinp = Tensor::empty(x_shape, dout.dtype(), dout.device());
      kernels::adaptive_avg_pool2d_backward_table().get(dout.device())(dout, dinp);
      return std::vector<Tensor>{dinp};
    });
  return out;
}

}  // namespace

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias,
              std::array<int64_t, 2> stride, std::array<int64_t, 2> padding,
              std::array<int64_t, 2> dilation, int64_t groups) {
  const Conv2dParams p = conv_params(input, weight, bias, stride, padding, dilation, groups);
  if (const auto dt = autocast_dtype(input, weight)) {
    // On the tensor cores in 16 bits (fp32 accumulation), returned as float32; the bias is
    // added in float32, as linear does.
    const Tensor y =
        conv2d(input.to(*dt), weight.to(*dt), Tensor(), stride, padding, dilation, groups)
            .to(DType::f32);
    return bias.defined() ? y + bias.reshape({-1, 1, 1}) : y;
  }
  return with_batch_dim(input, [&](const Tensor& x) { return conv2d_batched(x, weight, bias, p); });
}

std::pair<Tensor, Tensor> max_pool2d_with_indices(const Tensor& x, std::array<int64_t, 2> kernel,
                                                  std::optional<std::array<int64_t, 2>> stride,
                                                  std::array<int64_t, 2> padding,
                                                  std::array<int64_t, 2> dilation, bool ceil_mode) {
  const char* op = "max_pool2d";
  check_input_rank(op, x);
  const std::array<int64_t, 2> st = stride.value_or(kernel);
  check_pool_sizes(op, kernel, st, padding, dilation);
  Pool2dParams p;
  p.kernel_h = kernel[0], p.kernel_w = kernel[1], p.stride_h = st[0], p.stride_w = st[1];
  p.pad_h = padding[0], p.pad_w = padding[1], p.dilation_h = dilation[0];
  p.dilation_w = dilation[1], p.ceil_mode = ceil_mode;
  return with_batch_dim(x, [&](const Tensor& xb) { return max_pool2d_batched(xb, p); });
}

Tensor max_pool2d(const Tensor& x, std::array<int64_t, 2> kernel,
                  std::optional<std::array<int64_t, 2>> stride, std::array<int64_t, 2> padding,
                  std::array<int64_t, 2> dilation, bool ceil_mode) {
  return max_pool2d_with_indices(x, kernel, stride, padding, dilation, ceil_mode).first;
}

Tensor avg_pool2d(const Tensor& x, std::array<int64_t, 2> kernel,
                  std::optional<std::array<int64_t, 2>> stride, std::array<int64_t, 2> padding,
                  bool ceil_mode, bool count_include_pad, std::optional<int64_t> divisor_override) {
  const char* op = "avg_pool2d";
  check_input_rank(op, x);
  const std::array<int64_t, 2> st = stride.value_or(kernel);
  check_pool_sizes(op, kernel, st, padding, {1, 1});
  IRIS_CHECK(!divisor_override || *divisor_override != 0, op, ": divisor must not be zero");
  Pool2dParams p;
  p.kernel_h = kernel[0], p.kernel_w = kernel[1], p.stride_h = st[0], p.stride_w = st[1];
  p.pad_h = padding[0], p.pad_w = padding[1], p.ceil_mode = ceil_mode;
  p.count_include_pad = count_include_pad, p.divisor_override = divisor_override.value_or(0);
  return with_batch_dim(x, [&](const Tensor& xb) { return avg_pool2d_batched(xb, p); });
}

Tensor adaptive_avg_pool2d(const Tensor& x, std::array<int64_t, 2> output_size) {
  const char* op = "adaptive_avg_pool2d";
  check_input_rank(op, x);
  IRIS_CHECK(output_size[0] >= 0 && output_size[1] >= 0, op,
             ": output size must be non-negative, got ", pair_str(output_size), " for input ",
             x.desc());
  return with_batch_dim(
      x, [&](const Tensor& xb) { return adaptive_avg_pool2d_batched(xb, output_size); });
}

}  // namespace iris
