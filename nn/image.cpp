#include "nn/image.h"

#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "autograd/ops.h"
#include "core/philox.h"

namespace iris::nn {
namespace {

// ---- files ----

std::vector<uint8_t> read_file(const std::string& path, const char* op) {
  std::unique_ptr<std::FILE, int (*)(std::FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) IRIS_FAIL(op, ": ", path, ": cannot open (", std::strerror(errno), ")");
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f.get())) > 0) bytes.insert(bytes.end(), buf, buf + n);
  if (std::ferror(f.get())) IRIS_FAIL(op, ": ", path, ": read error (", std::strerror(errno), ")");
  return bytes;
}

// Writes through a temporary file and a rename, so a failed write (full disk) leaves any
// previous file intact.
void write_file(const std::string& path, const std::vector<uint8_t>& bytes, const char* op) {
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) IRIS_FAIL(op, ": ", path, ": cannot create (", std::strerror(errno), ")");
  const bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  const int saved_errno = errno;
  if (std::fclose(f) != 0 || !ok) {
    std::remove(tmp.c_str());
    IRIS_FAIL(op, ": ", path, ": write failed (", std::strerror(ok ? errno : saved_errno), ")");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int e = errno;
    std::remove(tmp.c_str());
    IRIS_FAIL(op, ": ", path, ": cannot rename the temporary file (", std::strerror(e), ")");
  }
}

// ---- completeness checks stb_image does not make ----

uint32_t le32(const uint8_t* p) { return p[0] | p[1] << 8 | p[2] << 16 | uint32_t(p[3]) << 24; }
uint16_t le16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | p[1] << 8); }

// stb_image decodes a JPEG cut short as if the missing bytes were zero, so the marker
// segments are walked to the end-of-image marker first.
void check_jpeg_complete(const uint8_t* p, size_t n, const std::string& name) {
  auto truncated = [&](const char* where) {
    IRIS_FAIL("read_image: ", name, ": truncated JPEG (", where, " at byte ", n, ")");
  };
  size_t i = 2;
  while (true) {
    if (i >= n) truncated("no end-of-image marker");
    if (p[i] != 0xFF) return;  // not a marker: stb_image reports the corruption itself
    while (i < n && p[i] == 0xFF) ++i;
    if (i >= n) truncated("file ends inside a marker");
    const uint8_t marker = p[i++];
    if (marker == 0xD9) return;                                          // end of image
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue;  // no length
    if (i + 2 > n) truncated("file ends inside a segment header");
    const size_t len = static_cast<size_t>(p[i]) << 8 | p[i + 1];
    if (len < 2 || i + len > n) truncated("file ends inside a segment");
    i += len;
    if (marker == 0xDA) {  // entropy-coded data runs to the next marker other than RSTn
      while (true) {
        if (i + 1 >= n) truncated("file ends inside the image data");
        const uint8_t next = p[i + 1];
        if (p[i] == 0xFF && next != 0x00 && !(next >= 0xD0 && next <= 0xD7)) break;
        ++i;
      }
    }
  }
}

uint32_t be32(const uint8_t* p) { return uint32_t(p[0]) << 24 | p[1] << 16 | p[2] << 8 | p[3]; }

// stb_image accepts a PNG whose last chunks are missing once the pixels are complete:
// the chunks must run, whole, to IEND.
void check_png_complete(const uint8_t* p, size_t n, const std::string& name) {
  size_t i = 8;  // the signature
  while (true) {
    if (i + 8 > n)
      IRIS_FAIL("read_image: ", name, ": truncated PNG (no IEND chunk; ", n, " bytes)");
    const size_t len = be32(p + i);
    const bool iend = std::memcmp(p + i + 4, "IEND", 4) == 0;
    if (len > n || i + 12 + len > n)
      IRIS_FAIL("read_image: ", name, ": truncated PNG (a chunk runs past the end at byte ", n,
                ")");
    i += 12 + len;
    if (iend) return;
  }
}

