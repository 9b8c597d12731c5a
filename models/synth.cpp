#include "models/synth.h"

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/parallel.h"
#include "core/philox.h"
#include "models/dataset.h"
#include "nn/data_loader.h"
#include "nn/json_lite.h"

namespace iris::models {
namespace {

// Geometry, as fractions of the image side: radii of the two sizes, the jitter of a shape
// within its grid cell, and the 4 x 4 supersampling of shape edges.
struct SynthTraits {
  static constexpr double kLargeRadius = 0.13, kSmallRadius = 0.08;
  static constexpr double kMaxJitter = 0.05;
  static constexpr double kExtent = 1.1;  // a shape reaches at most kExtent * radius out
  static constexpr int kSupersample = 4;
  static constexpr int kColorJitter = 12;  // +- per channel around the named colour
  static constexpr int kNoise = 24;        // +- per channel on noisy backgrounds
};
static_assert(SynthTraits::kLargeRadius * SynthTraits::kExtent < 1.0 / 6,
              "a large shape fits its third of the image (the jitter is clamped to what is left)");
static_assert(SynthTraits::kSmallRadius < SynthTraits::kLargeRadius, "small is smaller");

// Sequential Philox draws under one key.
class Draws {
 public:
  explicit Draws(uint64_t key) : key_(key) {}
  uint32_t u32() { return philox::bits(key_, counter_++); }
  double uniform() { return static_cast<double>(u32()) * (1.0 / 4294967296.0); }
  int below(int n) { return static_cast<int>(u32() % static_cast<uint32_t>(n)); }

