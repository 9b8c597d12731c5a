// Image decoding (PNG, BMP, JPEG written here), corrupt and truncated files, and the
// transforms against plain references, hand-computed cases and (when available) PIL.
#include <stdlib.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <tuple>

#include "nn/image.h"
#include "tests/support/testing.h"

namespace iris::nn {
namespace {

namespace fs = std::filesystem;

class ImageFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_temp_dir("iris_test_image");
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string path(const std::string& name) const { return dir_ + "/" + name; }
  std::string dir_;
};

// A smooth RGB test card (smooth so JPEG keeps it close).
Image8 test_card(int64_t h, int64_t w, int64_t c = 3) {
  Image8 im;
  im.height = h;
  im.width = w;
  im.channels = c;
  im.pixels.resize(h * w * c);
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int64_t k = 0; k < c; ++k)
        im.pixels[(y * w + x) * c + k] =
            static_cast<uint8_t>((40 + 150 * x / w + 60 * y / h + 30 * k) % 256);
  return im;
}

std::vector<uint8_t> read_bytes(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& p, const std::vector<uint8_t>& bytes, size_t n) {
  std::ofstream out(p, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(n));
}

TEST_F(ImageFiles, PngAndBmpRoundTripExactly) {
  for (const char* name : {"card.png", "card.bmp", "CARD.PNG"}) {
    for (int64_t c : {1, 3, 4}) {
      const Image8 im = test_card(5, 7, c);
      write_image(path(name), im);
      const Image8 back = read_image_u8(path(name), static_cast<int>(c));
      EXPECT_EQ(back.height, 5);
      EXPECT_EQ(back.width, 7);
      EXPECT_EQ(back.channels, c);
      EXPECT_EQ(back.pixels, im.pixels) << name << " channels " << c;
    }
  }
}

TEST_F(ImageFiles, ReadImageGivesChwFloatsInUnitRange) {
  const Image8 im = test_card(4, 6);
  write_image(path("a.png"), im);
  const Tensor t = read_image(path("a.png"));
  ASSERT_EQ(t.shape(), (Shape{3, 4, 6}));
  EXPECT_EQ(t.dtype(), DType::f32);
  const std::vector<float> v = t.to_vector<float>();
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < 4; ++y)
      for (int64_t x = 0; x < 6; ++x)
        EXPECT_EQ(v[(c * 4 + y) * 6 + x],
                  static_cast<float>(im.pixels[(y * 6 + x) * 3 + c]) / 255.0f);
}

TEST_F(ImageFiles, GreyIsReplicatedAndAlphaDropped) {
  write_image(path("grey.png"), test_card(3, 5, 1));
  const Image8 rgb = read_image_u8(path("grey.png"), 3);
  const Image8 grey = test_card(3, 5, 1);
  for (int64_t i = 0; i < 15; ++i)
    for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(rgb.pixels[i * 3 + c], grey.pixels[i]);
  const Image8 rgba = test_card(3, 5, 4);
  write_image(path("rgba.png"), rgba);
  const Image8 dropped = read_image_u8(path("rgba.png"), 3);
  for (int64_t i = 0; i < 15; ++i)
    for (int64_t c = 0; c < 3; ++c) EXPECT_EQ(dropped.pixels[i * 3 + c], rgba.pixels[i * 4 + c]);
}

TEST_F(ImageFiles, JpegRoundTripIsClose) {
  const Image8 im = test_card(24, 40);
  // Lossy: the mean error grows as the quality drops (and chroma is subsampled).
  for (auto [name, quality, max_err] : {std::tuple{"card.jpg", 100, 2.0}, {"card.jpeg", 90, 6.0}}) {
    write_image(path(name), im, quality);
    const Image8 back = read_image_u8(path(name));
    ASSERT_EQ(back.pixels.size(), im.pixels.size());
    double err = 0;
    for (size_t i = 0; i < im.pixels.size(); ++i) err += std::abs(back.pixels[i] - im.pixels[i]);
    EXPECT_LT(err / static_cast<double>(im.pixels.size()), max_err) << name;
  }
}

