// `iris vqa --model RUN_DIR IMAGE "QUESTION"... [--top K] [--json]`: answers questions about
// an image with a trained VQA run; prints each answer with its probability (and the next
// most likely ones with --top).
#include "models/vqa.h"

#include <algorithm>
#include <cstdio>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "models/run.h"
#include "nn/json_lite.h"
#include "tools/command.h"

namespace iris::tools {
namespace {

struct VqaCliOptions {
  std::string model, device = "cpu", image;
  std::vector<std::string> questions;
  int64_t top = 1;
  bool json = false;
};

int run_vqa(const VqaCliOptions& o) {
  IRIS_CHECK(o.top >= 1, "iris vqa: --top must be >= 1, got ", o.top);
  IRIS_CHECK(!o.questions.empty(), "iris vqa: no question given");
  for (const std::string& q : o.questions)
    IRIS_CHECK(!models::split_words(q).empty(), "iris vqa: an empty question");
  const Device device = parse_device(o.device);
  const models::Run run = models::load_run(o.model, device);
  IRIS_CHECK(run.task == "vqa", "iris vqa: ", o.model, " is a ", run.task, " run (model ",
             run.model_name, "), not a VQA run");
  NoGradGuard no_grad;
  const Tensor image = models::load_image_tensor(o.image, run.image).unsqueeze(0);
  const int64_t Q = static_cast<int64_t>(o.questions.size());
  const Tensor images =
      image.expand({Q, image.size(1), image.size(2), image.size(3)}).contiguous().to(device);
  const models::TokenBatch q = models::encode_questions(run, o.questions);
  const Tensor probs = softmax(run.vqa().forward(images, q.ids.to(device), q.lengths.to(device)), 1)
                           .to(Device::cpu())
                           .contiguous();
  const int64_t A = probs.size(1), top = std::min<int64_t>(o.top, A);
  const std::vector<float> p = probs.to_vector<float>();
  if (o.json)
    std::printf("{\"model\": %s, \"image\": %s, \"answers\": [", json::quote(o.model).c_str(),
                json::quote(o.image).c_str());
  for (int64_t i = 0; i < Q; ++i) {
    std::vector<int64_t> order(static_cast<size_t>(A));
    std::iota(order.begin(), order.end(), 0);
    const float* row = p.data() + i * A;
    std::partial_sort(order.begin(), order.begin() + top, order.end(),
                      [&](int64_t a, int64_t b) { return row[a] > row[b]; });
    const std::string& question = o.questions[static_cast<size_t>(i)];
    if (o.json) {
      std::printf("%s{\"question\": %s, \"answer\": %s, \"probability\": %.6g, \"top\": [",
                  i ? ", " : "", json::quote(question).c_str(),
                  json::quote(run.answers.at(order[0])).c_str(), row[order[0]]);
      for (int64_t k = 0; k < top; ++k)
        std::printf("%s{\"answer\": %s, \"probability\": %.6g}", k ? ", " : "",
                    json::quote(run.answers.at(order[k])).c_str(), row[order[k]]);
      std::printf("]}");
    } else {
      std::printf("Q: %s\nA: %s (%.1f%%)\n", question.c_str(), run.answers.at(order[0]).c_str(),
                  100.0 * row[order[0]]);
      for (int64_t k = 1; k < top; ++k)
        std::printf("   %s (%.1f%%)\n", run.answers.at(order[k]).c_str(), 100.0 * row[order[k]]);
    }
  }
  if (o.json) std::printf("]}\n");
  return 0;
}

}  // namespace

IRIS_COMMAND(vqa, "answer questions about an image with a trained VQA run", [](CLI::App& cmd) {
  auto opt = std::make_shared<VqaCliOptions>();
  cmd.add_option("--model", opt->model, "run directory of iris train (task vqa)")->required();
  cmd.add_option("image", opt->image, "image file (PNG, JPEG, BMP)")->required();
  cmd.add_option("questions", opt->questions, "one or more questions (quote each)")->required();
  cmd.add_option("--top", opt->top, "also show the next most likely answers, K in all")
      ->capture_default_str();
  cmd.add_option("--device", opt->device, "cpu | cuda")->capture_default_str();
  cmd.add_flag("--json", opt->json,
               "one JSON object: {\"answers\": [{\"question\", \"answer\", \"probability\", "
               "\"top\"}]}");
  return [opt] { return run_vqa(*opt); };
});

}  // namespace iris::tools