// stb_image also reads past the end of a BMP as zeros: an uncompressed one must hold
// every row its header announces.
void check_bmp_complete(const uint8_t* p, size_t n, const std::string& name) {
  if (n < 34 || le32(p + 14) < 40) return;  // old OS/2 headers: left to stb_image
  const uint32_t data_offset = le32(p + 10);
  const int64_t width = static_cast<int32_t>(le32(p + 18));
  const int64_t height = std::llabs(static_cast<int32_t>(le32(p + 22)));
  const int64_t bits = le16(p + 28);
  const uint32_t compression = le32(p + 30);
  if ((compression != 0 && compression != 3) || width <= 0 || bits <= 0) return;
  const int64_t row_bytes = (bits * width + 31) / 32 * 4;
  const int64_t needed = static_cast<int64_t>(data_offset) + row_bytes * height;
  if (static_cast<int64_t>(n) < needed)
    IRIS_FAIL("read_image: ", name, ": truncated BMP (", n, " bytes, its header needs ", needed,
              ")");
}

// ---- encoding ----

void append_bytes(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  const auto* bytes = static_cast<const uint8_t*>(data);
  out->insert(out->end(), bytes, bytes + size);
}

void check_image8(const Image8& image, const char* op) {
  IRIS_CHECK(
      image.height > 0 && image.width > 0 && image.height <= INT_MAX && image.width <= INT_MAX, op,
      ": bad image size ", image.height, "x", image.width);
  IRIS_CHECK(image.channels >= 1 && image.channels <= 4, op, ": bad channel count ",
             image.channels);
  IRIS_CHECK(
      static_cast<int64_t>(image.pixels.size()) == image.height * image.width * image.channels, op,
      ": ", image.pixels.size(), " pixel bytes for ", image.height, "x", image.width, "x",
      image.channels);
}