 private:
  uint64_t key_;
  uint64_t counter_ = 0;
};

uint64_t sample_key(const SynthOptions& o, int64_t index) {
  return nn::mix_seed(nn::mix_seed(o.seed, 0x5157a7e5ull), static_cast<uint64_t>(index));
}

constexpr std::array<std::array<int, 3>, kNumShapeColors> kPalette = {
    {{215, 38, 38}, {34, 160, 60}, {40, 90, 225}, {240, 210, 35}, {140, 60, 200}, {245, 135, 25}}};

uint8_t clamp_u8(int v) { return static_cast<uint8_t>(std::clamp(v, 0, 255)); }

// ---- rendering ----

struct Point {
  double x, y;
};

// Unit star (outer radius 1, inner 0.48) and triangle, from the top clockwise; the
// trigonometry is spelled out so rendering is plain arithmetic.
constexpr double kC18 = 0.9510565162951535, kS18 = 0.3090169943749474;
constexpr double kC54 = 0.5877852522924731, kS54 = 0.8090169943749475, kInner = 0.48;
constexpr Point kStar[10] = {{0, -1},        {kC54 * kInner, -kS54* kInner},
                             {kC18, -kS18},  {kC18 * kInner, kS18* kInner},
                             {kC54, kS54},   {0, kInner},
                             {-kC54, kS54},  {-kC18 * kInner, kS18* kInner},
                             {-kC18, -kS18}, {-kC54 * kInner, -kS54* kInner}};
constexpr Point kTriangle[3] = {{0, -1}, {0.8660254037844386, 0.5}, {-0.8660254037844386, 0.5}};

bool in_polygon(const Point* poly, int n, double x, double y) {
  bool inside = false;
  for (int i = 0, j = n - 1; i < n; j = i++) {
    if ((poly[i].y > y) != (poly[j].y > y) &&
        x < (poly[j].x - poly[i].x) * (y - poly[i].y) / (poly[j].y - poly[i].y) + poly[i].x)
      inside = !inside;
  }
  return inside;
}

// (u, v): the offset from the shape's centre in radii.
bool inside_shape(ShapeKind kind, double u, double v) {
  constexpr double e = SynthTraits::kExtent;
  switch (kind) {
    case ShapeKind::circle:
      return u * u + v * v <= 1.0;
    case ShapeKind::square:
      return std::fabs(u) <= 0.85 && std::fabs(v) <= 0.85;
    case ShapeKind::diamond:
      return std::fabs(u) + std::fabs(v) <= e;
    case ShapeKind::triangle:
      return in_polygon(kTriangle, 3, u / e, v / e);
    case ShapeKind::star:
      return in_polygon(kStar, 10, u / e, v / e);
    case ShapeKind::cross:
      return (std::fabs(u) <= 0.32 && std::fabs(v) <= 1.0) ||
             (std::fabs(v) <= 0.32 && std::fabs(u) <= 1.0);
  }
  return false;
}

void render_background(const SynthScene& scene, int64_t S, uint64_t key, nn::Image8* img) {
  const auto& c0 = scene.background_rgb[0];
  const auto& c1 = scene.background_rgb[1];
  const uint64_t noise_key = nn::mix_seed(key, 0x0015e);
  for (int64_t y = 0; y < S; ++y) {
    for (int64_t x = 0; x < S; ++x) {
      // t in [0, 1]: how much of the second colour, by the background's kind.
      const double fx = (static_cast<double>(x) + 0.5) / static_cast<double>(S);
      const double fy = (static_cast<double>(y) + 0.5) / static_cast<double>(S);
      double t = 0;
      const int dir = scene.background_direction;
      if (scene.background == Background::gradient) {
        t = dir == 0 ? fx : dir == 1 ? fy : dir == 2 ? (fx + fy) / 2 : (1 - fx + fy) / 2;
      } else if (scene.background == Background::striped) {
        const int64_t p = scene.stripe_period;
        const int64_t coord = dir == 0 ? x : dir == 1 ? y : dir == 2 ? x + y : x + S - y;
        t = (coord / p) % 2 == 0 ? 0.0 : 1.0;
      }
      uint8_t* px = &img->pixels[(y * S + x) * 3];
      for (int c = 0; c < 3; ++c) {
        int v = static_cast<int>(std::lround(c0[c] + (c1[c] - c0[c]) * t));
        if (scene.background == Background::noisy) {
          const uint32_t r = philox::bits(noise_key, static_cast<uint64_t>((y * S + x) * 3 + c));
          v += static_cast<int>(r % (2 * SynthTraits::kNoise + 1)) - SynthTraits::kNoise;
        }
        px[c] = clamp_u8(v);
      }
    }
  }
}

void render_shape(const SynthShape& s, int64_t S, nn::Image8* img) {
  constexpr int kSS = SynthTraits::kSupersample;
  const double reach = s.radius * SynthTraits::kExtent + 1;
  const int64_t x0 = std::max<int64_t>(0, static_cast<int64_t>(s.cx - reach));
  const int64_t x1 = std::min<int64_t>(S - 1, static_cast<int64_t>(s.cx + reach));
  const int64_t y0 = std::max<int64_t>(0, static_cast<int64_t>(s.cy - reach));
  const int64_t y1 = std::min<int64_t>(S - 1, static_cast<int64_t>(s.cy + reach));
  for (int64_t y = y0; y <= y1; ++y) {
    for (int64_t x = x0; x <= x1; ++x) {
      int covered = 0;
      for (int sy = 0; sy < kSS; ++sy)
        for (int sx = 0; sx < kSS; ++sx) {
          const double px = static_cast<double>(x) + (sx + 0.5) / kSS;
          const double py = static_cast<double>(y) + (sy + 0.5) / kSS;
          covered += inside_shape(s.kind, (px - s.cx) / s.radius, (py - s.cy) / s.radius);
        }
      if (covered == 0) continue;
      const double a = static_cast<double>(covered) / (kSS * kSS);
      uint8_t* p = &img->pixels[(y * S + x) * 3];
      for (int c = 0; c < 3; ++c)
        p[c] = clamp_u8(static_cast<int>(std::lround(p[c] + (s.rgb[c] - p[c]) * a)));
    }
  }
}

// ---- language ----

std::string article(const std::string& next_word) {
  return std::string("aeiou").find(next_word[0]) != std::string::npos ? "an" : "a";
}

// "a small red circle" / "a red circle" (with_size false) / "red circle" (no article).
std::string noun_phrase(const SynthShape& s, bool with_size, bool with_article = true) {
  std::string words = with_size ? std::string(s.large ? "large " : "small ") : std::string();
  words += std::string(color_name(s.color)) + " " + shape_name(s.kind);
  return with_article ? article(words) + " " + words : words;
}

// "in the top left corner", "at the top", "on the left", "in the center".
std::string location_phrase(const SynthShape& s) {
  const std::string name = position_name(s.row, s.col);
  if (s.row != 1 && s.col != 1) return "in the " + name + " corner";
  if (s.row == 1 && s.col == 1) return "in the center";
  return (s.row == 1 ? "on the " : "at the ") + name;
}

// The relation a caption states: along the axis of the larger grid step.
std::string relation(const SynthShape& a, const SynthShape& b) {
  const int dc = b.col - a.col, dr = b.row - a.row;
  if (dc != 0 && std::abs(dc) >= std::abs(dr)) return dc > 0 ? "left of" : "right of";
  return dr > 0 ? "above" : "below";
}

bool relation_holds(const SynthShape& a, const std::string& rel, const SynthShape& b) {
  if (rel == "left of") return a.col < b.col;
  if (rel == "right of") return a.col > b.col;
  if (rel == "above") return a.row < b.row;
  return a.row > b.row;
}

std::string background_phrase(Background bg) {
  const std::string name = background_name(bg);
  return article(name) + " " + name + " background";
}

std::vector<std::string> make_captions(const SynthScene& sc, int count) {
  const auto& s = sc.shapes;
  std::vector<std::string> all;
  if (s.size() == 1) {
    all = {noun_phrase(s[0], true), noun_phrase(s[0], true) + " " + location_phrase(s[0]),
           "there is " + noun_phrase(s[0], false) + " " + location_phrase(s[0]),
           noun_phrase(s[0], false) + " on " + background_phrase(sc.background),
           "one " + noun_phrase(s[0], true, false)};
  } else if (s.size() == 2) {
    all = {noun_phrase(s[0], true) + " " + relation(s[0], s[1]) + " " + noun_phrase(s[1], true),
           "two shapes: " + noun_phrase(s[0], false) + " and " + noun_phrase(s[1], false),
           noun_phrase(s[0], false) + " " + relation(s[0], s[1]) + " " + noun_phrase(s[1], false),
           noun_phrase(s[1], false) + " " + relation(s[1], s[0]) + " " + noun_phrase(s[0], false),
           noun_phrase(s[0], false) + " and " + noun_phrase(s[1], false) + " on " +
               background_phrase(sc.background)};
  } else {
    all = {"three shapes: " + noun_phrase(s[0], false) + ", " + noun_phrase(s[1], false) + " and " +
               noun_phrase(s[2], false),
           noun_phrase(s[0], true) + " " + relation(s[0], s[1]) + " " + noun_phrase(s[1], true) +
               " and " + noun_phrase(s[2], true),
           noun_phrase(s[0], false) + " " + relation(s[0], s[1]) + " " + noun_phrase(s[1], false) +
               " and " + noun_phrase(s[2], false) + " " + location_phrase(s[2]),
           noun_phrase(s[0], false) + " " + location_phrase(s[0]) + ", " +
               noun_phrase(s[1], false) + " " + location_phrase(s[1]) + " and " +
               noun_phrase(s[2], false) + " " + location_phrase(s[2]),
           noun_phrase(s[0], true) + ", " + noun_phrase(s[1], true) + " and " +
               noun_phrase(s[2], true)};
  }
  all.resize(count);
  return all;
}

SynthQuestion ask(const SynthScene& sc, const std::string& type, Draws& d) {
  const auto& s = sc.shapes;
  const int n = static_cast<int>(s.size());
  const SynthShape& pick = s[d.below(n)];
  auto count_if = [&](auto pred) {
    return std::to_string(std::count_if(s.begin(), s.end(), pred));
  };
  if (type == "color") {
    const bool unique_kind = std::count_if(s.begin(), s.end(), [&](const SynthShape& o) {
                               return o.kind == pick.kind;
                             }) == 1;
    const std::string q = unique_kind
                              ? std::string("what color is the ") + shape_name(pick.kind) + "?"
                              : "what color is the shape " + location_phrase(pick) + "?";
    return {q, color_name(pick.color), type};
  }
  if (type == "shape") {
    const bool unique_color = std::count_if(s.begin(), s.end(), [&](const SynthShape& o) {
                                return o.color == pick.color;
                              }) == 1;
    const std::string q =
        unique_color ? std::string("what shape is the ") + color_name(pick.color) + " object?"
                     : "what shape is " + location_phrase(pick) + "?";
    return {q, shape_name(pick.kind), type};
  }
  if (type == "count") {
    const int variant = d.below(3);
    if (variant == 0) return {"how many shapes are there?", std::to_string(n), type};
    if (variant == 1) {
      const auto color = static_cast<ShapeColor>(d.below(kNumShapeColors));
      return {std::string("how many ") + color_name(color) + " shapes are there?",
              count_if([&](const SynthShape& o) { return o.color == color; }), type};
    }
    const auto kind = static_cast<ShapeKind>(d.below(kNumShapeKinds));
    return {std::string("how many ") + shape_plural(kind) + " are there?",
            count_if([&](const SynthShape& o) { return o.kind == kind; }), type};
  }
  if (type == "position")
    return {"where is the " + noun_phrase(pick, false, false) + "?",
            position_name(pick.row, pick.col), type};
  // yes/no: a relation between two shapes, or whether a shape is there (half of the
  // time one that is).
  if (n >= 2 && d.below(2) == 0) {
    const int other = (static_cast<int>(&pick - s.data()) + 1 + d.below(n - 1)) % n;
    static const char* kRelations[] = {"left of", "right of", "above", "below"};
    const std::string rel = kRelations[d.below(4)];
    return {"is the " + noun_phrase(pick, false, false) + " " + rel + " the " +
                noun_phrase(s[other], false, false) + "?",
            relation_holds(pick, rel, s[other]) ? "yes" : "no", type};
  }
  SynthShape asked = pick;
  const bool present = d.below(2) == 0;
  if (!present) {
    do {
      asked.kind = static_cast<ShapeKind>(d.below(kNumShapeKinds));
      asked.color = static_cast<ShapeColor>(d.below(kNumShapeColors));
    } while (std::any_of(s.begin(), s.end(), [&](const SynthShape& o) {
      return o.kind == asked.kind && o.color == asked.color;
    }));
  }
  return {"is there " + noun_phrase(asked, false) + "?", present ? "yes" : "no", type};
}

std::string scene_json(const SynthSample& smp) {
  std::string out = "{\"image\": " + json::quote(smp.image_file) + ", \"split\": \"" +
                    split_name(smp.split) + "\", \"background\": \"" +
                    background_name(smp.scene.background) + "\", \"shapes\": [";
  for (size_t i = 0; i < smp.scene.shapes.size(); ++i) {
    const SynthShape& s = smp.scene.shapes[i];
    char geometry[96];
    std::snprintf(geometry, sizeof geometry, "\"x\": %.3f, \"y\": %.3f, \"radius\": %.3f", s.cx,
                  s.cy, s.radius);
    out += std::string(i ? ", " : "") + "{\"kind\": \"" + shape_name(s.kind) + "\", \"color\": \"" +
           color_name(s.color) + "\", \"size\": \"" + (s.large ? "large" : "small") +
           "\", \"row\": " + std::to_string(s.row) + ", \"col\": " + std::to_string(s.col) +
           ", \"position\": \"" + position_name(s.row, s.col) + "\", " + geometry + "}";
  }
  return out + "]}\n";
}

}  // namespace

const char* shape_name(ShapeKind kind) {
  static const char* kNames[] = {"circle", "square", "triangle", "star", "cross", "diamond"};
  return kNames[static_cast<int>(kind)];
}
const char* shape_plural(ShapeKind kind) {
  static const char* kNames[] = {"circles", "squares", "triangles", "stars", "crosses", "diamonds"};
  return kNames[static_cast<int>(kind)];
}
const char* color_name(ShapeColor color) {
  static const char* kNames[] = {"red", "green", "blue", "yellow", "purple", "orange"};
  return kNames[static_cast<int>(color)];
}
const char* background_name(Background bg) {
  static const char* kNames[] = {"plain", "gradient", "noisy", "striped"};
  return kNames[static_cast<int>(bg)];
}
const char* position_name(int row, int col) {
  static const char* kNames[3][3] = {{"top left", "top", "top right"},
                                     {"left", "center", "right"},
                                     {"bottom left", "bottom", "bottom right"}};
  IRIS_CHECK(row >= 0 && row < 3 && col >= 0 && col < 3, "position_name: cell (", row, ", ", col,
             ") outside the 3 x 3 grid");
  return kNames[row][col];
}
const char* split_name(SynthSplit split) {
  static const char* kNames[] = {"train", "val", "test"};
  return kNames[static_cast<int>(split)];
}

void check_synth_options(const SynthOptions& o) {
  IRIS_CHECK(o.n >= 1, "synth: n must be >= 1, got ", o.n);
  IRIS_CHECK(o.size >= 32 && o.size <= 1024, "synth: size must be in [32, 1024], got ", o.size);
  IRIS_CHECK(o.val_fraction >= 0 && o.test_fraction >= 0 && o.val_fraction + o.test_fraction < 1,
             "synth: need val_fraction, test_fraction >= 0 with a sum below 1, got ",
             o.val_fraction, " and ", o.test_fraction);
  IRIS_CHECK(o.captions_per_image >= 1 && o.captions_per_image <= 5,
             "synth: captions_per_image must be in [1, 5], got ", o.captions_per_image);
  IRIS_CHECK(o.questions_per_image >= 1 && o.questions_per_image <= 5,
             "synth: questions_per_image must be in [1, 5], got ", o.questions_per_image);
}

int64_t synth_split_size(const SynthOptions& o, SynthSplit split) {
  check_synth_options(o);
  const auto val = static_cast<int64_t>(std::llround(static_cast<double>(o.n) * o.val_fraction));
  const auto test = static_cast<int64_t>(std::llround(static_cast<double>(o.n) * o.test_fraction));
  if (split == SynthSplit::val) return val;
  if (split == SynthSplit::test) return test;
  return o.n - val - test;
}

SynthSplit synth_split(const SynthOptions& o, int64_t index) {
  IRIS_CHECK(index >= 0 && index < o.n, "synth: sample ", index, " outside [0, ", o.n, ")");
  const int64_t train = synth_split_size(o, SynthSplit::train);
  const int64_t val = synth_split_size(o, SynthSplit::val);
  return index < train         ? SynthSplit::train
         : index < train + val ? SynthSplit::val
                               : SynthSplit::test;
}

SynthScene synth_scene(const SynthOptions& o, int64_t index) {
  check_synth_options(o);
  IRIS_CHECK(index >= 0, "synth: negative sample index ", index);
  Draws d(sample_key(o, index));
  const double S = static_cast<double>(o.size), cell = S / 3;
  SynthScene sc;
  sc.background = static_cast<Background>(d.below(kNumBackgrounds));
  sc.background_direction = d.below(4);
  sc.stripe_period = (3 + d.below(6)) * std::max(1, static_cast<int>(o.size / 64));
  for (auto& rgb : sc.background_rgb) {
    const int grey = 50 + d.below(156);
    for (int& c : rgb) c = grey + d.below(37) - 18;
  }
  const int n = 1 + d.below(3);
  int cells[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
  for (int i = 0; i < n; ++i) std::swap(cells[i], cells[i + d.below(9 - i)]);
  for (int i = 0; i < n; ++i) {
    SynthShape s;
    do {
      s.kind = static_cast<ShapeKind>(d.below(kNumShapeKinds));
      s.color = static_cast<ShapeColor>(d.below(kNumShapeColors));
    } while (std::any_of(sc.shapes.begin(), sc.shapes.end(), [&](const SynthShape& o2) {
      return o2.kind == s.kind && o2.color == s.color;
    }));
    s.large = d.below(2) == 1;
    s.row = cells[i] / 3;
    s.col = cells[i] % 3;
    s.radius = S * (s.large ? SynthTraits::kLargeRadius : SynthTraits::kSmallRadius);
    const double jitter = std::min(SynthTraits::kMaxJitter * S,
                                   std::max(0.0, cell / 2 - s.radius * SynthTraits::kExtent - 0.5));
    s.cx = (s.col + 0.5) * cell + (2 * d.uniform() - 1) * jitter;
    s.cy = (s.row + 0.5) * cell + (2 * d.uniform() - 1) * jitter;
    for (int c = 0; c < 3; ++c)
      s.rgb[c] = kPalette[static_cast<int>(s.color)][c] +
                 d.below(2 * SynthTraits::kColorJitter + 1) - SynthTraits::kColorJitter;
    sc.shapes.push_back(s);
  }
  std::sort(sc.shapes.begin(), sc.shapes.end(), [](const SynthShape& a, const SynthShape& b) {
    return a.row != b.row ? a.row < b.row : a.col < b.col;
  });
  return sc;
}

SynthSample synth_sample(const SynthOptions& o, int64_t index, bool render) {
  SynthSample smp;
  smp.index = index;
  smp.split = synth_split(o, index);
  smp.scene = synth_scene(o, index);
  char name[48];
  std::snprintf(name, sizeof name, "images/%06" PRId64 ".png", index);
  smp.image_file = name;
  smp.captions = make_captions(smp.scene, o.captions_per_image);
  // Questions of distinct types, drawn under a key of their own.
  Draws d(nn::mix_seed(sample_key(o, index), 0x9e57));
  std::array<const char*, 5> types = {"color", "shape", "count", "position", "yes/no"};
  for (int i = 0; i < o.questions_per_image; ++i) {
    std::swap(types[i], types[i + d.below(5 - i)]);
    smp.questions.push_back(ask(smp.scene, types[i], d));
  }
  if (render) {
    smp.image.height = smp.image.width = o.size;
    smp.image.channels = 3;
    smp.image.pixels.assign(o.size * o.size * 3, 0);
    render_background(smp.scene, o.size, sample_key(o, index), &smp.image);
    for (const SynthShape& s : smp.scene.shapes) render_shape(s, o.size, &smp.image);
  }
  return smp;
}

SynthSummary write_synth(const std::string& out_dir, const SynthOptions& o) {
  check_synth_options(o);
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(fs::path(out_dir) / "images", ec);
  IRIS_CHECK(!ec, "synth: cannot create ", (fs::path(out_dir) / "images").string(), " (",
             ec.message(), ")");
  std::vector<SynthSample> samples(o.n);
  parallel_for(0, o.n, 8, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      SynthSample smp = synth_sample(o, i, true);
      nn::write_image((fs::path(out_dir) / smp.image_file).string(), smp.image);
      smp.image = nn::Image8();  // written: free the pixels
      samples[i] = std::move(smp);
    }
  });
  SynthSummary summary;
  std::string scenes;
  for (SynthSplit split : {SynthSplit::train, SynthSplit::val, SynthSplit::test}) {
    std::vector<CaptionRecord> captions;
    std::vector<VqaRecord> questions;
    for (const SynthSample& smp : samples) {
      if (smp.split != split) continue;
      captions.push_back(CaptionRecord{smp.image_file, smp.captions, smp.index, ""});
      for (const SynthQuestion& q : smp.questions)
        questions.push_back(
            VqaRecord{smp.image_file, q.question, q.answer, {q.answer}, q.type, ""});
    }
    const std::string name = split_name(split);
    write_caption_jsonl((fs::path(out_dir) / ("captions_" + name + ".jsonl")).string(), captions);
    write_vqa_jsonl((fs::path(out_dir) / ("vqa_" + name + ".jsonl")).string(), questions);
    summary.files.push_back("captions_" + name + ".jsonl");
    summary.files.push_back("vqa_" + name + ".jsonl");
    const auto count = static_cast<int64_t>(captions.size());
    (split == SynthSplit::train ? summary.train
     : split == SynthSplit::val ? summary.val
                                : summary.test) = count;
    summary.questions += static_cast<int64_t>(questions.size());
  }
  for (const SynthSample& smp : samples) scenes += scene_json(smp);
  std::string manifest = "{\"n\": " + std::to_string(o.n) +
                         ", \"seed\": " + std::to_string(o.seed) +
                         ", \"size\": " + std::to_string(o.size) +
                         ", \"captions_per_image\": " + std::to_string(o.captions_per_image) +
                         ", \"questions_per_image\": " + std::to_string(o.questions_per_image) +
                         ", \"train\": " + std::to_string(summary.train) +
                         ", \"val\": " + std::to_string(summary.val) +
                         ", \"test\": " + std::to_string(summary.test) + "}\n";
  auto write = [&](const std::string& file, const std::string& text) {
    const std::string path = (fs::path(out_dir) / file).string();
    const std::string tmp = path + ".tmp";
    std::FILE* f = std::fopen(tmp.c_str(), "wb");
    IRIS_CHECK(f != nullptr, "synth: cannot create ", path);
    const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    IRIS_CHECK(std::fclose(f) == 0 && ok && std::rename(tmp.c_str(), path.c_str()) == 0,
               "synth: cannot write ", path);
    summary.files.push_back(file);
  };
  write("scenes.jsonl", scenes);
  write("synth.json", manifest);
  for (const SynthSample& smp : samples) summary.files.push_back(smp.image_file);
  return summary;
}

}  // namespace iris::models
