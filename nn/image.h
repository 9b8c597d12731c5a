#pragma once
// Images for the data pipeline: decoding (JPEG, PNG, BMP through stb_image), writing
// (PNG, BMP, JPEG through stb_image_write) and torchvision's transforms on float
// tensors [..., C, H, W] with values in [0, 1].
//
// Transforms run on one image on the calling thread (the data loader's workers
// parallelise across images) and are not recorded by autograd: they are data
// preparation, returning new tensors. Random transforms take a fixed number of Philox draws
// from the Generator per call, so an augmentation is a function of the generator's
// (seed, offset) alone; give each sample its own Generator (seeded with
// BatchRequest::sample_seed) and the result does not depend on thread timing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"

namespace iris::nn {

// 8-bit pixels, row-major HWC (channels 1 = grey, 3 = RGB, 4 = RGBA).
struct Image8 {
  int64_t height = 0, width = 0, channels = 0;
  std::vector<uint8_t> pixels;  // height * width * channels
};

// ---- decoding ----
// channels: 3 = RGB (grey is replicated, alpha dropped), 1 = grey (luma), 4 = RGBA.
// An unreadable, corrupt or truncated file throws iris::Error naming the file and the
// reason ("read_image: cat.jpg: truncated JPEG: ...", or stb_image's own reason).
Image8 read_image_u8(const std::string& path, int channels = 3);
// Bytes in memory; `name` stands for the source in error messages.
Image8 decode_image_u8(const void* data, size_t size, const std::string& name, int channels = 3);
// float32 [C, H, W] in [0, 1] (value / 255, as torchvision's ToTensor).
Tensor read_image(const std::string& path, int channels = 3);
Tensor decode_image(const void* data, size_t size, const std::string& name, int channels = 3);

// ---- conversion ----
Tensor to_tensor(const Image8& image);  // float32 [C, H, W], value / 255
// A [C, H, W] float tensor (C in {1, 3, 4}) to 8 bits: clamp to [0, 1], round(v * 255).
Image8 to_image8(const Tensor& chw);

// ---- writing ----
// The format follows the extension: .png, .bmp, .jpg / .jpeg (jpeg_quality 1..100).
// Failures (unknown extension, unwritable path, full disk) throw naming the file.
void write_image(const std::string& path, const Image8& image, int jpeg_quality = 95);
void write_image(const std::string& path, const Tensor& chw, int jpeg_quality = 95);
std::vector<uint8_t> encode_png(const Image8& image);

// ---- transforms on float32 / float64 tensors [..., H, W] (any strides) ----
// Antialiased resize to [..., out_h, out_w]: a triangle filter whose support widens by the
// scale factor when shrinking, i.e. PIL's resize(BILINEAR) and torchvision's
// resize(antialias=True); plain bilinear (half-pixel centres) when enlarging.
Tensor resize(const Tensor& image, int64_t out_h, int64_t out_w);
// torchvision Resize(size): the shorter side becomes `size`, the longer one
// int(size * long / short).
Tensor resize_shorter(const Tensor& image, int64_t size);
// torchvision F.crop: rows [top, top + height), columns [left, left + width); where the box
// leaves the image the result is zero (so negative top/left pad).
Tensor crop(const Tensor& image, int64_t top, int64_t left, int64_t height, int64_t width);
// torchvision F.center_crop: top = round((H - height) / 2) (half to even), zero-padded
// when the crop is larger than the image.
Tensor center_crop(const Tensor& image, int64_t height, int64_t width);
Tensor hflip(const Tensor& image);

struct CropBox {
  int64_t top = 0, left = 0, height = 0, width = 0;
};
struct RandomResizedCropOptions {
  double scale_min = 0.08, scale_max = 1.0;             // fraction of the image area
  double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;  // width / height
};
// torchvision RandomResizedCrop.get_params: ten tries of a random area and log-uniform
// aspect ratio, then the centre crop of the clamped ratio. Takes kRandomResizedCropDraws
// draws from gen.
CropBox random_resized_crop_box(int64_t height, int64_t width, Generator& gen,
                                const RandomResizedCropOptions& options = {});
inline constexpr uint64_t kRandomResizedCropDraws = 40;
// crop(random box), then resize to (out_h, out_w).
Tensor random_resized_crop(const Tensor& image, int64_t out_h, int64_t out_w, Generator& gen,
                           const RandomResizedCropOptions& options = {});
// Flips with probability p (one draw from gen, taken whatever p is).
Tensor random_hflip(const Tensor& image, Generator& gen, double p = 0.5);

// (x - mean[c]) / std[c] over the channel dim -3 of [C, H, W] or [B, C, H, W].
Tensor normalize(const Tensor& image, const std::vector<double>& mean,
                 const std::vector<double>& std);
// ImageNet's statistics, the usual choice for pretrained-style models.
inline const std::vector<double> kImageNetMean = {0.485, 0.456, 0.406};
inline const std::vector<double> kImageNetStd = {0.229, 0.224, 0.225};

}  // namespace iris::nn