std::string lower_extension(const std::string& path) {
  const size_t dot = path.find_last_of('.');
  const size_t slash = path.find_last_of('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string ext = path.substr(dot + 1);
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

// ---- transforms ----

void check_float_image(const Tensor& x, const char* op) {
  IRIS_CHECK(x.defined(), op, ": undefined tensor");
  IRIS_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::f64, op,
             ": expected a float32 or float64 image, got ", x.desc());
  IRIS_CHECK(x.device().is_cpu(), op, ": images are transformed on the CPU, got ", x.desc());
  IRIS_CHECK(x.dim() >= 2, op, ": expected [..., H, W], got ", x.desc());
  IRIS_CHECK(x.size(-1) > 0 && x.size(-2) > 0, op, ": empty image ", x.desc());
}

Shape with_hw(const Tensor& x, int64_t h, int64_t w) {
  Shape s = x.shape();
  s[s.size() - 2] = h;
  s[s.size() - 1] = w;
  return s;
}

// PIL's precompute_coeffs for the triangle filter: output pixel i reads inputs
// [first[i], first[i] + count[i]) with normalised weights; the filter widens by the
// scale factor when shrinking (the antialiasing).
struct ResampleTaps {
  std::vector<int64_t> first, count;
  std::vector<double> weights;  // out_size * max_taps
  int64_t max_taps = 0;
};

ResampleTaps triangle_taps(int64_t in_size, int64_t out_size) {
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  const double filter_scale = std::max(scale, 1.0);
  const double support = 1.0 * filter_scale;  // the triangle's support is 1
  ResampleTaps taps;
  taps.max_taps = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  taps.first.resize(out_size);
  taps.count.resize(out_size);
  taps.weights.assign(out_size * taps.max_taps, 0.0);
  for (int64_t o = 0; o < out_size; ++o) {
    const double center = (static_cast<double>(o) + 0.5) * scale;
    // (int) truncates toward zero as in PIL; the clamps follow.
    int64_t lo = static_cast<int64_t>(center - support + 0.5);
    if (lo < 0) lo = 0;
    int64_t hi = static_cast<int64_t>(center + support + 0.5);
    if (hi > in_size) hi = in_size;
    const int64_t n = std::min(hi - lo, taps.max_taps);
    double* w = &taps.weights[o * taps.max_taps];
    double total = 0;
    for (int64_t k = 0; k < n; ++k) {
      const double t = std::fabs((static_cast<double>(k + lo) - center + 0.5) / filter_scale);
      w[k] = t < 1.0 ? 1.0 - t : 0.0;
      total += w[k];
    }
    if (total != 0.0)
      for (int64_t k = 0; k < n; ++k) w[k] /= total;
    taps.first[o] = lo;
    taps.count[o] = n;
  }
  return taps;
}

// One separable pass over `planes` images: along rows (horizontal) or columns.
template <class T>
void resample_pass(const T* in, T* out, int64_t planes, int64_t in_h, int64_t in_w, int64_t out_h,
                   int64_t out_w, bool horizontal, const ResampleTaps& taps) {
  for (int64_t p = 0; p < planes; ++p) {
    const T* src = in + p * in_h * in_w;
    T* dst = out + p * out_h * out_w;
    for (int64_t y = 0; y < out_h; ++y) {
      for (int64_t x = 0; x < out_w; ++x) {
        const int64_t o = horizontal ? x : y;
        const double* w = &taps.weights[o * taps.max_taps];
        double acc = 0;
        if (horizontal) {
          const T* row = src + y * in_w + taps.first[o];
          for (int64_t k = 0; k < taps.count[o]; ++k) acc += static_cast<double>(row[k]) * w[k];
        } else {
          const T* col = src + taps.first[o] * in_w + x;
          for (int64_t k = 0; k < taps.count[o]; ++k)
            acc += static_cast<double>(col[k * in_w]) * w[k];
        }
        dst[y * out_w + x] = static_cast<T>(acc);
      }
    }
  }
}

template <class T>
Tensor resize_typed(const Tensor& x, int64_t out_h, int64_t out_w) {
  const int64_t in_h = x.size(-2), in_w = x.size(-1);
  const int64_t planes = x.numel() / (in_h * in_w);
  // Horizontal first, then vertical, each skipped when its size is unchanged (as PIL).
  Tensor cur = x;
  if (out_w != in_w) {
    Tensor next = Tensor::empty(with_hw(x, in_h, out_w), x.dtype());
    resample_pass(cur.data<T>(), next.data<T>(), planes, in_h, in_w, in_h, out_w, true,
                  triangle_taps(in_w, out_w));
    cur = next;
  }
  if (out_h != in_h) {
    Tensor next = Tensor::empty(with_hw(x, out_h, out_w), x.dtype());
    resample_pass(cur.data<T>(), next.data<T>(), planes, in_h, out_w, out_h, out_w, false,
                  triangle_taps(in_h, out_h));
    cur = next;
  }
  return cur.is_same(x) ? x.clone() : cur;
}

template <class T>
void crop_typed(const Tensor& x, const Tensor& out, int64_t top, int64_t left) {
  const int64_t in_h = x.size(-2), in_w = x.size(-1);
  const int64_t out_h = out.size(-2), out_w = out.size(-1);
  const int64_t planes = x.numel() / (in_h * in_w);
  const T* src = x.data<T>();
  T* dst = out.data<T>();
  std::fill(dst, dst + out.numel(), T(0));
  const int64_t y0 = std::max<int64_t>(0, -top), y1 = std::min(out_h, in_h - top);
  const int64_t x0 = std::max<int64_t>(0, -left), x1 = std::min(out_w, in_w - left);
  if (y0 >= y1 || x0 >= x1) return;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t y = y0; y < y1; ++y)
      std::copy(src + (p * in_h + y + top) * in_w + x0 + left,
                src + (p * in_h + y + top) * in_w + x1 + left, dst + (p * out_h + y) * out_w + x0);
}

template <class T>
void hflip_typed(const Tensor& x, const Tensor& out) {
  const int64_t w = x.size(-1), rows = x.numel() / w;
  const T* src = x.data<T>();
  T* dst = out.data<T>();
  for (int64_t r = 0; r < rows; ++r) std::reverse_copy(src + r * w, src + (r + 1) * w, dst + r * w);
}

// Python's round(): half to even (the default floating-point rounding mode).
int64_t round_half_even(double v) { return static_cast<int64_t>(std::nearbyint(v)); }

}  // namespace

// ---- decoding ----

