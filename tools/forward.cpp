#include "tools/forward.h"

#include <cstdio>
#include <map>
#include <memory>

#include "autograd/ops.h"
#include "models/zoo.h"
#include "nn/checkpoint.h"
#include "nn/safetensors.h"
#include "tools/command.h"

namespace iris::tools {

int run_forward(const ForwardOptions& opt) {
  IRIS_CHECK(models::is_captioner(opt.model),
             "iris forward: --model must be vit-cap or cnn-rnn, got '", opt.model, "'");
  const Device device = parse_device(opt.device);
  const Safetensors weights = load_safetensors(opt.weights);
  // An iris checkpoint carries its configuration; a torch_ref export is read off its shapes.
  std::string base = opt.config;
  if (auto it = weights.metadata.find("iris.config"); it != weights.metadata.end() && base == "{}")
    base = it->second;
  const std::string config = models::infer_captioner_config(opt.model, weights.tensors, base);
  std::shared_ptr<models::CaptionModel> model = models::build_captioner(opt.model, config);
  nn::load_state_dict(*model, weights.tensors, true, "", opt.weights);
  model->to(device);
  model->train();

  const Safetensors inputs = load_safetensors(opt.inputs);
  const Tensor image = inputs.at("image"), tokens = inputs.at("tokens");
  IRIS_CHECK(image.dtype() == DType::f32 && image.dim() == 4, "iris forward: ", opt.inputs,
             ": 'image' must be float32 [B, 3, H, W], got ", image.desc());
  IRIS_CHECK(tokens.dim() == 2 && tokens.size(0) == image.size(0) && tokens.size(1) >= 2 &&
                 (tokens.dtype() == DType::i64 || tokens.dtype() == DType::i32),
             "iris forward: ", opt.inputs, ": 'tokens' must be integer [", image.size(0),
             ", T + 1] with T >= 1, got ", tokens.desc());
  auto outputs =
      models::caption_forward_outputs(*model, image.to(device), tokens.to(device), opt.grads);
  save_safetensors(opt.out, outputs, {{"iris.model", opt.model}, {"iris.config", config}});
  std::printf("{\"model\": \"%s\", \"batch\": %lld, \"tensors\": %zu, \"out\": \"%s\"}\n",
              opt.model.c_str(), static_cast<long long>(image.size(0)), outputs.size(),
              opt.out.c_str());
  return 0;
}

IRIS_COMMAND(forward,
             "one training-mode forward (+ gradients) of a captioner, as torch_ref.py export",
             [](CLI::App& cmd) {
               auto opt = std::make_shared<ForwardOptions>();
               cmd.add_option("--model", opt->model, "vit-cap | cnn-rnn")->required();
               cmd.add_option("--weights", opt->weights, "state_dict safetensors")->required();
               cmd.add_option("--inputs", opt->inputs,
                              "image f32 [B,3,H,W], tokens i64 [B,T+1]")
                   ->required();
               cmd.add_option("--out", opt->out, "output safetensors")->required();
               cmd.add_flag("--grads", opt->grads, "also write loss and grad.<parameter>");
               cmd.add_option("--device", opt->device, "cpu | cuda")->capture_default_str();
               cmd.add_option("--config", opt->config,
                              "configuration JSON (e.g. {\"heads\": 3})")
                   ->capture_default_str();
               return [opt] { return run_forward(*opt); };
             });

}  // namespace iris::tools