TEST_F(ImageFiles, TensorToImage8ClampsAndRounds) {
  const Tensor t = Tensor::from_vector<float>(
      {0.0f, 1.0f, 0.5f / 255, 1.5f / 255, -1.0f, 2.0f, NAN, 128.0f / 255}, {2, 2, 2});
  const Image8 im = to_image8(t);
  ASSERT_EQ(im.channels, 2);
  // HWC order of [c][y][x] values: pixel (y, x) = (t[0][y][x], t[1][y][x]).
  EXPECT_EQ(im.pixels, (std::vector<uint8_t>{0, 0, 255, 255, 1, 0, 2, 128}));
  const Image8 card = test_card(3, 4);
  EXPECT_EQ(to_image8(to_tensor(card)).pixels, card.pixels);
  EXPECT_EQ(to_image8(to_tensor(card).to(DType::f64)).pixels, card.pixels);
}

TEST_F(ImageFiles, UnreadableFilesNameTheFileAndTheReason) {
  EXPECT_IRIS_ERROR(read_image(path("missing.png")), "missing.png: cannot open");
  write_bytes(path("empty.png"), {}, 0);
  EXPECT_IRIS_ERROR(read_image(path("empty.png")), "empty.png: empty file");
  std::vector<uint8_t> junk(300);
  for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<uint8_t>(i * 37 + 11);
  write_bytes(path("junk.png"), junk, junk.size());
  EXPECT_IRIS_ERROR(read_image(path("junk.png")), "junk.png: cannot decode (stb_image: ");
  EXPECT_IRIS_ERROR(read_image(path("junk.png"), 2), "channels must be 1, 3 or 4");
}

TEST_F(ImageFiles, TruncatedPngIsAnError) {
  write_image(path("full.png"), test_card(32, 48));
  const std::vector<uint8_t> bytes = read_bytes(path("full.png"));
  EXPECT_NO_THROW(read_image(path("full.png")));
  // Cut inside the header, inside the image data, and inside or before the IEND chunk.
  for (size_t n : {size_t{20}, bytes.size() / 2, bytes.size() - 12, bytes.size() - 1}) {
    write_bytes(path("cut.png"), bytes, n);
    EXPECT_IRIS_ERROR(read_image(path("cut.png")), "cut.png: truncated PNG") << "cut at " << n;
  }
}

TEST_F(ImageFiles, TruncatedJpegIsAnError) {
  write_image(path("full.jpg"), test_card(32, 48), 90);
  const std::vector<uint8_t> bytes = read_bytes(path("full.jpg"));
  EXPECT_NO_THROW(read_image(path("full.jpg")));
  for (size_t n : {size_t{4}, size_t{100}, bytes.size() / 2, bytes.size() - 2}) {
    write_bytes(path("cut.jpg"), bytes, n);
    EXPECT_IRIS_ERROR(read_image(path("cut.jpg")), "cut.jpg: truncated JPEG") << "cut at " << n;
  }
  // Bytes after the end-of-image marker are allowed, as decoders do.
  std::vector<uint8_t> padded = bytes;
  padded.insert(padded.end(), {0, 0, 0, 0});
  write_bytes(path("padded.jpg"), padded, padded.size());
  EXPECT_NO_THROW(read_image(path("padded.jpg")));
}

TEST_F(ImageFiles, TruncatedBmpIsAnError) {
  write_image(path("full.bmp"), test_card(16, 10));
  const std::vector<uint8_t> bytes = read_bytes(path("full.bmp"));
  for (size_t n : {bytes.size() - 1, bytes.size() / 2, size_t{60}}) {
    write_bytes(path("cut.bmp"), bytes, n);
    EXPECT_IRIS_ERROR(read_image(path("cut.bmp")), "cut.bmp: truncated BMP") << "cut at " << n;
  }
}

TEST_F(ImageFiles, WriteErrorsNameThePath) {
  EXPECT_IRIS_ERROR(write_image(path("x.gif"), test_card(2, 2)), "x.gif: unknown image extension");
  EXPECT_IRIS_ERROR(write_image(path("no/such/dir/x.png"), test_card(2, 2)),
                    "no/such/dir/x.png: cannot create");
  EXPECT_IRIS_ERROR(write_image(path("x.jpg"), test_card(2, 2), 0), "jpeg_quality");
  Image8 bad = test_card(2, 2);
  bad.pixels.pop_back();
  EXPECT_IRIS_ERROR(write_image(path("x.png"), bad), "pixel bytes");
  // A failed write leaves no temporary file behind and an existing file intact.
  write_image(path("keep.png"), test_card(3, 3));
  EXPECT_FALSE(fs::exists(path("keep.png.tmp")));
}

