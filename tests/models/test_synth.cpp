// The synthetic set: determinism (same seed -> same bytes, for any thread count and n),
// scene invariants, every question's answer and every caption re-derived from the scene
// by an independent parser, pixels against the scene, and the files on disk.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "core/parallel.h"
#include "models/dataset.h"
#include "models/synth.h"
#include "tests/support/testing.h"

namespace iris::models {
namespace {

namespace fs = std::filesystem;

SynthOptions options(int64_t n, uint64_t seed = 1) {
  SynthOptions o;
  o.n = n;
  o.seed = seed;
  return o;
}

// ---- an independent reading of the scene ----

const SynthShape* find_shape(const SynthScene& sc, const std::string& color,
                             const std::string& kind) {
  const SynthShape* found = nullptr;
  for (const SynthShape& s : sc.shapes)
    if (color_name(s.color) == color && shape_name(s.kind) == kind) {
      EXPECT_EQ(found, nullptr) << "two " << color << " " << kind << "s";
      found = &s;
    }
  return found;
}

// "in the top left corner" / "in the center" / "at the top" / "on the left" -> cell name.
std::string cell_of_phrase(const std::string& phrase) {
  std::smatch m;
  if (std::regex_match(phrase, m, std::regex("in the (.+) corner"))) return m[1];
  if (phrase == "in the center") return "center";
  if (std::regex_match(phrase, m, std::regex("(?:at|on) the (top|bottom|left|right)"))) return m[1];
  ADD_FAILURE() << "unknown location phrase: " << phrase;
  return "";
}

const SynthShape* shape_at(const SynthScene& sc, const std::string& cell) {
  for (const SynthShape& s : sc.shapes)
    if (position_name(s.row, s.col) == cell) return &s;
  return nullptr;
}

bool holds(const SynthShape& a, const std::string& rel, const SynthShape& b) {
  if (rel == "left of") return a.cx < b.cx && a.col < b.col;
  if (rel == "right of") return a.cx > b.cx && a.col > b.col;
  if (rel == "above") return a.cy < b.cy && a.row < b.row;
  if (rel == "below") return a.cy > b.cy && a.row > b.row;
  ADD_FAILURE() << "unknown relation " << rel;
  return false;
}

std::string expected_answer(const SynthScene& sc, const std::string& q) {
  const std::string kinds = "circle|square|triangle|star|cross|diamond";
  const std::string colors = "red|green|blue|yellow|purple|orange";
  const std::string loc = "in the .+ corner|in the center|(?:at|on) the \\w+";
  std::smatch m;
  auto count = [&](auto pred) {
    return std::to_string(std::count_if(sc.shapes.begin(), sc.shapes.end(), pred));
  };
  if (std::regex_match(q, m, std::regex("what color is the (" + kinds + ")\\?"))) {
    int n = 0;
    std::string color;
    for (const SynthShape& s : sc.shapes)
      if (shape_name(s.kind) == m[1]) ++n, color = color_name(s.color);
    EXPECT_EQ(n, 1) << q;
    return color;
  }
  if (std::regex_match(q, m, std::regex("what color is the shape (" + loc + ")\\?"))) {
    const SynthShape* s = shape_at(sc, cell_of_phrase(m[1]));
    return s ? color_name(s->color) : "?";
  }
  if (std::regex_match(q, m, std::regex("what shape is the (" + colors + ") object\\?"))) {
    int n = 0;
    std::string kind;
    for (const SynthShape& s : sc.shapes)
      if (color_name(s.color) == m[1]) ++n, kind = shape_name(s.kind);
    EXPECT_EQ(n, 1) << q;
    return kind;
  }
  if (std::regex_match(q, m, std::regex("what shape is (" + loc + ")\\?"))) {
    const SynthShape* s = shape_at(sc, cell_of_phrase(m[1]));
    return s ? shape_name(s->kind) : "?";
  }
  if (q == "how many shapes are there?") return std::to_string(sc.shapes.size());
  if (std::regex_match(q, m, std::regex("how many (" + colors + ") shapes are there\\?")))
    return count([&](const SynthShape& s) { return color_name(s.color) == m[1]; });
  if (std::regex_match(q, m, std::regex("how many (\\w+) are there\\?")))
    return count([&](const SynthShape& s) { return shape_plural(s.kind) == m[1]; });
  if (std::regex_match(q, m, std::regex("where is the (\\w+) (\\w+)\\?"))) {
    const SynthShape* s = find_shape(sc, m[1], m[2]);
    return s ? position_name(s->row, s->col) : "?";
  }
  if (std::regex_match(q, m,
                       std::regex("is the (\\w+) (\\w+) (left of|right of|above|below) "
                                  "the (\\w+) (\\w+)\\?"))) {
    const SynthShape* a = find_shape(sc, m[1], m[2]);
    const SynthShape* b = find_shape(sc, m[4], m[5]);
    if (!a || !b) return "?";
    return holds(*a, m[3], *b) ? "yes" : "no";
  }
  if (std::regex_match(q, m, std::regex("is there an? (\\w+) (\\w+)\\?")))
    return find_shape(sc, m[1], m[2]) ? "yes" : "no";
  ADD_FAILURE() << "unparsed question: " << q;
  return "";
}

void check_caption(const SynthScene& sc, const std::string& caption) {
  // Every shape is named, with its size when a size is given.
  for (const SynthShape& s : sc.shapes) {
    const std::string name = std::string(color_name(s.color)) + " " + shape_name(s.kind);
    EXPECT_NE(caption.find(name), std::string::npos) << caption;
    const std::string wrong_size = std::string(s.large ? "small " : "large ") + name;
    EXPECT_EQ(caption.find(wrong_size), std::string::npos) << caption;
  }
  // Every relation and location holds.
  const std::regex rel(
      "(\\w+) (\\w+) (left of|right of|above|below) an? (?:small |large )?(\\w+) (\\w+)");
  for (auto it = std::sregex_iterator(caption.begin(), caption.end(), rel);
       it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    const SynthShape* a = find_shape(sc, m[1], m[2]);
    const SynthShape* b = find_shape(sc, m[4], m[5]);
    ASSERT_TRUE(a && b) << caption;
    EXPECT_TRUE(holds(*a, m[3], *b)) << caption;
  }
  const std::regex at(
      "(\\w+) (\\w+) (in the (?:top|bottom) (?:left|right) corner|in the center|(?:at|on) the "
      "\\w+)");
  for (auto it = std::sregex_iterator(caption.begin(), caption.end(), at);
       it != std::sregex_iterator(); ++it) {
    const std::smatch& m = *it;
    const SynthShape* s = find_shape(sc, m[1], m[2]);
    ASSERT_TRUE(s) << caption;
    EXPECT_EQ(position_name(s->row, s->col), cell_of_phrase(m[3])) << caption;
  }
  std::smatch m;
  if (std::regex_search(caption, m, std::regex("on an? (\\w+) background"))) {
    EXPECT_EQ(m[1], background_name(sc.background)) << caption;
  }
  if (caption.rfind("two shapes", 0) == 0) {
    EXPECT_EQ(sc.shapes.size(), 2u) << caption;
  }
  if (caption.rfind("three shapes", 0) == 0) {
    EXPECT_EQ(sc.shapes.size(), 3u) << caption;
  }
}

TEST(Synth, SameSeedSameSample) {
  const SynthOptions o = options(100, 7);
  for (int64_t i : {0, 1, 50, 99}) {
    const SynthSample a = synth_sample(o, i), b = synth_sample(o, i);
    EXPECT_EQ(a.image.pixels, b.image.pixels);
    EXPECT_EQ(a.captions, b.captions);
    ASSERT_EQ(a.questions.size(), b.questions.size());
    for (size_t q = 0; q < a.questions.size(); ++q)
      EXPECT_EQ(a.questions[q].question, b.questions[q].question);
  }
  // A sample does not depend on n (only its split does) and changes with the seed.
  SynthOptions bigger = o;
  bigger.n = 5000;
  EXPECT_EQ(synth_sample(o, 42).image.pixels, synth_sample(bigger, 42).image.pixels);
  EXPECT_EQ(synth_sample(o, 42).captions, synth_sample(bigger, 42).captions);
  EXPECT_NE(synth_sample(o, 42).image.pixels, synth_sample(options(100, 8), 42).image.pixels);
  EXPECT_NE(synth_sample(o, 42).image.pixels, synth_sample(o, 43).image.pixels);
}

TEST(Synth, SceneInvariantsAndVariety) {
  const SynthOptions o = options(600, 3);
  std::map<size_t, int> shape_counts;
  std::set<int> kinds, colors, backgrounds;
  int large = 0, total = 0;
  for (int64_t i = 0; i < o.n; ++i) {
    const SynthScene sc = synth_scene(o, i);
    ASSERT_GE(sc.shapes.size(), 1u);
    ASSERT_LE(sc.shapes.size(), 3u);
    ++shape_counts[sc.shapes.size()];
    backgrounds.insert(static_cast<int>(sc.background));
    std::set<std::pair<int, int>> cells, names;
    for (size_t k = 0; k < sc.shapes.size(); ++k) {
      const SynthShape& s = sc.shapes[k];
      EXPECT_TRUE(cells.insert({s.row, s.col}).second);
      EXPECT_TRUE(names.insert({static_cast<int>(s.kind), static_cast<int>(s.color)}).second);
      if (k > 0) {
        const SynthShape& p = sc.shapes[k - 1];
        EXPECT_TRUE(p.row < s.row || (p.row == s.row && p.col < s.col)) << "reading order";
      }
      // Inside its cell, with room for its extent.
      const double cell = 64.0 / 3;
      EXPECT_GE(s.cx - 1.1 * s.radius, s.col * cell - 1e-9);
      EXPECT_LE(s.cx + 1.1 * s.radius, (s.col + 1) * cell + 1e-9);
      EXPECT_GE(s.cy - 1.1 * s.radius, s.row * cell - 1e-9);
      EXPECT_LE(s.cy + 1.1 * s.radius, (s.row + 1) * cell + 1e-9);
      kinds.insert(static_cast<int>(s.kind));
      colors.insert(static_cast<int>(s.color));
      large += s.large;
      ++total;
    }
  }
  for (size_t n = 1; n <= 3; ++n) EXPECT_NEAR(shape_counts[n], 200, 50) << n;
  EXPECT_EQ(kinds.size(), 6u);
  EXPECT_EQ(colors.size(), 6u);
  EXPECT_EQ(backgrounds.size(), 4u);
  EXPECT_NEAR(static_cast<double>(large) / total, 0.5, 0.08);
}

TEST(Synth, EveryAnswerFollowsFromTheScene) {
  const SynthOptions o = options(500, 11);
  std::map<std::string, int> types;
  int yes = 0, yes_no = 0;
  for (int64_t i = 0; i < o.n; ++i) {
    const SynthSample smp = synth_sample(o, i, false);
    ASSERT_EQ(smp.questions.size(), 4u);
    std::set<std::string> sample_types;
    for (const SynthQuestion& q : smp.questions) {
      EXPECT_EQ(expected_answer(smp.scene, q.question), q.answer) << q.question;
      EXPECT_TRUE(sample_types.insert(q.type).second) << "types repeat within a sample";
      ++types[q.type];
      if (q.type == "yes/no") {
        ++yes_no;
        yes += q.answer == "yes";
      }
    }
  }
  EXPECT_EQ(types.size(), 5u);
  for (const auto& [type, n] : types) EXPECT_NEAR(n, 400, 80) << type;
  EXPECT_NEAR(static_cast<double>(yes) / yes_no, 0.5, 0.1);
}

TEST(Synth, EveryCaptionDescribesTheScene) {
  const SynthOptions o = options(400, 12);
  std::set<std::string> distinct;
  for (int64_t i = 0; i < o.n; ++i) {
    const SynthSample smp = synth_sample(o, i, false);
    ASSERT_EQ(smp.captions.size(), 5u);
    EXPECT_EQ(std::set<std::string>(smp.captions.begin(), smp.captions.end()).size(), 5u);
    for (const std::string& c : smp.captions) {
      check_caption(smp.scene, c);
      distinct.insert(c);
    }
  }
  EXPECT_GT(distinct.size(), 1500u);
  SynthOptions fewer = o;
  fewer.captions_per_image = 2;
  EXPECT_EQ(synth_sample(fewer, 3, false).captions.size(), 2u);
}

TEST(Synth, PixelsShowTheShapes) {
  const SynthOptions o = options(60, 5);
  for (int64_t i = 0; i < o.n; ++i) {
    const SynthSample smp = synth_sample(o, i);
    ASSERT_EQ(smp.image.height, 64);
    ASSERT_EQ(smp.image.channels, 3);
    for (const SynthShape& s : smp.scene.shapes) {
      const int64_t x = static_cast<int64_t>(s.cx), y = static_cast<int64_t>(s.cy);
      for (int c = 0; c < 3; ++c)
        EXPECT_EQ(smp.image.pixels[(y * 64 + x) * 3 + c], std::clamp(s.rgb[c], 0, 255))
            << "sample " << i << " " << shape_name(s.kind);
    }
  }
  SynthOptions big = o;
  big.size = 128;
  const SynthSample smp = synth_sample(big, 0);
  EXPECT_EQ(smp.image.pixels.size(), 128u * 128 * 3);
  EXPECT_EQ(smp.captions, synth_sample(o, 0).captions);
}

TEST(Synth, Splits) {
  const SynthOptions o = options(1000);
  EXPECT_EQ(synth_split_size(o, SynthSplit::train), 800);
  EXPECT_EQ(synth_split_size(o, SynthSplit::val), 100);
  EXPECT_EQ(synth_split_size(o, SynthSplit::test), 100);
  EXPECT_EQ(synth_split(o, 799), SynthSplit::train);
  EXPECT_EQ(synth_split(o, 800), SynthSplit::val);
  EXPECT_EQ(synth_split(o, 900), SynthSplit::test);
  EXPECT_EQ(synth_split_size(options(3), SynthSplit::train), 3);
  EXPECT_IRIS_ERROR(synth_split(o, 1000), "synth: sample 1000 outside [0, 1000)");
}

TEST(Synth, BadOptions) {
  auto with = [](auto change) {
    SynthOptions o = options(10);
    change(o);
    return o;
  };
  EXPECT_IRIS_ERROR(check_synth_options(with([](SynthOptions& o) { o.n = 0; })),
                    "synth: n must be >= 1");
  EXPECT_IRIS_ERROR(check_synth_options(with([](SynthOptions& o) { o.size = 16; })),
                    "synth: size must be in [32, 1024]");
  EXPECT_IRIS_ERROR(check_synth_options(
                        with([](SynthOptions& o) { o.val_fraction = 0.6, o.test_fraction = 0.5; })),
                    "synth: need val_fraction");
  EXPECT_IRIS_ERROR(check_synth_options(with([](SynthOptions& o) { o.captions_per_image = 6; })),
                    "captions_per_image");
  EXPECT_IRIS_ERROR(check_synth_options(with([](SynthOptions& o) { o.questions_per_image = 0; })),
                    "questions_per_image");
  EXPECT_IRIS_ERROR(write_synth("/proc/iris_no_such_dir", options(2)), "synth: cannot create");
}

class SynthFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::make_temp_dir("iris_test_synth");
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string dir_;
};

std::map<std::string, std::string> read_tree(const std::string& root) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    files[fs::relative(e.path(), root).string()] =
        std::string(std::istreambuf_iterator<char>(in), {});
  }
  return files;
}

