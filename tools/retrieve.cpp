// `iris retrieve`: ranks with a trained retrieval (CLIP) run, both directions:
//   text -> image:  --images DIR --text "..." [--text "..."]   ranks the images of DIR
//                   (.png .jpg .jpeg .bmp, not recursive, in name order) for each text;
//   image -> text:  --image IMG [--image IMG] --texts FILE     ranks the lines of FILE
//                   (blank lines ignored) for each image.
// The score is the cosine similarity of the two embeddings; --top K keeps the best K.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "models/clip.h"
#include "models/run.h"
#include "nn/json_lite.h"
#include "tools/command.h"

namespace iris::tools {
namespace {

namespace fs = std::filesystem;

struct RetrieveCliOptions {
  std::string model, device = "cpu", images_dir, texts_file;
  std::vector<std::string> texts, images;
  int64_t top = 5, batch = 64;
  bool json = false;
};

std::vector<std::string> images_in(const std::string& dir) {
  IRIS_CHECK(fs::is_directory(dir), "iris retrieve: --images ", dir, " is not a folder");
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    std::string ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp")
      out.push_back(entry.path().string());
  }
  std::sort(out.begin(), out.end());
  IRIS_CHECK(!out.empty(), "iris retrieve: no .png/.jpg/.jpeg/.bmp images in ", dir);
  return out;
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream f(path);
  IRIS_CHECK(f.good(), "iris retrieve: cannot open --texts ", path);
  std::vector<std::string> out;
  std::string line;
  while (std::getline(f, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!models::split_words(line).empty()) out.push_back(line);
  }
  IRIS_CHECK(!out.empty(), "iris retrieve: ", path, " holds no texts");
  return out;
}

// Unit-norm embeddings [N, E] of images / texts, in batches.
Tensor embed_images(const models::Run& run, const std::vector<std::string>& paths, int64_t batch,
                    Device device) {
  std::vector<Tensor> parts;
  for (size_t i = 0; i < paths.size(); i += static_cast<size_t>(batch)) {
    const size_t end = std::min(paths.size(), i + static_cast<size_t>(batch));
    const std::vector<std::string> chunk(paths.begin() + i, paths.begin() + end);
    parts.push_back(run.clip().encode_image(models::load_image_batch(chunk, run.image).to(device)));
  }
  return cat(parts, 0);
}
Tensor embed_texts(const models::Run& run, const std::vector<std::string>& texts, int64_t batch,
                   Device device) {
  std::vector<Tensor> parts;
  for (size_t i = 0; i < texts.size(); i += static_cast<size_t>(batch)) {
    const size_t end = std::min(texts.size(), i + static_cast<size_t>(batch));
    const models::TokenBatch tb = models::encode_retrieval_texts(
        run, std::vector<std::string>(texts.begin() + i, texts.begin() + end));
    parts.push_back(run.clip().encode_text(tb.ids.to(device), tb.lengths.to(device)));
  }
  return cat(parts, 0);
}

int run_retrieve(const RetrieveCliOptions& o) {
  const bool to_image = !o.images_dir.empty() || !o.texts.empty();
  const bool to_text = !o.images.empty() || !o.texts_file.empty();
  IRIS_CHECK(to_image != to_text,
             "iris retrieve: give either --images DIR with --text (text -> image) or --image "
             "with --texts FILE (image -> text)");
  IRIS_CHECK(!to_image || (!o.images_dir.empty() && !o.texts.empty()),
             "iris retrieve: text -> image needs both --images DIR and --text");
  IRIS_CHECK(!to_text || (!o.images.empty() && !o.texts_file.empty()),
             "iris retrieve: image -> text needs both --image and --texts FILE");
  IRIS_CHECK(o.top >= 1 && o.batch >= 1, "iris retrieve: --top and --batch must be >= 1");
  for (const std::string& t : o.texts)
    IRIS_CHECK(!models::split_words(t).empty(), "iris retrieve: an empty --text");
  const Device device = parse_device(o.device);
  const models::Run run = models::load_run(o.model, device);
  IRIS_CHECK(run.task == "retrieval", "iris retrieve: ", o.model, " is a ", run.task,
             " run (model ", run.model_name, "), not a retrieval run");

  NoGradGuard no_grad;
  // Queries and candidates: rows of `similarity` are queries.
  const std::vector<std::string> queries = to_image ? o.texts : o.images;
  const std::vector<std::string> candidates =
      to_image ? images_in(o.images_dir) : lines_of(o.texts_file);
  const Tensor image_emb = embed_images(run, to_image ? candidates : queries, o.batch, device);
  const Tensor text_emb = embed_texts(run, to_image ? queries : candidates, o.batch, device);
  const Tensor similarity =
      (to_image ? matmul(text_emb, image_emb.t()) : matmul(image_emb, text_emb.t()))
          .to(Device::cpu())
          .contiguous();
  const std::vector<float> s = similarity.to_vector<float>();
  const int64_t C = static_cast<int64_t>(candidates.size());
  const int64_t top = std::min<int64_t>(o.top, C);
  if (o.json)
    std::printf("{\"model\": %s, \"direction\": \"%s\", \"results\": [",
                json::quote(o.model).c_str(), to_image ? "text->image" : "image->text");
  for (size_t q = 0; q < queries.size(); ++q) {
    const float* row = s.data() + static_cast<int64_t>(q) * C;
    std::vector<int64_t> order(static_cast<size_t>(C));
    std::iota(order.begin(), order.end(), 0);
    // Stable: equal scores keep the candidates' order.
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return row[a] > row[b]; });
    if (o.json) {
      std::printf("%s{\"query\": %s, \"matches\": [", q ? ", " : "",
                  json::quote(queries[q]).c_str());
      for (int64_t k = 0; k < top; ++k)
        std::printf("%s{\"%s\": %s, \"score\": %.6g}", k ? ", " : "", to_image ? "image" : "text",
                    json::quote(candidates[order[k]]).c_str(), row[order[k]]);
      std::printf("]}");
    } else {
      std::printf("%s\n", queries[q].c_str());
      for (int64_t k = 0; k < top; ++k)
        std::printf("  %lld. %.4f  %s\n", static_cast<long long>(k + 1), row[order[k]],
                    candidates[order[k]].c_str());
    }
  }
  if (o.json) std::printf("]}\n");
  return 0;
}

}  // namespace

IRIS_COMMAND(
    retrieve,
    "rank images for a text (--images DIR --text) or texts for an image (--image "
    "--texts FILE) with a trained retrieval run",
    [](CLI::App& cmd) {
      auto opt = std::make_shared<RetrieveCliOptions>();
      cmd.add_option("--model", opt->model,
                     "run directory of iris train (task "
                     "retrieval)")
          ->required();
      cmd.add_option("--images", opt->images_dir, "text -> image: folder of images");
      cmd.add_option("--text", opt->texts, "text -> image: the query (repeatable)");
      cmd.add_option("--image", opt->images,
                     "image -> text: the query image "
                     "(repeatable)");
      cmd.add_option("--texts", opt->texts_file,
                     "image -> text: file of candidate texts, one per line");
      cmd.add_option("--top", opt->top, "best matches shown per query")->capture_default_str();
      cmd.add_option("--batch", opt->batch, "encoding batch size")->capture_default_str();
      cmd.add_option("--device", opt->device, "cpu | cuda")->capture_default_str();
      cmd.add_flag("--json", opt->json,
                   "one JSON object: {\"direction\", \"results\": [{\"query\", "
                   "\"matches\": [{\"image\" | \"text\", \"score\"}]}]}");
      return [opt] { return run_retrieve(*opt); };
    });

}  // namespace iris::tools