// ---- resize ----

// PIL's antialiased bilinear written out plainly: out[i][j] = sum wy(i, y) wx(j, x) in[y][x].
std::vector<double> reference_weights(int64_t in, int64_t out, int64_t o) {
  const double scale = static_cast<double>(in) / static_cast<double>(out);
  const double widen = scale > 1 ? scale : 1.0;
  const double center = (static_cast<double>(o) + 0.5) * scale;
  std::vector<double> w(in, 0.0);
  double total = 0;
  for (int64_t k = 0; k < in; ++k) {
    // Only inputs whose rounded index window [center - widen, center + widen) holds them.
    const auto lo = static_cast<int64_t>(center - widen + 0.5);
    const auto hi = static_cast<int64_t>(center + widen + 0.5);
    if (k < lo || k >= hi) continue;
    const double d = std::abs((static_cast<double>(k) + 0.5 - center) / widen);
    w[k] = d < 1 ? 1 - d : 0;
    total += w[k];
  }
  for (double& x : w) x /= total;
  return w;
}

Tensor reference_resize(const Tensor& x, int64_t oh, int64_t ow) {
  const int64_t C = x.size(0), H = x.size(1), W = x.size(2);
  const std::vector<double> v = x.to_vector<double>();
  std::vector<double> out(C * oh * ow, 0.0);
  for (int64_t i = 0; i < oh; ++i) {
    const std::vector<double> wy = reference_weights(H, oh, i);
    for (int64_t j = 0; j < ow; ++j) {
      const std::vector<double> wx = reference_weights(W, ow, j);
      for (int64_t c = 0; c < C; ++c)
        for (int64_t y = 0; y < H; ++y)
          for (int64_t xx = 0; xx < W; ++xx)
            out[(c * oh + i) * ow + j] += wy[y] * wx[xx] * v[(c * H + y) * W + xx];
    }
  }
  return Tensor::from_vector<double>(out, {C, oh, ow});
}

TEST(Resize, HandComputedDownscale) {
  // 4 -> 2: scale 2, support 2. Output 0 (centre 1) weighs inputs 0, 1, 2 by the triangle
  // at -0.25, 0.25, 0.75 (halved): 0.75, 0.75, 0.25 -> 3/7, 3/7, 1/7; output 1 (centre 3)
  // weighs inputs 1, 2, 3 by 1/7, 3/7, 3/7.
  const Tensor x = Tensor::from_vector<double>({0, 1, 2, 3}, {1, 1, 4});
  EXPECT_CLOSE(resize(x, 1, 2), Tensor::from_vector<double>({5.0 / 7, 16.0 / 7}, {1, 1, 2}), 1e-15,
               1e-15);
  EXPECT_CLOSE(resize(x.transpose(1, 2), 2, 1),
               Tensor::from_vector<double>({5.0 / 7, 16.0 / 7}, {1, 2, 1}), 1e-15, 1e-15);
}

TEST(Resize, HandComputedUpscale) {
  // 2 -> 4 is plain bilinear with half-pixel centres: 0.25 steps clamped at the edges.
  const Tensor x = Tensor::from_vector<double>({0, 4}, {1, 1, 2});
  EXPECT_CLOSE(resize(x, 1, 4), Tensor::from_vector<double>({0, 1, 3, 4}, {1, 1, 4}), 1e-15, 1e-15);
}