Image8 decode_image_u8(const void* data, size_t size, const std::string& name, int channels) {
  IRIS_CHECK(channels == 1 || channels == 3 || channels == 4, "read_image: ", name,
             ": channels must be 1, 3 or 4, got ", channels);
  IRIS_CHECK(size > 0, "read_image: ", name, ": empty file");
  IRIS_CHECK(size <= static_cast<size_t>(INT_MAX), "read_image: ", name, ": file too large (", size,
             " bytes)");
  const auto* bytes = static_cast<const uint8_t*>(data);
  if (size >= 2 && bytes[0] == 0xFF && bytes[1] == 0xD8) check_jpeg_complete(bytes, size, name);
  if (size >= 2 && bytes[0] == 'B' && bytes[1] == 'M') check_bmp_complete(bytes, size, name);
  static constexpr uint8_t kPngSignature[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
  if (size >= 8 && std::memcmp(bytes, kPngSignature, 8) == 0) check_png_complete(bytes, size, name);
  int w = 0, h = 0, in_channels = 0;
  stbi_uc* px =
      stbi_load_from_memory(bytes, static_cast<int>(size), &w, &h, &in_channels, channels);
  if (px == nullptr) {
    const char* why = stbi_failure_reason();
    // stb_image names an unknown chunk by its type bytes, which may all be zero.
    IRIS_FAIL("read_image: ", name,
              ": cannot decode (stb_image: ", why && why[0] ? why : "corrupt or unsupported data",
              ")");
  }
  std::unique_ptr<stbi_uc, void (*)(void*)> owner(px, &stbi_image_free);
  Image8 image;
  image.height = h;
  image.width = w;
  image.channels = channels;
  image.pixels.assign(px, px + static_cast<size_t>(w) * h * channels);
  return image;
}

Image8 read_image_u8(const std::string& path, int channels) {
  const std::vector<uint8_t> bytes = read_file(path, "read_image");
  return decode_image_u8(bytes.data(), bytes.size(), path, channels);
}

Tensor read_image(const std::string& path, int channels) {
  return to_tensor(read_image_u8(path, channels));
}

Tensor decode_image(const void* data, size_t size, const std::string& name, int channels) {
  return to_tensor(decode_image_u8(data, size, name, channels));
}

// ---- conversion ----

Tensor to_tensor(const Image8& image) {
  check_image8(image, "to_tensor");
  const int64_t H = image.height, W = image.width, C = image.channels;
  Tensor out = Tensor::empty({C, H, W}, DType::f32);
  float* dst = out.data<float>();
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      for (int64_t c = 0; c < C; ++c)
        dst[(c * H + y) * W + x] = static_cast<float>(image.pixels[(y * W + x) * C + c]) / 255.0f;
  return out;
}

Image8 to_image8(const Tensor& chw) {
  check_float_image(chw, "to_image8");
  IRIS_CHECK(chw.dim() == 3 && chw.size(0) >= 1 && chw.size(0) <= 4,
             "to_image8: expected [C, H, W] with C in 1..4, got ", chw.desc());
  const Tensor x = chw.to(DType::f64).contiguous();
  const int64_t C = x.size(0), H = x.size(1), W = x.size(2);
  Image8 image;
  image.height = H;
  image.width = W;
  image.channels = C;
  image.pixels.resize(C * H * W);
  const double* src = x.data<double>();
  for (int64_t c = 0; c < C; ++c)
    for (int64_t y = 0; y < H; ++y)
      for (int64_t xx = 0; xx < W; ++xx) {
        const double v = src[(c * H + y) * W + xx];
        const double clamped = std::isnan(v) ? 0.0 : std::clamp(v, 0.0, 1.0);
        image.pixels[(y * W + xx) * C + c] = static_cast<uint8_t>(std::lround(clamped * 255.0));
      }
  return image;
}

// ---- writing ----

std::vector<uint8_t> encode_png(const Image8& image) {
  check_image8(image, "encode_png");
  std::vector<uint8_t> out;
  const int w = static_cast<int>(image.width), h = static_cast<int>(image.height);
  const int c = static_cast<int>(image.channels);
  IRIS_CHECK(stbi_write_png_to_func(&append_bytes, &out, w, h, c, image.pixels.data(), w * c),
             "encode_png: stb_image_write failed for a ", h, "x", w, "x", c, " image");
  return out;
}

void write_image(const std::string& path, const Image8& image, int jpeg_quality) {
  check_image8(image, "write_image");
  const std::string ext = lower_extension(path);
  const int w = static_cast<int>(image.width), h = static_cast<int>(image.height);
  const int c = static_cast<int>(image.channels);
  std::vector<uint8_t> bytes;
  int ok = 0;
  if (ext == "png") {
    bytes = encode_png(image);
    ok = 1;
  } else if (ext == "bmp") {
    ok = stbi_write_bmp_to_func(&append_bytes, &bytes, w, h, c, image.pixels.data());
  } else if (ext == "jpg" || ext == "jpeg") {
    IRIS_CHECK(jpeg_quality >= 1 && jpeg_quality <= 100, "write_image: ", path,
               ": jpeg_quality must be in [1, 100], got ", jpeg_quality);
    ok = stbi_write_jpg_to_func(&append_bytes, &bytes, w, h, c, image.pixels.data(), jpeg_quality);
  } else {
    IRIS_FAIL("write_image: ", path, ": unknown image extension '", ext,
              "' (expected .png, .bmp, .jpg or .jpeg)");
  }
  IRIS_CHECK(ok, "write_image: ", path, ": stb_image_write failed to encode");
  write_file(path, bytes, "write_image");
}

void write_image(const std::string& path, const Tensor& chw, int jpeg_quality) {
  write_image(path, to_image8(chw), jpeg_quality);
}

// ---- transforms ----

Tensor resize(const Tensor& image, int64_t out_h, int64_t out_w) {
  check_float_image(image, "resize");
  IRIS_CHECK(out_h > 0 && out_w > 0, "resize: output size must be positive, got ", out_h, "x",
             out_w, " for ", image.desc());
  const Tensor x = image.contiguous();
  return x.dtype() == DType::f32 ? resize_typed<float>(x, out_h, out_w)
                                 : resize_typed<double>(x, out_h, out_w);
}

Tensor resize_shorter(const Tensor& image, int64_t size) {
  check_float_image(image, "resize_shorter");
  IRIS_CHECK(size > 0, "resize_shorter: size must be positive, got ", size);
  const int64_t h = image.size(-2), w = image.size(-1);
  if (h <= w) return resize(image, size, std::max<int64_t>(1, size * w / h));
  return resize(image, std::max<int64_t>(1, size * h / w), size);
}

Tensor crop(const Tensor& image, int64_t top, int64_t left, int64_t height, int64_t width) {
  check_float_image(image, "crop");
  IRIS_CHECK(height > 0 && width > 0, "crop: size must be positive, got ", height, "x", width,
             " for ", image.desc());
  const Tensor x = image.contiguous();
  Tensor out = Tensor::empty(with_hw(x, height, width), x.dtype());
  if (x.dtype() == DType::f32)
    crop_typed<float>(x, out, top, left);
  else
    crop_typed<double>(x, out, top, left);
  return out;
}

Tensor center_crop(const Tensor& image, int64_t height, int64_t width) {
  check_float_image(image, "center_crop");
  IRIS_CHECK(height > 0 && width > 0, "center_crop: size must be positive, got ", height, "x",
             width, " for ", image.desc());
  const int64_t H = image.size(-2), W = image.size(-1);
  // torchvision pads a too-small side with (crop - size) // 2 zeros before the image.
  const int64_t top = height > H ? -((height - H) / 2) : round_half_even((H - height) / 2.0);
  const int64_t left = width > W ? -((width - W) / 2) : round_half_even((W - width) / 2.0);
  return crop(image, top, left, height, width);
}

Tensor hflip(const Tensor& image) {
  check_float_image(image, "hflip");
  const Tensor x = image.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  if (x.dtype() == DType::f32)
    hflip_typed<float>(x, out);
  else
    hflip_typed<double>(x, out);
  return out;
}

CropBox random_resized_crop_box(int64_t height, int64_t width, Generator& gen,
                                const RandomResizedCropOptions& o) {
  IRIS_CHECK(height > 0 && width > 0, "random_resized_crop: empty image ", height, "x", width);
  IRIS_CHECK(o.scale_min > 0 && o.scale_min <= o.scale_max && o.ratio_min > 0 &&
                 o.ratio_min <= o.ratio_max,
             "random_resized_crop: need 0 < scale_min <= scale_max and 0 < ratio_min <= "
             "ratio_max, got scale [",
             o.scale_min, ", ", o.scale_max, "] ratio [", o.ratio_min, ", ", o.ratio_max, "]");
  const uint64_t seed = gen.seed();
  const uint64_t base = gen.reserve(kRandomResizedCropDraws);
  auto draw = [&](uint64_t k) { return static_cast<double>(philox::uniform(seed, base + k)); };
  const double area = static_cast<double>(height) * static_cast<double>(width);
  const double log_lo = std::log(o.ratio_min), log_hi = std::log(o.ratio_max);
  static_assert(kRandomResizedCropDraws == 10 * 4, "ten tries of four draws");
  for (uint64_t attempt = 0; attempt < 10; ++attempt) {
    const double target = area * (o.scale_min + (o.scale_max - o.scale_min) * draw(4 * attempt));
    const double aspect = std::exp(log_lo + (log_hi - log_lo) * draw(4 * attempt + 1));
    const int64_t w = round_half_even(std::sqrt(target * aspect));
    const int64_t h = round_half_even(std::sqrt(target / aspect));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      // randint(0, size - crop + 1): uniform over the valid offsets.
      const auto top =
          static_cast<int64_t>(draw(4 * attempt + 2) * static_cast<double>(height - h + 1));
      const auto left =
          static_cast<int64_t>(draw(4 * attempt + 3) * static_cast<double>(width - w + 1));
      return CropBox{std::min(top, height - h), std::min(left, width - w), h, w};
    }
  }
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  int64_t w = width, h = height;
  if (in_ratio < o.ratio_min) {
    h = round_half_even(static_cast<double>(w) / o.ratio_min);
  } else if (in_ratio > o.ratio_max) {
    w = round_half_even(static_cast<double>(h) * o.ratio_max);
  }
  return CropBox{(height - h) / 2, (width - w) / 2, h, w};
}

