// `iris eval`: a run's task metrics on a test file; the last line printed is one JSON object.
#include <cstdio>
#include <memory>
#include <string>

#include "core/device.h"
#include "models/trainer.h"
#include "tools/command.h"

namespace iris::tools {
namespace {

struct EvalCliOptions {
  std::string model, data, device = "cpu";
  models::EvalOptions eval;
  int64_t show = 0;
};

int run_eval(const EvalCliOptions& o) {
  const models::Run run = models::load_run(o.model, parse_device(o.device));
  const models::EvalResult r = models::evaluate(run, o.data, o.eval);
  std::printf("%s (%s) on %s: %lld %s\n", run.model_name.c_str(), run.task.c_str(), o.data.c_str(),
              static_cast<long long>(r.samples), run.task == "vqa" ? "questions" : "images");
  if (run.task == "caption") {
    std::printf(
        "  BLEU-1 %.4f  BLEU-2 %.4f  BLEU-3 %.4f  BLEU-4 %.4f  CIDEr-D %.4f  ROUGE-L %.4f\n",
        r.caption.bleu[0], r.caption.bleu[1], r.caption.bleu[2], r.caption.bleu[3],
        r.caption.cider_d, r.caption.rouge_l);
  } else if (run.task == "vqa") {
    std::printf("  accuracy %.4f\n", r.vqa.overall);
    for (const auto& [type, acc] : r.vqa.per_type)
      std::printf("    %-10s %.4f (%lld)\n", type.c_str(), acc,
                  static_cast<long long>(r.vqa.type_count.at(type)));
  } else {
    for (size_t i = 0; i < r.retrieval.ks.size(); ++i)
      std::printf("  recall@%lld  text->image %.4f  image->text %.4f  (pairs: text->image %.4f)\n",
                  static_cast<long long>(r.retrieval.ks[i]), r.retrieval.text_to_image[i],
                  r.retrieval.image_to_text[i], r.retrieval_pairs.text_to_image[i]);
  }
  for (int64_t i = 0; i < o.show && i < static_cast<int64_t>(r.predictions.size()); ++i)
    std::printf("  [%lld] %s\n", static_cast<long long>(i), r.predictions[i].c_str());
  if (r.skipped > 0) {
    std::printf("skipped %lld bad samples:\n", static_cast<long long>(r.skipped));
    for (const auto& m : r.skip_messages) std::printf("  %s\n", m.c_str());
  }
  std::printf("%s\n", r.to_json().c_str());
  return 0;
}

}  // namespace

IRIS_COMMAND(eval, "evaluate a trained run on a test file (last line: JSON figures)",
             [](CLI::App& cmd) {
               auto opt = std::make_shared<EvalCliOptions>();
               cmd.add_option("--model", opt->model, "run directory of iris train")->required();
               cmd.add_option("--data", opt->data, "test JSONL of the run's task")->required();
               cmd.add_option("--device", opt->device, "cpu | cuda")->capture_default_str();
               cmd.add_option("--batch", opt->eval.batch, "batch size")->capture_default_str();
               cmd.add_option("--beam", opt->eval.beam, "captioning beam width (1: greedy)")
                   ->capture_default_str();
               cmd.add_option("--limit", opt->eval.limit, "samples at most (0: all)");
               cmd.add_flag("--skip-bad", opt->eval.skip_bad, "skip unreadable images (counted)");
               cmd.add_option("--show", opt->show, "print the first N predictions");
               return [opt] { return run_eval(*opt); };
             });

}  // namespace iris::tools
