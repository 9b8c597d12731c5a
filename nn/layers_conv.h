#pragma once
// Conv2d, the ViT patch embedding, and pooling modules (NCHW, torch.nn semantics).
#include <array>
#include <cstdint>
#include <optional>

#include "core/rng.h"
#include "nn/module.h"

namespace iris::nn {

using Size2 = std::array<int64_t, 2>;  // {height, width}

struct Conv2dOptions {
  Size2 stride{1, 1};
  Size2 padding{0, 0};
  Size2 dilation{1, 1};
  int64_t groups = 1;
  bool bias = true;
};

// weight [out, in / groups, kH, kW] ~ kaiming_uniform(a=sqrt(5)), bias [out] ~
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in / groups * kH * kW.
class Conv2d : public Module {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, Size2 kernel_size, Conv2dOptions opt = {},
         Generator* gen = nullptr);
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel_size, Conv2dOptions opt = {},
         Generator* gen = nullptr)
      : Conv2d(in_channels, out_channels, Size2{kernel_size, kernel_size}, opt, gen) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;

  int64_t in_channels, out_channels;
  Size2 kernel_size;
  Conv2dOptions options;
  Tensor weight, bias;

 protected:
  Conv2d(const char* type_name, int64_t in_channels, int64_t out_channels, Size2 kernel_size,
         Conv2dOptions opt, Generator* gen);
};

// ViT patch embedding: a Conv2d with kernel = stride = patch, then flatten(2).transpose(1, 2):
// [B, C, H, W] -> [B, (H/p)*(W/p), dim]. Its parameters are the conv's own ("weight",
// "bias"), so a ViT's `patch` child has torch's names patch.weight / patch.bias.
class PatchEmbedding : public Conv2d {
 public:
  PatchEmbedding(int64_t in_channels, int64_t dim, int64_t patch, Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  int64_t patch;
};

struct MaxPool2dOptions {
  std::optional<Size2> stride = std::nullopt;  // default: the kernel size
  Size2 padding{0, 0};
  Size2 dilation{1, 1};
  bool ceil_mode = false;
};

class MaxPool2d : public Module {
 public:
  explicit MaxPool2d(Size2 kernel_size, MaxPool2dOptions opt = {});
  explicit MaxPool2d(int64_t kernel_size, MaxPool2dOptions opt = {})
      : MaxPool2d(Size2{kernel_size, kernel_size}, opt) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  Size2 kernel_size;
  MaxPool2dOptions options;
};

struct AvgPool2dOptions {
  std::optional<Size2> stride = std::nullopt;  // default: the kernel size
  Size2 padding{0, 0};
  bool ceil_mode = false;
  bool count_include_pad = true;
  std::optional<int64_t> divisor_override = std::nullopt;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(Size2 kernel_size, AvgPool2dOptions opt = {});
  explicit AvgPool2d(int64_t kernel_size, AvgPool2dOptions opt = {})
      : AvgPool2d(Size2{kernel_size, kernel_size}, opt) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  Size2 kernel_size;
  AvgPool2dOptions options;
};

class AdaptiveAvgPool2d : public Module {
 public:
  explicit AdaptiveAvgPool2d(Size2 output_size);
  explicit AdaptiveAvgPool2d(int64_t output_size)
      : AdaptiveAvgPool2d(Size2{output_size, output_size}) {}
  Tensor forward(const Tensor& x) override;
  std::string extra_repr() const override;
  Size2 output_size;
};

}  // namespace iris::nn
