// `iris caption --model RUN_DIR IMAGE... [--beam K] [--json]`: captions images with a trained
// captioning run (greedy, or beam search of width K).
#include <algorithm>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "models/run.h"
#include "nn/json_lite.h"
#include "tools/command.h"

namespace iris::tools {
namespace {

struct CaptionCliOptions {
  std::string model, device = "cpu";
  std::vector<std::string> images;
  int64_t beam = 1, batch = 32;
  bool json = false;
};

int run_caption(const CaptionCliOptions& o) {
  IRIS_CHECK(o.beam >= 1, "iris caption: --beam must be >= 1, got ", o.beam);
  IRIS_CHECK(o.batch >= 1, "iris caption: --batch must be >= 1, got ", o.batch);
  IRIS_CHECK(!o.images.empty(), "iris caption: no images given");
  const Device device = parse_device(o.device);
  const models::Run run = models::load_run(o.model, device);
  IRIS_CHECK(run.task == "caption", "iris caption: ", o.model, " is a ", run.task, " run (model ",
             run.model_name, "), not a captioning run");
  const models::DecodeOptions decode_options = models::caption_decode_options(run, o.beam);
  std::vector<std::string> captions;
  std::vector<double> scores;
  NoGradGuard no_grad;
  for (size_t first = 0; first < o.images.size(); first += static_cast<size_t>(o.batch)) {
    const size_t n = std::min(o.images.size() - first, static_cast<size_t>(o.batch));
    const std::vector<std::string> paths(o.images.begin() + first, o.images.begin() + first + n);
    const Tensor images = models::load_image_batch(paths, run.image).to(device);
    const models::DecodeResult r = models::decode(run.captioner(), images, decode_options);
    for (size_t i = 0; i < n; ++i) {
      captions.push_back(run.vocab.decode(r.sequences[i]));
      scores.push_back(r.scores[i]);
    }
  }
  if (o.json) {
    std::printf("{\"model\": %s, \"beam\": %lld, \"captions\": [", json::quote(o.model).c_str(),
                static_cast<long long>(o.beam));
    for (size_t i = 0; i < captions.size(); ++i)
      std::printf("%s{\"image\": %s, \"caption\": %s, \"score\": %.6g}", i ? ", " : "",
                  json::quote(o.images[i]).c_str(), json::quote(captions[i]).c_str(), scores[i]);
    std::printf("]}\n");
  } else {
    for (size_t i = 0; i < captions.size(); ++i)
      std::printf("%s: %s\n", o.images[i].c_str(), captions[i].c_str());
  }
  return 0;
}

}  // namespace

IRIS_COMMAND(caption, "caption images with a trained captioning run", [](CLI::App& cmd) {
  auto opt = std::make_shared<CaptionCliOptions>();
  cmd.add_option("--model", opt->model, "run directory of iris train (task caption)")->required();
  cmd.add_option("images", opt->images, "image files (PNG, JPEG, BMP)")->required();
  cmd.add_option("--beam", opt->beam, "beam width (1: greedy)")->capture_default_str();
  cmd.add_option("--batch", opt->batch, "images per batch")->capture_default_str();
  cmd.add_option("--device", opt->device, "cpu | cuda")->capture_default_str();
  cmd.add_flag("--json", opt->json,
               "one JSON object: {\"captions\": [{\"image\", \"caption\", \"score\"}]}");
  return [opt] { return run_caption(*opt); };
});

}  // namespace iris::tools