TEST_F(SynthFiles, SameBytesForAnyThreadCount) {
  const SynthOptions o = options(30, 9);
  const int threads = num_threads();
  set_num_threads(1);
  const SynthSummary one = write_synth(dir_ + "/a", o);
  set_num_threads(2);
  write_synth(dir_ + "/b", o);
  set_num_threads(threads);
  const auto a = read_tree(dir_ + "/a"), b = read_tree(dir_ + "/b");
  EXPECT_EQ(a.size(), 30u + 8u);
  EXPECT_EQ(a, b);
  EXPECT_EQ(one.train + one.val + one.test, 30);
  EXPECT_EQ(one.questions, 120);
  EXPECT_EQ(one.files.size(), a.size());
  for (const std::string& f : one.files) EXPECT_TRUE(a.count(f)) << f;
}

TEST_F(SynthFiles, FilesReadBackThroughTheReaders) {
  const SynthOptions o = options(20, 4);
  write_synth(dir_, o);
  int64_t images = 0;
  for (const char* split : {"train", "val", "test"}) {
    const auto caps = read_caption_jsonl(dir_ + "/captions_" + std::string(split) + ".jsonl");
    const auto vqa = read_vqa_jsonl(dir_ + "/vqa_" + std::string(split) + ".jsonl");
    EXPECT_EQ(vqa.size(), caps.size() * 4);
    for (const CaptionRecord& r : caps) {
      const int64_t index = std::stoll(fs::path(r.image).stem().string());
      const SynthSample smp = synth_sample(o, index);
      EXPECT_EQ(split_name(smp.split), std::string(split));
      EXPECT_EQ(r.captions, smp.captions);
      EXPECT_EQ(nn::read_image_u8(r.image).pixels, smp.image.pixels);  // PNG is lossless
      ++images;
    }
    for (const VqaRecord& q : vqa) EXPECT_FALSE(q.type.empty());
  }
  EXPECT_EQ(images, 20);
  std::ifstream manifest(dir_ + "/synth.json");
  const std::string text((std::istreambuf_iterator<char>(manifest)), {});
  EXPECT_NE(text.find("\"n\": 20, \"seed\": 4, \"size\": 64"), std::string::npos) << text;
}

}  // namespace
}  // namespace iris::models