TEST(Resize, MatchesThePlainReference) {
  const Tensor x64 = testing::randn_seeded({3, 13, 17}, 1, DType::f64);
  for (auto [oh, ow] : std::vector<std::pair<int64_t, int64_t>>{
           {5, 7}, {29, 31}, {4, 40}, {13, 6}, {1, 1}, {13, 17}, {3, 16}}) {
    const Tensor expected = reference_resize(x64, oh, ow);
    EXPECT_CLOSE(resize(x64, oh, ow), expected, 1e-12, 1e-12) << oh << "x" << ow;
    EXPECT_CLOSE(resize(x64.to(DType::f32), oh, ow), expected.to(DType::f32), 1e-5, 1e-5)
        << oh << "x" << ow;
  }
  // Non-contiguous input: a transposed view, and a batch [B, C, H, W].
  const Tensor t = testing::randn_seeded({3, 17, 13}, 2, DType::f64).transpose(1, 2);
  EXPECT_CLOSE(resize(t, 6, 9), reference_resize(t.contiguous(), 6, 9), 1e-12, 1e-12);
  const Tensor batch = testing::randn_seeded({2, 3, 11, 9}, 3, DType::f64);
  const Tensor out = resize(batch, 4, 5);
  ASSERT_EQ(out.shape(), (Shape{2, 3, 4, 5}));
  for (int64_t b = 0; b < 2; ++b)
    EXPECT_CLOSE(out.select(0, b), reference_resize(batch.select(0, b), 4, 5), 1e-12, 1e-12);
}

TEST(Resize, KeepsConstantsAndIdentity) {
  const Tensor ones = full({3, 9, 11}, 0.25, DType::f32);
  EXPECT_CLOSE(resize(ones, 4, 23), full({3, 4, 23}, 0.25, DType::f32), 1e-6, 1e-7);
  const Tensor x = testing::randn_seeded({2, 5, 6}, 4, DType::f32);
  EXPECT_CLOSE(resize(x, 5, 6), x, 0, 0);
}

TEST(Resize, ShorterSideFollowsTorchvision) {
  const Tensor x = testing::randn_seeded({3, 30, 45}, 5, DType::f32);
  EXPECT_EQ(resize_shorter(x, 20).shape(), (Shape{3, 20, 30}));
  EXPECT_EQ(resize_shorter(x.transpose(1, 2), 7).shape(), (Shape{3, 10, 7}));  // int(7 * 45 / 30)
}

TEST(Resize, BadArguments) {
  const Tensor x = zeros({3, 4, 4});
  EXPECT_IRIS_ERROR(resize(x, 0, 3), "resize: output size must be positive");
  EXPECT_IRIS_ERROR(resize(zeros({3, 4, 4}, DType::i64), 2, 2), "resize: expected a float32");
  EXPECT_IRIS_ERROR(resize(zeros({4}), 2, 2), "resize: expected [..., H, W]");
  EXPECT_IRIS_ERROR(resize(zeros({3, 0, 4}), 2, 2), "resize: empty image");
  EXPECT_IRIS_ERROR(resize_shorter(x, -1), "resize_shorter: size must be positive");
}

// PIL's Image.resize(BILINEAR) on mode "F" (float) images, when python3 has PIL and numpy.
TEST_F(ImageFiles, ResizeMatchesPil) {
  const std::string py = testing::torch_python().empty() ? "python3" : testing::torch_python();
  if (std::system(("'" + py + "' -c 'import PIL, numpy' 2>/dev/null").c_str()) != 0)
    GTEST_SKIP() << "python3 with PIL and numpy is not available";
  const Tensor x = testing::randn_seeded({1, 23, 37}, 6, DType::f32);
  {
    std::ofstream raw(path("in.f32"), std::ios::binary);
    const std::vector<float> v = x.to_vector<float>();
    raw.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * 4));
  }
  const std::vector<std::pair<int64_t, int64_t>> sizes = {{7, 9}, {50, 61}, {11, 80}, {23, 10}};
  std::ofstream script(path("pil.py"));
  script << "import numpy as np, sys\nfrom PIL import Image\n"
         << "x = np.fromfile(sys.argv[1] + '/in.f32', dtype=np.float32).reshape(23, 37)\n"
         << "for i, (h, w) in enumerate([";
  for (auto [h, w] : sizes) script << "(" << h << ", " << w << "), ";
  script << "]):\n"
         << "    y = np.asarray(Image.fromarray(x, mode='F').resize((w, h), Image.BILINEAR))\n"
         << "    y.astype(np.float32).tofile(sys.argv[1] + '/out%d.f32' % i)\n";
  script.close();
  ASSERT_EQ(std::system(("'" + py + "' '" + path("pil.py") + "' '" + dir_ + "'").c_str()), 0);
  for (size_t i = 0; i < sizes.size(); ++i) {
    const auto [h, w] = sizes[i];
    const std::vector<uint8_t> bytes = read_bytes(path("out" + std::to_string(i) + ".f32"));
    ASSERT_EQ(bytes.size(), static_cast<size_t>(h * w * 4));
    std::vector<float> expected(h * w);
    std::memcpy(expected.data(), bytes.data(), bytes.size());
    EXPECT_CLOSE(resize(x, h, w), Tensor::from_vector<float>(expected, {1, h, w}), 1e-5, 1e-6)
        << h << "x" << w;
  }
}

