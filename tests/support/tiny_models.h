#pragma once
// Tiny model configurations shared by the model, trainer and backend tests: every branch of
// the model is built, and a forward/backward takes milliseconds.
#include <string>

#include "models/vqa.h"

namespace iris::testing {

// A FusionVqa over 8x8 images, 6-token questions from a vocabulary of 13 and 5 answers.
inline models::FusionConfig tiny_fusion(const std::string& fusion, const std::string& image,
                                        const std::string& text) {
  models::FusionConfig c;
  c.fusion = fusion;
  c.image_encoder = image;
  c.text_encoder = text;
  c.image_size = 8;
  c.cnn_channels = {4, 6};
  c.patch = 4;
  c.vit_depth = 1;
  c.dim = 8;
  c.heads = 2;
  c.mlp_dim = 10;
  c.vocab = 13;
  c.max_question_len = 6;
  c.text_depth = 1;
  c.fusion_depth = 1;
  c.num_answers = 5;
  return c;
}

}  // namespace iris::testing
