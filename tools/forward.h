#pragma once
// `iris forward`: one training-mode forward (and backward) of a captioner on given weights
// and inputs, written as torch_ref.py export writes expected.safetensors, so that
// `torch_ref.py compare expected.safetensors out.safetensors` checks iris against PyTorch.
#include <string>

namespace iris::tools {

struct ForwardOptions {
  std::string model;    // vit-cap | cnn-rnn
  std::string weights;  // state_dict safetensors (torch_ref export or iris checkpoint)
  std::string inputs;   // image f32 [B, 3, H, W], tokens i64 [B, T + 1]
  std::string out;
  std::string config = "{}";  // configuration fields the weights cannot tell (heads)
  bool grads = false;
  std::string device = "cpu";
};

// Returns the process exit code.
int run_forward(const ForwardOptions& opt);

}  // namespace iris::tools