// ---- crops and flips ----

TEST(Crop, InsideAndOutsideTheImage) {
  const Tensor x = arange(2 * 4 * 5, DType::f64).reshape({2, 4, 5});
  EXPECT_CLOSE(crop(x, 1, 2, 2, 3), x.slice(1, 1, 3).slice(2, 2, 5), 0, 0);
  // Beyond the edges: zeros, as torchvision's F.crop pads.
  const Tensor padded = crop(x, -1, 3, 3, 4);
  const std::vector<double> v = padded.select(0, 1).to_vector<double>();
  EXPECT_EQ(v, (std::vector<double>{0, 0, 0, 0, 23, 24, 0, 0, 28, 29, 0, 0}));
  EXPECT_CLOSE(crop(x.transpose(1, 2), 0, 0, 2, 2),
               x.transpose(1, 2).slice(1, 0, 2).slice(2, 0, 2).contiguous(), 0, 0);
  EXPECT_IRIS_ERROR(crop(x, 0, 0, 0, 2), "crop: size must be positive");
}

TEST(Crop, CenterCropRoundsHalfToEvenAndPads) {
  const Tensor x = arange(5 * 7, DType::f64).reshape({1, 5, 7}).to(DType::f32);
  // top = round((5 - 2) / 2) = round(1.5) = 2; left = round((7 - 2) / 2) = round(2.5) = 2.
  EXPECT_CLOSE(center_crop(x, 2, 2), crop(x, 2, 2, 2, 2), 0, 0);
  EXPECT_CLOSE(center_crop(x, 3, 3), crop(x, 1, 2, 3, 3), 0, 0);
  // Larger than the image: (8 - 5) // 2 = 1 zero row on top, (9 - 7) // 2 = 1 column left.
  EXPECT_CLOSE(center_crop(x, 8, 9), crop(x, -1, -1, 8, 9), 0, 0);
  // Larger in one dim only.
  EXPECT_CLOSE(center_crop(x, 8, 3), crop(x, -1, 2, 8, 3), 0, 0);
}

TEST(Flip, HorizontalFlipAndItsRandomForm) {
  const Tensor x = arange(2 * 3 * 4, DType::f64).reshape({2, 3, 4}).to(DType::f32);
  const Tensor f = hflip(x);
  for (int64_t j = 0; j < 4; ++j) EXPECT_CLOSE(f.select(2, j), x.select(2, 3 - j), 0, 0);
  EXPECT_CLOSE(hflip(hflip(x.transpose(1, 2))), x.transpose(1, 2).contiguous(), 0, 0);
  Generator g0(1), g1(1);
  EXPECT_CLOSE(random_hflip(x, g0, 0.0), x, 0, 0);
  EXPECT_CLOSE(random_hflip(x, g1, 1.0), f, 0, 0);
  EXPECT_EQ(g0.offset(), g1.offset());  // one draw whatever p is
  int flips = 0;
  for (uint64_t seed = 0; seed < 200; ++seed) {
    Generator a(seed), b(seed);
    const Tensor ra = random_hflip(x, a), rb = random_hflip(x, b);
    EXPECT_CLOSE(ra, rb, 0, 0);
    flips += ra.to_vector<float>()[0] != x.to_vector<float>()[0];
  }
  EXPECT_GT(flips, 70);
  EXPECT_LT(flips, 130);
  EXPECT_IRIS_ERROR(random_hflip(x, g0, 1.5), "random_hflip: p must be in [0, 1]");
}

