#include "tools/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <sstream>

#include "autograd/ops.h"
#include "models/captioner_cnn_rnn.h"
#include "models/captioner_vit.h"
#include "nn/json_lite.h"

namespace iris::tools {
namespace {

std::string escape_html(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string fmt(double v, int precision = 4) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", precision, v);
  return buf;
}

const char* kSeriesColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                               "#9467bd", "#8c564b", "#e377c2", "#17becf"};

// One line chart: axes with the data's range, a polyline per series (every point), a legend.
void render_chart(std::ostream& os, const ReportChart& chart) {
  constexpr double W = 460, H = 260, left = 56, right = 12, top = 28, bottom = 40;
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const auto& s : chart.series)
    for (const auto& [x, y] : s.points) {
      x0 = std::min(x0, x), x1 = std::max(x1, x);
      y0 = std::min(y0, y), y1 = std::max(y1, y);
    }
  if (!(x0 <= x1)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;  // no points
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) y1 = y0 + 1;
  const auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * (W - left - right); };
  const auto py = [&](double y) { return top + (y1 - y) / (y1 - y0) * (H - top - bottom); };
  os << "<svg class=\"chart\" viewBox=\"0 0 " << W << " " << H << "\" width=\"" << W
     << "\" height=\"" << H << "\" role=\"img\">\n";
  os << "<text x=\"" << W / 2 << "\" y=\"18\" text-anchor=\"middle\" class=\"title\">"
     << escape_html(chart.title) << "</text>\n";
  os << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << W - left - right
     << "\" height=\"" << H - top - bottom << "\" class=\"frame\"/>\n";
  const auto label = [&](double x, double y, const std::string& text, const char* anchor) {
    os << "<text x=\"" << fmt(x, 6) << "\" y=\"" << fmt(y, 6) << "\" text-anchor=\"" << anchor
       << "\">" << escape_html(text) << "</text>\n";
  };
  label(left - 4, top + 4, fmt(y1), "end");
  label(left - 4, H - bottom, fmt(y0), "end");
  label(left, H - bottom + 14, fmt(x0), "start");
  label(W - right, H - bottom + 14, fmt(x1), "end");
  label((left + W - right) / 2, H - 6, chart.x_label, "middle");
  for (size_t i = 0; i < chart.series.size(); ++i) {
    const ReportSeries& s = chart.series[i];
    const char* color = kSeriesColors[i % std::size(kSeriesColors)];
    os << "<polyline class=\"series\" fill=\"none\" stroke=\"" << color
       << "\" stroke-width=\"1.5\" data-series=\"" << escape_html(s.name) << "\" points=\"";
    for (size_t k = 0; k < s.points.size(); ++k)
      os << (k ? " " : "") << fmt(px(s.points[k].first), 6) << ","
         << fmt(py(s.points[k].second), 6);
    os << "\"/>\n";
    const double ly = top + 14 + 14 * static_cast<double>(i);
    os << "<text x=\"" << W - right - 6 << "\" y=\"" << ly << "\" text-anchor=\"end\" fill=\""
       << color << "\">" << escape_html(s.name) << "</text>\n";
  }
  os << "</svg>\n";
}

// The image seen through the attention: each region darkened by how far its weight lies
// below the map's largest (scaled to the map's range, so a diffuse map still shows where it
// peaks), which leaves the attended shapes in their own colours.
void render_heatmap(std::ostream& os, const AttentionGrid& grid, size_t sample) {
  const auto [lo, hi] = std::minmax_element(grid.weights.begin(), grid.weights.end());
  const double range = *hi - *lo;
  os << "<svg class=\"heat s" << sample << "\" viewBox=\"0 0 " << grid.cols << " " << grid.rows
     << "\" preserveAspectRatio=\"none\">";
  for (int64_t r = 0; r < grid.rows; ++r)
    for (int64_t c = 0; c < grid.cols; ++c) {
      const float w = grid.weights[static_cast<size_t>(r * grid.cols + c)];
      const double a = range > 0 ? 0.75 * (*hi - w) / range : 0.0;
      os << "<rect x=\"" << c << "\" y=\"" << r << "\" width=\"1\" height=\"1\" fill-opacity=\""
         << fmt(a, 2) << "\"/>";
    }
  os << "</svg>";
}

