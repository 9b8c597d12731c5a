// `iris synth`: the synthetic multimodal set (models/synth.h) written as files in the formats
// `iris train` reads.
#include "models/synth.h"

#include <cstdio>
#include <memory>

#include "tools/command.h"

namespace iris::tools {
namespace {

struct SynthCliOptions {
  std::string out;
  models::SynthOptions synth;
};

int run_synth(const SynthCliOptions& o) {
  const std::string& out = o.out;
  const models::SynthSummary s = models::write_synth(out, o.synth);
  std::printf(
      "wrote %s: %lld images (train %lld, val %lld, test %lld), %lld questions, %zu files\n",
      out.c_str(), static_cast<long long>(s.train + s.val + s.test),
      static_cast<long long>(s.train), static_cast<long long>(s.val),
      static_cast<long long>(s.test), static_cast<long long>(s.questions), s.files.size());
  std::printf(
      "  captions: %s/captions_{train,val,test}.jsonl  vqa: %s/vqa_{train,val,test}.jsonl\n",
      out.c_str(), out.c_str());
  return 0;
}

}  // namespace

IRIS_COMMAND(synth, "write the synthetic multimodal data set (images, captions, VQA, splits)",
             [](CLI::App& cmd) {
               auto cli = std::make_shared<SynthCliOptions>();
               models::SynthOptions* opt = &cli->synth;
               cmd.add_option("--out", cli->out, "output folder")->required();
               cmd.add_option("--n", opt->n, "images (the default is the quality bars' set)")
                   ->capture_default_str();
               cmd.add_option("--seed", opt->seed, "seed (sample i is a function of it)")
                   ->capture_default_str();
               cmd.add_option("--size", opt->size, "image side in pixels")->capture_default_str();
               cmd.add_option("--captions", opt->captions_per_image, "captions per image (1..5)")
                   ->capture_default_str();
               cmd.add_option("--questions", opt->questions_per_image, "questions per image (1..5)")
                   ->capture_default_str();
               return [cli] { return run_synth(*cli); };
             });

}  // namespace iris::tools
