// report.html: the page holds every image (as the PNG it encodes), every generated word
// with its heatmap, every reference, one polyline point per metric record, and nothing
// that needs a network; metrics.jsonl parsing; captioner attention grids.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>

#include "models/captioner_cnn_rnn.h"
#include "models/captioner_vit.h"
#include "tests/support/testing.h"
#include "tools/report.h"

namespace iris::tools {
namespace {

namespace fs = std::filesystem;

nn::Image8 gradient_image(int64_t side, int seed) {
  nn::Image8 im{side, side, 3, {}};
  for (int64_t i = 0; i < side * side * 3; ++i)
    im.pixels.push_back(static_cast<uint8_t>((i * 7 + seed * 31) % 256));
  return im;
}

AttentionGrid grid(int64_t rows, int64_t cols, int hot) {
  AttentionGrid g{rows, cols, std::vector<float>(static_cast<size_t>(rows * cols), 0.f)};
  g.weights[static_cast<size_t>(hot)] = 1.f;
  return g;
}

size_t count(const std::string& s, const std::string& needle) {
  size_t n = 0;
  for (size_t p = s.find(needle); p != std::string::npos; p = s.find(needle, p + 1)) ++n;
  return n;
}

Report two_sample_report() {
  Report r;
  r.title = "demo <run>";
  r.summary = {{"BLEU-4", "0.71"}};
  r.samples.push_back({"a.png",
                       gradient_image(8, 1),
                       {"a", "red", "circle"},
                       {grid(2, 2, 0), grid(2, 2, 1), grid(2, 2, 3)},
                       {"a red circle", "one red circle"}});
  r.samples.push_back(
      {"b.png", gradient_image(6, 2), {"two", "<squares>"}, {}, {"two blue squares & more"}});
  r.charts.push_back(
      {"loss",
       "step",
       {{"train/loss", {{1, 2.5}, {2, 2.0}, {3, 1.5}}}, {"val/loss", {{2, 2.2}, {3, 1.9}}}}});
  r.charts.push_back({"bleu4", "step", {{"val/bleu4", {{2, 0.1}, {3, 0.3}}}}});
  return r;
}

TEST(Report, HoldsEveryImageWordReferenceAndCurvePoint) {
  const Report r = two_sample_report();
  const std::string html = render_report_html(r);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("</html>"), std::string::npos);
  // Each image exactly once, as the PNG bytes of that image.
  for (size_t i = 0; i < r.samples.size(); ++i) {
    const std::string uri = ".s" + std::to_string(i) +
                            " { background-image: url(data:image/png;base64," +
                            base64(nn::encode_png(r.samples[i].image)) + "); }";
    EXPECT_EQ(count(html, uri), 1u) << "image " << i;
  }
  EXPECT_EQ(count(html, "data:image/png;base64,"), 2u);
  // Words (escaped), one heatmap per word of the sample that has them, with one cell per
  // region: the attended cell clear, the others darkened.
  EXPECT_NE(html.find("<p class=\"gen\">a red circle</p>"), std::string::npos);
  EXPECT_NE(html.find("<p class=\"gen\">two &lt;squares&gt;</p>"), std::string::npos);
  for (const char* w : {"a", "red", "circle"})
    EXPECT_NE(html.find(std::string("<figcaption>") + w + "</figcaption>"), std::string::npos);
  EXPECT_EQ(count(html, "<figcaption>"), 3u);
  EXPECT_EQ(count(html, "<svg class=\"heat s0\""), 3u);
  EXPECT_EQ(count(html, "<svg class=\"heat s1\""), 0u);
  EXPECT_EQ(count(html, "<rect x=\"0\" y=\"0\" width=\"1\" height=\"1\" fill-opacity=\"0\"/>"), 1u);
  EXPECT_EQ(count(html, "<rect x=\"1\" y=\"1\" width=\"1\" height=\"1\" fill-opacity=\"0\"/>"), 1u);
  EXPECT_EQ(count(html, "fill-opacity=\"0.75\"/>"), 9u);  // the other cells of the 3 maps
  EXPECT_NE(html.find("<li>a red circle</li>"), std::string::npos);
  EXPECT_NE(html.find("<li>two blue squares &amp; more</li>"), std::string::npos);
  EXPECT_NE(html.find("<title>demo &lt;run&gt;</title>"), std::string::npos);
  EXPECT_NE(html.find("<td>BLEU-4</td><td>0.71</td>"), std::string::npos);
  // One polyline per series, with one point per record.
  const std::regex poly("<polyline[^>]*data-series=\"([^\"]*)\" points=\"([^\"]*)\"/>");
  std::map<std::string, size_t> points;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), poly); it != std::sregex_iterator();
       ++it) {
    const std::string pts = (*it)[2].str();
    points[(*it)[1].str()] = static_cast<size_t>(std::count(pts.begin(), pts.end(), ','));
  }
  EXPECT_EQ(points,
            (std::map<std::string, size_t>{{"train/loss", 3}, {"val/loss", 2}, {"val/bleu4", 2}}));
  // Self-contained: no network references, no external scripts or stylesheets.
  EXPECT_EQ(html.find("http://"), std::string::npos);
  EXPECT_EQ(html.find("https://"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
}

TEST(Report, ChartPointsSpanThePlotArea) {
  Report r;
  r.charts.push_back({"loss", "step", {{"loss", {{10, 4.0}, {20, 1.0}}}}});
  const std::string html = render_report_html(r);
  // x from the left margin (56) to the right edge (460 - 12); y from the top (28) to
  // the bottom (260 - 40).
  EXPECT_NE(html.find("points=\"56,28 448,220\""), std::string::npos) << html;
}

TEST(Report, RejectsMismatchedAttention) {
  Report r = two_sample_report();
  r.samples[0].attention.pop_back();
  EXPECT_IRIS_ERROR(render_report_html(r), "has 3 words but 2 attention maps");
  r = two_sample_report();
  r.samples[0].attention[1].weights.pop_back();
  EXPECT_IRIS_ERROR(render_report_html(r), "an attention grid of 2x2 has 3 weights");
}

TEST(Report, WritesTheFileAndNamesAnUnwritablePath) {
  const fs::path dir = testing::make_temp_dir("iris_test_report");
  const std::string path = (dir / "report.html").string();
  write_report(path, two_sample_report());
  std::ifstream f(path);
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, render_report_html(two_sample_report()));
  EXPECT_FALSE(fs::exists(path + ".tmp"));
  EXPECT_IRIS_ERROR(write_report((dir / "no/such/dir/r.html").string(), two_sample_report()),
                    "no/such/dir/r.html.tmp");
  fs::remove_all(dir);
}