constexpr const char* kStyle = R"(
body { font-family: system-ui, sans-serif; margin: 24px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; }
table.summary td { padding: 2px 12px 2px 0; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
svg.chart text { font-size: 11px; } svg.chart .title { font-size: 13px; font-weight: 600; }
svg.chart .frame { fill: none; stroke: #999; }
.sample { border-top: 1px solid #ddd; padding: 12px 0; display: flex; gap: 16px; }
.photo { width: 128px; height: 128px; background-size: 100% 100%; flex: none;
         image-rendering: pixelated; }
.gen { font-size: 16px; font-weight: 600; margin: 0 0 4px 0; }
.refs { margin: 0 0 8px 0; padding-left: 18px; color: #555; font-size: 13px; }
.words { display: flex; flex-wrap: wrap; gap: 6px; }
figure { margin: 0; text-align: center; font-size: 12px; }
svg.heat { width: 72px; height: 72px; background-size: 100% 100%; image-rendering: pixelated;
           display: block; }
svg.heat rect { fill: #000; }
)";

}  // namespace

std::string base64(const std::vector<uint8_t>& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const uint32_t n = (uint32_t(bytes[i]) << 16) |
                       (i + 1 < bytes.size() ? uint32_t(bytes[i + 1]) << 8 : 0) |
                       (i + 2 < bytes.size() ? uint32_t(bytes[i + 2]) : 0);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(n >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[n & 63] : '=';
  }
  return out;
}

std::string render_report_html(const Report& report) {
  for (const ReportSample& s : report.samples) {
    IRIS_CHECK(s.attention.empty() || s.attention.size() == s.words.size(), "report: sample '",
               s.name, "' has ", s.words.size(), " words but ", s.attention.size(),
               " attention maps");
    for (const AttentionGrid& g : s.attention)
      IRIS_CHECK(g.rows > 0 && g.cols > 0 && g.weights.size() == size_t(g.rows * g.cols),
                 "report: sample '", s.name, "': an attention grid of ", g.rows, "x", g.cols,
                 " has ", g.weights.size(), " weights");
  }
  std::ostringstream os;
  os << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>"
     << escape_html(report.title) << "</title>\n<style>" << kStyle;
  // Each image once, as a class the photo and every heatmap of its sample draw behind them.
  for (size_t i = 0; i < report.samples.size(); ++i)
    os << ".s" << i << " { background-image: url(data:image/png;base64,"
       << base64(nn::encode_png(report.samples[i].image)) << "); }\n";
  os << "</style>\n</head>\n<body>\n<h1>" << escape_html(report.title) << "</h1>\n";
  if (!report.summary.empty()) {
    os << "<table class=\"summary\">\n";
    for (const auto& [k, v] : report.summary)
      os << "<tr><td>" << escape_html(k) << "</td><td>" << escape_html(v) << "</td></tr>\n";
    os << "</table>\n";
  }
  if (!report.charts.empty()) {
    os << "<h2>Training curves</h2>\n<div class=\"charts\">\n";
    for (const ReportChart& c : report.charts) render_chart(os, c);
    os << "</div>\n";
  }
  if (!report.samples.empty()) {
    os << "<h2>Held-out images</h2>\n<p>Under each generated word: where the model looked "
          "while producing it (darker: less attention).</p>\n";
  }
  for (size_t i = 0; i < report.samples.size(); ++i) {
    const ReportSample& s = report.samples[i];
    std::string caption;
    for (const std::string& w : s.words) caption += (caption.empty() ? "" : " ") + w;
    os << "<div class=\"sample\">\n<div class=\"photo s" << i << "\" title=\""
       << escape_html(s.name) << "\"></div>\n<div>\n<p class=\"gen\">" << escape_html(caption)
       << "</p>\n<ul class=\"refs\">\n";
    for (const std::string& r : s.references) os << "<li>" << escape_html(r) << "</li>\n";
    os << "</ul>\n";
    if (!s.attention.empty()) {
      os << "<div class=\"words\">\n";
      for (size_t w = 0; w < s.words.size(); ++w) {
        os << "<figure>";
        render_heatmap(os, s.attention[w], i);
        os << "<figcaption>" << escape_html(s.words[w]) << "</figcaption></figure>\n";
      }
      os << "</div>\n";
    }
    os << "</div>\n</div>\n";
  }
  os << "</body>\n</html>\n";
  return os.str();
}

void write_report(const std::string& path, const Report& report) {
  const std::string html = render_report_html(report);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    IRIS_CHECK(f.good(), "write_report: cannot open ", tmp, " for writing");
    f.write(html.data(), static_cast<std::streamsize>(html.size()));
    f.flush();
    IRIS_CHECK(f.good(), "write_report: writing ", tmp, " failed (disk full?)");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  IRIS_CHECK(!ec, "write_report: cannot rename ", tmp, " to ", path, ": ", ec.message());
}

std::vector<ReportChart> charts_from_metrics_jsonl(const std::string& path,
                                                   const std::string& x_key,
                                                   const std::vector<std::string>& skip) {
  std::ifstream f(path);
  IRIS_CHECK(f.good(), "report: cannot open ", path);
  std::vector<std::string> order;  // series names in first-seen order
  std::map<std::string, ReportSeries> series;
  std::string line;
  for (int64_t line_no = 1; std::getline(f, line); ++line_no) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no);
    const json::Value rec = json::parse(line, where);
    IRIS_CHECK(rec.kind == json::Value::Kind::object, where, ": expected a JSON object");
    const json::Value* x = rec.find(x_key);
    if (!x || x->kind != json::Value::Kind::number) continue;
    std::string prefix;
    for (const char* key : {"split", "phase"})
      if (const json::Value* v = rec.find(key); v && v->kind == json::Value::Kind::string) {
        prefix = v->str + "/";
        break;
      }
    for (const auto& [key, v] : rec.obj) {
      if (key == x_key || v.kind != json::Value::Kind::number ||
          std::find(skip.begin(), skip.end(), key) != skip.end())
        continue;
      const std::string name = prefix + key;
      if (!series.count(name)) order.push_back(name), series[name].name = name;
      series[name].points.emplace_back(x->num, v.num);
    }
  }
  std::vector<ReportChart> charts;
  ReportChart loss{"loss", x_key, {}};
  for (const std::string& name : order)
    if (name.find("loss") != std::string::npos) loss.series.push_back(series[name]);
  if (!loss.series.empty()) charts.push_back(std::move(loss));
  for (const std::string& name : order)
    if (name.find("loss") == std::string::npos) charts.push_back({name, x_key, {series[name]}});
  return charts;
}

std::vector<AttentionGrid> caption_attention(models::CaptionModel& model, const Tensor& image,
                                             const std::vector<int64_t>& sequence, int64_t bos) {
  IRIS_CHECK(image.defined() && image.dim() == 3,
             "caption_attention: expected an image "
             "[3, H, W], got ",
             image.defined() ? image.desc() : "undefined");
  std::vector<AttentionGrid> grids;
  if (sequence.empty()) return grids;
  NoGradGuard no_grad;
  std::vector<int64_t> ids{bos};
  ids.insert(ids.end(), sequence.begin(), sequence.end());
  const Tensor tokens =
      Tensor::from_vector(ids, {1, static_cast<int64_t>(ids.size())}).to(image.device());
  const Tensor batch = image.unsqueeze(0);
  std::vector<float> maps;  // [T, regions]
  int64_t side = 0, skip = 0;
  if (auto* vit = dynamic_cast<models::ViTCaptioner*>(&model)) {
    const auto out = vit->forward_with_attention(batch, tokens, true);
    Tensor avg = out.cross_attention.at(0);
    for (size_t l = 1; l < out.cross_attention.size(); ++l) avg = avg + out.cross_attention[l];
    maps = avg.select(0, 0).to(Device::cpu()).contiguous().to_vector<float>();
    side = vit->config.image_size / vit->config.patch;
    skip = 1;  // the class token
  } else if (auto* rnn = dynamic_cast<models::CnnRnnCaptioner*>(&model)) {
    const auto out = rnn->forward_with_attention(batch, tokens, true);
    const Tensor a = out.attention.select(0, 0).to(Device::cpu()).contiguous();
    maps = a.to_vector<float>();
    side = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(a.size(1)))));
  } else {
    IRIS_FAIL("caption_attention: the model exposes no attention (vit-cap, cnn-rnn do)");
  }
  const int64_t T = static_cast<int64_t>(ids.size());
  const int64_t stride = static_cast<int64_t>(maps.size()) / T;
  IRIS_CHECK(stride == skip + side * side, "caption_attention: ", stride,
             " attention entries per token do not make a ", side, "x", side, " grid");
  // Row t is what the model attended to when predicting token t + 1 of <bos> + sequence.
  for (size_t t = 0; t < sequence.size(); ++t) {
    AttentionGrid g{side, side, {}};
    const float* row = maps.data() + t * stride + skip;
    double total = 0;
    for (int64_t k = 0; k < side * side; ++k) total += row[k];
    for (int64_t k = 0; k < side * side; ++k)
      g.weights.push_back(total > 0 ? static_cast<float>(row[k] / total) : 0.f);
    grids.push_back(std::move(g));
  }
  return grids;
}

}  // namespace iris::tools
