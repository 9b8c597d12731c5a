#pragma once
// report.html: one self-contained page about a trained captioner (what `iris demo` writes).
// Held-out images with the generated caption, the reference captions and, for each
// generated word, the attention over the image while that word was produced; and the
// loss and metric curves of training as inline SVG line charts. Everything is inline
// (PNG data: URIs, CSS, SVG), so the page opens in a browser without a network.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "models/decode.h"
#include "nn/image.h"

namespace iris::tools {

// Attention weights over a rows x cols grid of image regions (row-major).
struct AttentionGrid {
  int64_t rows = 0, cols = 0;
  std::vector<float> weights;
};

struct ReportSample {
  std::string name;                      // e.g. the image file
  nn::Image8 image;                      // RGB
  std::vector<std::string> words;        // the generated caption, one entry per token
  std::vector<AttentionGrid> attention;  // one per word, or empty (no heatmaps)
  std::vector<std::string> references;
};

struct ReportSeries {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (x, y)
};
struct ReportChart {
  std::string title, x_label;
  std::vector<ReportSeries> series;
};

struct Report {
  std::string title = "iris report";
  std::vector<std::pair<std::string, std::string>> summary;  // (label, value) rows
  std::vector<ReportChart> charts;
  std::vector<ReportSample> samples;
};

// The page as a string, and written atomically to `path` (iris::Error naming the file).
std::string render_report_html(const Report& report);
void write_report(const std::string& path, const Report& report);

// Charts from a training run's metrics.jsonl (one JSON object per line). The x axis is
// `x_key`; each other numeric field is a series; a string field "split" (or "phase")
// prefixes the series' names ("val/loss"). Fields whose name contains "loss" share the
// first chart; each other field gets its own, except those listed in `skip`. A malformed
// line throws naming file:line; lines without `x_key` are skipped.
std::vector<ReportChart> charts_from_metrics_jsonl(const std::string& path,
                                                   const std::string& x_key = "step",
                                                   const std::vector<std::string>& skip = {
                                                       "epoch", "lr", "time_s", "elapsed_s",
                                                       "images_per_s", "eta_s", "seconds"});

// The attention of a captioner (vit-cap: cross-attention averaged over decoder layers and
// heads, the class token left out and the rest renormalised; cnn-rnn: its attention weights)
// while it produced each token of `sequence` (without <bos>/<eos>) for one image [3, H, W]:
// one grid per token. Runs teacher-forced on <bos> + sequence, without gradients.
std::vector<AttentionGrid> caption_attention(models::CaptionModel& model, const Tensor& image,
                                             const std::vector<int64_t>& sequence, int64_t bos);

// Standard base64 of bytes (for data: URIs).
std::string base64(const std::vector<uint8_t>& bytes);

}  // namespace iris::tools
