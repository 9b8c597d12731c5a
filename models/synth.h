#pragma once
// The synthetic multimodal set of `iris synth`: small images of one to three shapes on
// varied backgrounds, captions from a grammar with several phrasings, VQA questions
// with answers, and train/val/test splits.
//
// Sample i is a pure function of (seed, i, size): the same on every machine and for any
// n or thread count, so tests and training can draw samples in memory (synth_sample)
// and get exactly what write_synth puts on disk.
//
// A scene places each shape in its own cell of a 3 x 3 grid (with a little jitter), and
// no two shapes share both kind and colour, so "the red circle" always names one shape
// and every relation ("left of": a smaller column; "above": a smaller row) and position
// ("top left", "center", ...) is unambiguous. Shapes are listed in reading order (row,
// then column), the order captions mention them in.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "nn/image.h"

namespace iris::models {

enum class ShapeKind : uint8_t { circle, square, triangle, star, cross, diamond };
inline constexpr int kNumShapeKinds = 6;
enum class ShapeColor : uint8_t { red, green, blue, yellow, purple, orange };
inline constexpr int kNumShapeColors = 6;
enum class Background : uint8_t { plain, gradient, noisy, striped };
inline constexpr int kNumBackgrounds = 4;

const char* shape_name(ShapeKind kind);      // "circle"
const char* shape_plural(ShapeKind kind);    // "circles", "crosses"
const char* color_name(ShapeColor color);    // "red"
const char* background_name(Background bg);  // "plain", "gradient", "noisy", "striped"
// The grid cell's name: "top left", "top", "top right", "left", "center", ..., "bottom right".
const char* position_name(int row, int col);

struct SynthShape {
  ShapeKind kind = ShapeKind::circle;
  ShapeColor color = ShapeColor::red;
  bool large = false;
  int row = 0, col = 0;               // grid cell, 0..2 from the top left
  double cx = 0, cy = 0, radius = 0;  // pixels
  std::array<int, 3> rgb{};           // the drawn colour: the named one, jittered
};

struct SynthScene {
  std::vector<SynthShape> shapes;  // 1..3, reading order
  Background background = Background::plain;
  // Rendering parameters: two muted colours, the direction of a gradient or stripes
  // (0 horizontal, 1 vertical, 2 and 3 diagonal) and the stripe width in pixels.
  std::array<std::array<int, 3>, 2> background_rgb{};
  int background_direction = 0;
  int stripe_period = 4;
};

struct SynthQuestion {
  std::string question, answer;
  std::string type;  // "color", "shape", "count", "position", "yes/no"
};

enum class SynthSplit : uint8_t { train, val, test };
const char* split_name(SynthSplit split);

struct SynthOptions {
  int64_t n = 10000;
  uint64_t seed = 0;
  int64_t size = 64;  // image side in pixels, 32..1024
  double val_fraction = 0.1, test_fraction = 0.1;
  int captions_per_image = 5;   // 1..5
  int questions_per_image = 4;  // 1..5, of distinct types
};

struct SynthSample {
  int64_t index = 0;
  SynthSplit split = SynthSplit::train;
  SynthScene scene;
  nn::Image8 image;  // RGB, size x size (empty when not rendered)
  std::vector<std::string> captions;
  std::vector<SynthQuestion> questions;
  std::string image_file;  // "images/000042.png", relative to the output folder
};

// Checks the options (iris::Error naming the bad one).
void check_synth_options(const SynthOptions& options);
// Samples [0, train) are train, then val, then test; each count rounds n * fraction.
SynthSplit synth_split(const SynthOptions& options, int64_t index);
int64_t synth_split_size(const SynthOptions& options, SynthSplit split);
SynthScene synth_scene(const SynthOptions& options, int64_t index);
SynthSample synth_sample(const SynthOptions& options, int64_t index, bool render = true);

struct SynthSummary {
  int64_t train = 0, val = 0, test = 0, questions = 0;
  std::vector<std::string> files;  // written, relative to the output folder
};
// Writes into out_dir (created if needed):
//   images/NNNNNN.png                 every image, whatever its split
//   captions_{train,val,test}.jsonl   {"image": "images/....png", "captions": [...]}
//   vqa_{train,val,test}.jsonl        {"image", "question", "answer", "type"}
//   scenes.jsonl                      each scene's ground truth (shapes, cells, background)
//   synth.json                        the options and split sizes
// Images are rendered and encoded on the compute pool; the files are the same bytes for
// any thread count.
SynthSummary write_synth(const std::string& out_dir, const SynthOptions& options);

}  // namespace iris::models
