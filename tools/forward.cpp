#include "tools/forward.h"

#include <cstdio>
#include <map>

#include "autograd/ops.h"
#include "models/zoo.h"
#include "nn/checkpoint.h"
#include "nn/safetensors.h"

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

}  // namespace iris::tools
