#include "nn/layers_conv.h"

#include <cmath>

#include "autograd/ops.h"
#include "nn/init.h"

namespace iris::nn {
namespace {

std::string size2(const Size2& s) { return detail::cat("(", s[0], ", ", s[1], ")"); }

}  // namespace

Conv2d::Conv2d(int64_t in, int64_t out, Size2 kernel, Conv2dOptions opt, Generator* gen)
    : Conv2d("Conv2d", in, out, kernel, opt, gen) {}

Conv2d::Conv2d(const char* type_name, int64_t in, int64_t out, Size2 kernel, Conv2dOptions opt,
               Generator* gen)
    : Module(type_name), in_channels(in), out_channels(out), kernel_size(kernel), options(opt) {
  IRIS_CHECK(in > 0 && out > 0 && kernel[0] > 0 && kernel[1] > 0, type_name, ": in_channels ", in,
             ", out_channels ", out, " and kernel_size ", size2(kernel), " must be positive");
  IRIS_CHECK(opt.groups > 0 && in % opt.groups == 0 && out % opt.groups == 0, type_name,
             ": in_channels ", in, " and out_channels ", out, " must be divisible by groups ",
             opt.groups);
  IRIS_CHECK(opt.stride[0] > 0 && opt.stride[1] > 0 && opt.dilation[0] > 0 && opt.dilation[1] > 0 &&
                 opt.padding[0] >= 0 && opt.padding[1] >= 0,
             type_name, ": bad stride ", size2(opt.stride), ", padding ", size2(opt.padding),
             " or dilation ", size2(opt.dilation));
  weight = register_parameter("weight", empty({out, in / opt.groups, kernel[0], kernel[1]}));
  init::kaiming_uniform_(weight, std::sqrt(5.0), "fan_in", "leaky_relu", gen);
  if (opt.bias) {
    bias = register_parameter("bias", empty({out}));
    const double bound =
        1.0 / std::sqrt(static_cast<double>(init::fan_in_and_fan_out(weight).fan_in));
    init::uniform_(bias, -bound, bound, gen);
  }
}

Tensor Conv2d::forward(const Tensor& x) {
  IRIS_CHECK(x.defined() && (x.dim() == 3 || x.dim() == 4) && x.size(-3) == in_channels, repr(),
             ": expected input [N, ", in_channels, ", H, W] or [", in_channels, ", H, W], got ",
             x.defined() ? x.desc() : "undefined");
  return conv2d(x, weight, bias, options.stride, options.padding, options.dilation, options.groups);
}

std::string Conv2d::extra_repr() const {
  std::string s = detail::cat(in_channels, ", ", out_channels, ", kernel_size=", size2(kernel_size),
                              ", stride=", size2(options.stride));
  if (options.padding != Size2{0, 0}) s += ", padding=" + size2(options.padding);
  if (options.dilation != Size2{1, 1}) s += ", dilation=" + size2(options.dilation);
  if (options.groups != 1) s += detail::cat(", groups=", options.groups);
  if (!options.bias) s += ", bias=false";
  return s;
}

PatchEmbedding::PatchEmbedding(int64_t in_channels, int64_t dim, int64_t p, Generator* gen)
    : Conv2d("PatchEmbedding", in_channels, dim, Size2{p, p}, Conv2dOptions{.stride = {p, p}}, gen),
      patch(p) {}

Tensor PatchEmbedding::forward(const Tensor& x) {
  IRIS_CHECK(x.defined() && x.dim() == 4 && x.size(1) == in_channels && x.size(2) % patch == 0 &&
                 x.size(3) % patch == 0,
             repr(), ": expected images [B, ", in_channels, ", H, W] with H and W multiples of ",
             patch, ", got ", x.defined() ? x.desc() : "undefined");
  return Conv2d::forward(x).flatten(2).transpose(1, 2);
}

MaxPool2d::MaxPool2d(Size2 kernel, MaxPool2dOptions opt)
    : Module("MaxPool2d"), kernel_size(kernel), options(opt) {}

Tensor MaxPool2d::forward(const Tensor& x) {
  return max_pool2d(x, kernel_size, options.stride, options.padding, options.dilation,
                    options.ceil_mode);
}

std::string MaxPool2d::extra_repr() const {
  return detail::cat("kernel_size=", size2(kernel_size),
                     ", stride=", size2(options.stride.value_or(kernel_size)),
                     ", padding=", size2(options.padding), ", dilation=", size2(options.dilation),
                     ", ceil_mode=", options.ceil_mode ? "true" : "false");
}

AvgPool2d::AvgPool2d(Size2 kernel, AvgPool2dOptions opt)
    : Module("AvgPool2d"), kernel_size(kernel), options(opt) {}

Tensor AvgPool2d::forward(const Tensor& x) {
  return avg_pool2d(x, kernel_size, options.stride, options.padding, options.ceil_mode,
                    options.count_include_pad, options.divisor_override);
}

std::string AvgPool2d::extra_repr() const {
  return detail::cat("kernel_size=", size2(kernel_size),
                     ", stride=", size2(options.stride.value_or(kernel_size)),
                     ", padding=", size2(options.padding));
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(Size2 out) : Module("AdaptiveAvgPool2d"), output_size(out) {}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) { return adaptive_avg_pool2d(x, output_size); }

std::string AdaptiveAvgPool2d::extra_repr() const { return "output_size=" + size2(output_size); }

}  // namespace iris::nn