TEST(Report, Base64) {
  auto b = [](const std::string& s) { return base64(std::vector<uint8_t>(s.begin(), s.end())); };
  EXPECT_EQ(b(""), "");
  EXPECT_EQ(b("f"), "Zg==");
  EXPECT_EQ(b("fo"), "Zm8=");
  EXPECT_EQ(b("foo"), "Zm9v");
  EXPECT_EQ(b("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64({0xff, 0xfe, 0x00}), "//4A");
}

TEST(Report, ChartsFromMetricsJsonl) {
  const fs::path dir = testing::make_temp_dir("iris_test_report_metrics");
  const fs::path path = dir / "metrics.jsonl";
  {
    std::ofstream f(path);
    f << R"({"step": 1, "epoch": 0, "loss": 3.0, "lr": 0.001})"
      << "\n\n"
      << R"({"step": 2, "loss": 2.0, "images_per_s": 50})"
      << "\n"
      << R"({"split": "val", "step": 2, "loss": 2.5, "bleu4": 0.2, "cider_d": 0.5})"
      << "\n"
      << R"({"note": "no step"})"
      << "\n"
      << R"({"step": 3, "loss": 1.0})"
      << "\n";
  }
  const auto charts = charts_from_metrics_jsonl(path.string());
  ASSERT_EQ(charts.size(), 3u);
  EXPECT_EQ(charts[0].title, "loss");
  ASSERT_EQ(charts[0].series.size(), 2u);
  EXPECT_EQ(charts[0].series[0].name, "loss");
  EXPECT_EQ(charts[0].series[0].points,
            (std::vector<std::pair<double, double>>{{1, 3.0}, {2, 2.0}, {3, 1.0}}));
  EXPECT_EQ(charts[0].series[1].name, "val/loss");
  EXPECT_EQ(charts[0].series[1].points, (std::vector<std::pair<double, double>>{{2, 2.5}}));
  EXPECT_EQ(charts[1].title, "val/bleu4");
  EXPECT_EQ(charts[2].title, "val/cider_d");
  EXPECT_EQ(charts[2].series[0].points, (std::vector<std::pair<double, double>>{{2, 0.5}}));
  {
    std::ofstream f(path, std::ios::app);
    f << "{\"step\": 4, \"loss\": }\n";
  }
  EXPECT_IRIS_ERROR(charts_from_metrics_jsonl(path.string()), "metrics.jsonl:7");
  fs::remove_all(dir);
  EXPECT_IRIS_ERROR(charts_from_metrics_jsonl(path.string()), "cannot open");
}

void expect_distributions(const std::vector<AttentionGrid>& grids, size_t n, int64_t side) {
  ASSERT_EQ(grids.size(), n);
  for (const AttentionGrid& g : grids) {
    EXPECT_EQ(g.rows, side);
    EXPECT_EQ(g.cols, side);
    ASSERT_EQ(g.weights.size(), static_cast<size_t>(side * side));
    double total = 0;
    for (float w : g.weights) {
      EXPECT_GE(w, 0.f);
      total += w;
    }
    EXPECT_NEAR(total, 1.0, 1e-5);
  }
}

TEST(Report, CaptionAttentionOfBothCaptioners) {
  Generator gen(3);
  models::ViTCaptionerConfig vc;
  vc.image_size = 16, vc.patch = 4, vc.dim = 16, vc.encoder_depth = 1, vc.decoder_depth = 2;
  vc.heads = 2, vc.mlp_dim = 32, vc.vocab = 12, vc.max_len = 8;
  models::ViTCaptioner vit(vc, &gen);
  vit.eval();
  const Tensor image = testing::randn_seeded({3, 16, 16}, 4, DType::f32);
  const std::vector<int64_t> seq{5, 7, 9};
  const auto grids = caption_attention(vit, image, seq, 1);
  expect_distributions(grids, 3, 4);
  // Row t of the layer-averaged cross-attention, class token left out, renormalised.
  {
    NoGradGuard ng;
    const auto out = vit.forward_with_attention(
        image.unsqueeze(0), Tensor::from_vector(std::vector<int64_t>{1, 5, 7, 9}, {1, 4}));
    const auto a =
        (out.cross_attention[0] + out.cross_attention[1]).contiguous().to_vector<float>();
    for (int64_t t = 0; t < 3; ++t) {
      double rest = 0;
      for (int64_t k = 1; k < 17; ++k) rest += a[t * 17 + k];
      for (int64_t k = 0; k < 16; ++k)
        EXPECT_NEAR(grids[t].weights[k], a[t * 17 + 1 + k] / rest, 1e-6);
    }
  }
  EXPECT_TRUE(caption_attention(vit, image, {}, 1).empty());
  EXPECT_IRIS_ERROR(caption_attention(vit, image.unsqueeze(0), seq, 1), "expected an image");

  models::CnnRnnConfig rc;
  rc.vocab = 12, rc.emb = 8, rc.hidden = 8, rc.channels = {4, 4};
  models::CnnRnnCaptioner rnn(rc, &gen);
  rnn.eval();
  expect_distributions(caption_attention(rnn, image, seq, 1), 3, 4);
}

}  // namespace
}  // namespace iris::tools