TEST(RandomResizedCrop, DeterministicBoxesWithinTheOptions) {
  RandomResizedCropOptions opt;
  for (uint64_t seed = 0; seed < 100; ++seed) {
    Generator a(seed), b(seed);
    const CropBox box = random_resized_crop_box(48, 64, a, opt);
    const CropBox again = random_resized_crop_box(48, 64, b, opt);
    EXPECT_EQ(box.top, again.top);
    EXPECT_EQ(box.left, again.left);
    EXPECT_EQ(box.height, again.height);
    EXPECT_EQ(box.width, again.width);
    EXPECT_EQ(a.offset(), kRandomResizedCropDraws);
    EXPECT_GE(box.top, 0);
    EXPECT_GE(box.left, 0);
    EXPECT_LE(box.top + box.height, 48);
    EXPECT_LE(box.left + box.width, 64);
    // Rounding of w and h moves the area and ratio a little beyond the sampled ranges.
    const double area = static_cast<double>(box.height * box.width) / (48 * 64);
    const double ratio = static_cast<double>(box.width) / static_cast<double>(box.height);
    EXPECT_GE(area, 0.05);
    EXPECT_GE(ratio, 0.6);
    EXPECT_LE(ratio, 1.6);
  }
  Generator a(3), b(4);
  const CropBox ba = random_resized_crop_box(48, 64, a), bb = random_resized_crop_box(48, 64, b);
  EXPECT_FALSE(ba.top == bb.top && ba.left == bb.left && ba.height == bb.height &&
               ba.width == bb.width);
}

TEST(RandomResizedCrop, FallsBackToTheCentreCropOfTheClampedRatio) {
  // A 10 x 100 strip cannot hold a square of 90% of its area: the fallback keeps the height
  // and clamps the ratio to 1: a 10 x 10 square in the middle.
  RandomResizedCropOptions opt{0.9, 1.0, 1.0, 1.0};
  Generator g(0);
  const CropBox box = random_resized_crop_box(10, 100, g, opt);
  EXPECT_EQ(box.top, 0);
  EXPECT_EQ(box.left, 45);
  EXPECT_EQ(box.height, 10);
  EXPECT_EQ(box.width, 10);
  const Tensor x = testing::randn_seeded({3, 10, 100}, 7, DType::f32);
  Generator g2(0);
  EXPECT_CLOSE(random_resized_crop(x, 5, 5, g2, opt), resize(crop(x, 0, 45, 10, 10), 5, 5), 0, 0);
  EXPECT_IRIS_ERROR(random_resized_crop_box(10, 10, g, {0.5, 0.1, 1, 1}),
                    "random_resized_crop: need 0 < scale_min <= scale_max");
}

TEST(Normalize, PerChannelOnImagesAndBatches) {
  const Tensor x = testing::randn_seeded({2, 3, 4, 5}, 8, DType::f64);
  const std::vector<double> mean = {0.1, -0.2, 0.3}, stdv = {0.5, 2.0, 0.25};
  const Tensor out = normalize(x, mean, stdv);
  const std::vector<double> in = x.to_vector<double>(), got = out.to_vector<double>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    const int64_t c = (i / 20) % 3;
    EXPECT_DOUBLE_EQ(got[i], (in[i] - mean[c]) / stdv[c]);
  }
  EXPECT_CLOSE(normalize(x.select(0, 1), mean, stdv), out.select(0, 1), 0, 0);
  EXPECT_CLOSE(normalize(x.to(DType::f32), mean, stdv), out.to(DType::f32), 1e-6, 1e-6);
  EXPECT_IRIS_ERROR(normalize(x, {0.1, 0.2}, stdv), "normalize: 2 means and 3 stds for 3 channels");
  EXPECT_IRIS_ERROR(normalize(x, mean, {1, 0, 1}), "normalize: a std of 0");
  EXPECT_IRIS_ERROR(normalize(x.select(0, 0).select(0, 0), {0}, {1}),
                    "normalize: expected [C, H, W] or [B, C, H, W]");
}

}  // namespace
}  // namespace iris::nn