Tensor random_resized_crop(const Tensor& image, int64_t out_h, int64_t out_w, Generator& gen,
                           const RandomResizedCropOptions& options) {
  check_float_image(image, "random_resized_crop");
  const CropBox box = random_resized_crop_box(image.size(-2), image.size(-1), gen, options);
  return resize(crop(image, box.top, box.left, box.height, box.width), out_h, out_w);
}

Tensor random_hflip(const Tensor& image, Generator& gen, double p) {
  check_float_image(image, "random_hflip");
  IRIS_CHECK(p >= 0 && p <= 1, "random_hflip: p must be in [0, 1], got ", p);
  const uint64_t seed = gen.seed();
  const uint64_t base = gen.reserve(1);
  return philox::uniform(seed, base) < p ? hflip(image) : image.contiguous().clone();
}

Tensor normalize(const Tensor& image, const std::vector<double>& mean,
                 const std::vector<double>& std) {
  check_float_image(image, "normalize");
  IRIS_CHECK(image.dim() == 3 || image.dim() == 4,
             "normalize: expected [C, H, W] or [B, C, H, W], got ", image.desc());
  const int64_t C = image.size(-3);
  IRIS_CHECK(static_cast<int64_t>(mean.size()) == C && static_cast<int64_t>(std.size()) == C,
             "normalize: ", mean.size(), " means and ", std.size(), " stds for ", C,
             " channels of ", image.desc());
  for (double s : std) IRIS_CHECK(s != 0.0, "normalize: a std of 0 for ", image.desc());
  const Tensor x = image.contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype());
  const int64_t hw = x.size(-1) * x.size(-2), planes = x.numel() / hw;
  auto run = [&](auto* src, auto* dst) {
    using T = std::remove_pointer_t<decltype(dst)>;
    for (int64_t p = 0; p < planes; ++p) {
      const T m = static_cast<T>(mean[p % C]), s = static_cast<T>(std[p % C]);
      for (int64_t i = 0; i < hw; ++i) dst[p * hw + i] = (src[p * hw + i] - m) / s;
    }
  };
  if (x.dtype() == DType::f32)
    run(x.data<float>(), out.data<float>());
  else
    run(x.data<double>(), out.data<double>());
  return out;
}

}  // namespace iris::nn
