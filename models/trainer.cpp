// The training loop shared by every task: options and defaults, the model, AdamW with a
// cosine warm-up schedule, the data loader, progress, validation, checkpoints and resume.
#include "models/trainer.h"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "autograd/ops.h"
#include "core/error.h"
#include "models/zoo.h"
#include "nn/amp.h"
#include "nn/checkpoint.h"
#include "nn/json_lite.h"
#include "nn/optim.h"
#include "nn/schedule.h"

namespace iris::models {
namespace fs = std::filesystem;
using train_detail::TaskBatch;
using train_detail::TrainTask;

// On the default `iris synth` set (8000 training images, 32000 questions). cnn-rnn's 6 epochs
// are measured: test BLEU-4 0.56 in 376 CPU-seconds with 2 threads. The other epoch counts
// fill 13-14 minutes of a dedicated 2-core CPU at the CPU time per image measured with 2
// threads, validation included (bench/quality measures them). The learning rates and batch
// sizes come from sweeps of iris itself on a lent GPU (2026-11-29): VQA learned the shape
// kinds only once its per-image step was smaller (batch 16 at 2e-3 left shape questions at
// chance after 15 epochs; batch 64 at 1e-3 reached 0.93 on them).
TrainDefaults train_defaults(const std::string& model) {
  TrainDefaults d;
  // Each default trains in under 15 minutes on two idle CPU cores on the default synth set
  // (bench/quality measures it). The conv stems learn the shape kinds that a linear patch
  // projection (or an early stride) learns only slowly at 64 pixels.
  if (model == "vit-cap") {
    d.epochs = 14;
    d.batch = 32;
    d.lr = 2e-3;
    d.config = R"({"dim": 96, "encoder_depth": 2, "decoder_depth": 2, "heads": 4,
                   "mlp_dim": 192, "stem_channels": [16, 32]})";
  } else if (model == "cnn-rnn") {
    d.epochs = 6;
    d.batch = 32;
    d.lr = 2e-3;
    d.config = R"({"emb": 64, "hidden": 192, "channels": [16, 32, 64, 128]})";
  } else if (model == "clip") {
    d.epochs = 15;
    d.batch = 64;
    d.lr = 1e-3;
    d.config = R"({"vision_dim": 96, "vision_depth": 3, "vision_heads": 4, "vision_mlp": 192,
                   "text_dim": 96, "text_depth": 2, "text_heads": 4, "text_mlp": 192,
                   "embed_dim": 64, "vision_stem_channels": [16, 32]})";
  } else if (task_of_model(model) == "vqa") {
    // A VQA sample is an image with all of its questions (about four on the synth set).
    d.epochs = 26;
    d.batch = 64;
    d.lr = 1e-3;
    d.config = R"({"cnn_channels": [32, 64, 128], "dim": 96, "heads": 4, "mlp_dim": 192,
                   "text_depth": 1, "fusion_depth": 2})";
  }
  return d;
}

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The fields of several JSON objects, later ones winning (e.g. defaults, the data's fields,
// the user's overrides), as one object.
std::string merge_json_objects(const std::vector<std::pair<std::string, std::string>>& docs) {
  std::vector<std::pair<std::string, std::string>> fields;  // name -> raw JSON value
  for (const auto& [who, text] : docs) {
    const json::Value v = json::parse(text, who);
    IRIS_CHECK(v.kind == json::Value::Kind::object, who, ": expected a JSON object, got ", text);
    for (const auto& [name, value] : v.obj) {
      std::string raw;
      if (value.kind == json::Value::Kind::string) {
        raw = json::quote(value.str);
      } else if (value.kind == json::Value::Kind::array) {
        raw = "[";
        for (size_t i = 0; i < value.arr.size(); ++i)
          raw += (i ? ", " : "") + std::to_string(value.arr[i].integer);
        raw += "]";
      } else if (value.kind == json::Value::Kind::boolean) {
        raw = value.b ? "true" : "false";
      } else if (value.is_integer) {
        raw = std::to_string(value.integer);
      } else {
        std::ostringstream os;
        os.precision(17);
        os << value.num;
        raw = os.str();
      }
      bool replaced = false;
      for (auto& f : fields)
        if (f.first == name) f.second = raw, replaced = true;
      if (!replaced) fields.emplace_back(name, raw);
    }
  }
  std::string out = "{";
  for (size_t i = 0; i < fields.size(); ++i)
    out += (i ? ", " : "") + json::quote(fields[i].first) + ": " + fields[i].second;
  return out + "}";
}

std::string fmt(double v) {
  std::ostringstream os;
  os.precision(6);
  os << v;
  return os.str();
}

// Where two vocabularies differ, for the resume error.
std::string vocab_difference(const std::string& saved, const Vocabulary& now) {
  const Vocabulary old = Vocabulary::from_text(saved, "checkpoint vocabulary");
  std::ostringstream os;
  os << "the checkpoint's vocabulary has " << old.size() << " tokens, the data's " << now.size();
  for (int64_t i = 0; i < std::min(old.size(), now.size()); ++i)
    if (old.token(i) != now.token(i)) {
      os << "; first difference at id " << i << ": '" << old.token(i) << "' vs '" << now.token(i)
         << "'";
      break;
    }
  return os.str();
}

std::string answers_text(const std::vector<std::string>& answers) {
  std::string s;
  for (const auto& a : answers) s += a + "\n";
  return s;
}

// What a checkpoint must agree on with the options to be resumed, in the order a mismatch is
// reported (the most telling first: a model's configuration follows from its vocabulary).
using Identity = std::vector<std::pair<std::string, std::string>>;
Identity identity(const Run& run, const TrainOptions& o, int64_t total_steps, int64_t batch,
                  double lr) {
  return {{"task", run.task},
          {"model", run.model_name},
          {"vocab", run.vocab.to_text()},
          {"answers", answers_text(run.answers)},
          {"config", run.config},
          {"image_size", std::to_string(run.image.size)},
          {"total_steps", std::to_string(total_steps)},
          {"batch", std::to_string(batch)},
          {"lr", fmt(lr)},
          {"seed", std::to_string(o.seed)}};
}

void check_identity(const std::map<std::string, std::string>& saved, const Identity& now,
                    const std::string& path) {
  for (const auto& [key, value] : now) {
    auto it = saved.find(key);
    IRIS_CHECK(it != saved.end(), "train --resume: ", path, " has no '", key,
               "' (not a checkpoint of iris train)");
    if (it->second == value) continue;
    if (key == "vocab")
      IRIS_FAIL("train --resume: ", path, ": vocabulary mismatch: ",
                vocab_difference(it->second, Vocabulary::from_text(value, "data")));
    IRIS_FAIL("train --resume: ", path, ": ", key, " mismatch: checkpoint '", it->second,
              "' vs now '", value, "'");
  }
}

void append_line(const std::string& path, const std::string& line) {
  std::ofstream out(path, std::ios::app);
  IRIS_CHECK(out.good(), path, ": cannot append");
  out << line << "\n";
  out.flush();
  IRIS_CHECK(out.good(), path, ": write failed");
}

// Keeps the metrics.jsonl rows up to `step` (rows a stopped run logged after its checkpoint
// would otherwise appear twice).
void truncate_metrics(const std::string& path, int64_t step) {
  if (!fs::exists(path)) return;
  std::istringstream in(read_file(path));
  std::string kept;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    const json::Value v = json::parse(line, path);
    const json::Value* s = v.find("step");
    if (s != nullptr && s->integer <= step) kept += line + "\n";
  }
  write_file_atomic(path, kept);
}

std::string options_json(const TrainOptions& o, const Run& run, int64_t total_steps, int64_t epochs,
                         int64_t batch, double lr, double wd) {
  std::ostringstream os;
  os << "{\n  \"task\": " << json::quote(run.task)
     << ",\n  \"model\": " << json::quote(run.model_name) << ",\n  \"config\": " << run.config
     << ",\n  \"data\": " << json::quote(o.data) << ",\n  \"val\": " << json::quote(o.val)
     << ",\n  \"epochs\": " << epochs << ",\n  \"steps\": " << total_steps
     << ",\n  \"batch\": " << batch << ",\n  \"lr\": " << fmt(lr)
     << ",\n  \"weight_decay\": " << fmt(wd)
     << ",\n  \"warmup_fraction\": " << fmt(o.warmup_fraction)
     << ",\n  \"clip_norm\": " << fmt(o.clip_norm) << ",\n  \"device\": " << json::quote(o.device)
     << ",\n  \"precision\": " << json::quote(o.precision) << ",\n  \"seed\": " << o.seed
     << ",\n  \"skip_bad\": " << (o.skip_bad ? "true" : "false")
     << ",\n  \"image_size\": " << run.image.size
     << ",\n  \"hflip\": " << (o.hflip ? "true" : "false") << "\n}\n";
  return os.str();
}

}  // namespace

TrainResult train(const TrainOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  IRIS_CHECK(!o.model.empty(), "train: no --model");
  IRIS_CHECK(!o.data.empty(), "train: no --data");
  IRIS_CHECK(!o.out.empty(), "train: no --out");
  const std::string task_name = task_of_model(o.model);
  IRIS_CHECK(o.task.empty() || o.task == task_name, "train: model '", o.model,
             "' is trained for task '", task_name, "', not '", o.task, "'");
  IRIS_CHECK(o.precision == "fp32" || o.precision == "bf16" || o.precision == "fp16",
             "train: --precision must be fp32, bf16 or fp16, got '", o.precision, "'");
  IRIS_CHECK(o.epochs >= 0 && o.steps >= 0 && o.batch >= 0 && o.lr >= 0, "train: negative ",
             "epochs/steps/batch/lr");
  IRIS_CHECK(o.log_every >= 1, "train: log_every must be >= 1, got ", o.log_every);
  const TrainDefaults defaults = train_defaults(o.model);
  const int64_t batch = o.batch > 0 ? o.batch : defaults.batch;
  const double lr = o.lr > 0 ? o.lr : defaults.lr;
  const double wd = o.weight_decay >= 0 ? o.weight_decay : defaults.weight_decay;
  const Device device = parse_device(o.device);
  IRIS_CHECK(o.precision == "fp32" || device.is_cuda(), "train: --precision ", o.precision,
             " needs --device cuda (training on the CPU runs fp32)");
  // Mixed precision: autocast on the device (fp32 master weights); fp16 also scales the loss.
  const bool mixed = o.precision != "fp32";
  const DType half = o.precision == "fp16" ? DType::f16 : DType::bf16;
  nn::GradScalerOptions scaler_options;
  scaler_options.enabled = o.precision == "fp16";
  nn::GradScaler scaler(scaler_options);

  Run run;
  run.dir = o.out;
  run.task = task_name;
  run.model_name = o.model;
  run.image.size = o.image_size > 0 ? o.image_size : 64;
  std::unique_ptr<TrainTask> task;
  if (task_name == "caption") task = train_detail::make_caption_task(o, &run);
  if (task_name == "vqa") task = train_detail::make_vqa_task(o, &run);
  if (task_name == "retrieval") task = train_detail::make_retrieval_task(o, &run);
  IRIS_CHECK(task->size() > 0, "train: ", o.data, ": no training samples");
  run.config = zoo_config(o.model, merge_json_objects({{"defaults of " + o.model, defaults.config},
                                                       {o.data, "{" + task->config_fields() + "}"},
                                                       {"--config", o.config}}));

  nn::LoaderOptions lo;
  lo.batch_size = batch;
  lo.shuffle = true;
  lo.drop_last = task->size() > batch;  // equal batches, except for a tiny data set
  lo.seed = o.seed;
  lo.num_workers = o.workers;
  lo.skip_bad = o.skip_bad;
  nn::DataLoader<TaskBatch> loader(
      task->size(),
      nn::make_batch_fn<TaskBatch, TaskBatch>(
          [&](int64_t index, const nn::BatchRequest& r) { return task->load(index, r); },
          [&](std::vector<TaskBatch>&& samples, std::vector<int64_t>&&, const nn::BatchRequest&) {
            return task->collate(std::move(samples));
          }),
      lo);
  const int64_t per_epoch = loader.batches_per_epoch();
  const int64_t epochs_planned = o.steps > 0 ? (o.steps + per_epoch - 1) / per_epoch
                                             : (o.epochs > 0 ? o.epochs : defaults.epochs);
  const int64_t total_steps = o.steps > 0 ? o.steps : epochs_planned * per_epoch;
  const int64_t val_every = o.val_every > 0 ? o.val_every : per_epoch;
  const int64_t ckpt_every = o.checkpoint_every > 0 ? o.checkpoint_every : val_every;

  // The same start on every run: the model from the seed, dropout draws from the default
  // generator (saved in checkpoints).
  Generator init_gen(o.seed);
  run.model = build_model(o.model, run.config, &init_gen);
  run.model->to(device);
  manual_seed(nn::mix_seed(o.seed, 0x5eed));
  nn::AdamWOptions ao;
  ao.lr = lr;
  ao.weight_decay = wd;
  nn::AdamW opt(*run.model, ao);
  const int64_t warmup = static_cast<int64_t>(std::llround(o.warmup_fraction * total_steps));
  nn::CosineWarmupSchedule schedule(opt, warmup, total_steps, 0.0);

  fs::create_directories(o.out);
  const std::string ckpt = (fs::path(o.out) / "checkpoint.safetensors").string();
  const std::string metrics = (fs::path(o.out) / "metrics.jsonl").string();
  const auto id = identity(run, o, total_steps, batch, lr);

  TrainResult result;
  result.total_steps = total_steps;
  result.metric_name = o.val.empty() ? "" : task->metric_name();
  int64_t step = 0, epoch = 0, batch_in_epoch = 0;
  double smoothed = 0;
  if (o.resume) {
    IRIS_CHECK(fs::exists(ckpt), "train --resume: ", ckpt, " does not exist");
    nn::TrainingState st;
    {
      // Check the identity before touching the model, so the error names what differs
      // rather than a tensor shape.
      const Safetensors file = load_safetensors(ckpt);
      std::map<std::string, std::string> saved;
      for (const auto& [k, v] : file.metadata)
        if (k.rfind("user.", 0) == 0) saved[k.substr(5)] = v;
      check_identity(saved, id, ckpt);
    }
    st = nn::load_training_checkpoint(ckpt, *run.model, opt, &schedule, nullptr);
    step = st.step;
    epoch = std::stoll(st.metadata.at("epoch"));
    batch_in_epoch = std::stoll(st.metadata.at("batch_in_epoch"));
    smoothed = std::stod(st.metadata.at("loss"));
    result.best_metric = std::stod(st.metadata.at("best"));
    run.best_json = st.metadata.at("best_json");
    truncate_metrics(metrics, step);
  } else {
    write_file_atomic(metrics, "");
  }
  write_file_atomic((fs::path(o.out) / "config.json").string(),
                    options_json(o, run, total_steps, epochs_planned, batch, lr, wd));

  auto emit = [&](TrainEvent e) {
    if (o.sink) o.sink(e);
  };
  int64_t samples_seen = 0;
  const int64_t first_step = step;
  auto event = [&](TrainEvent::Kind kind) {
    TrainEvent e;
    e.kind = kind;
    e.step = step;
    e.total_steps = total_steps;
    e.epoch = epoch;
    e.epochs = epochs_planned;
    e.loss = smoothed;
    e.lr = opt.lr();
    const double secs = seconds_since(t0);
    e.images_per_s = secs > 0 ? samples_seen / secs : 0;
    e.eta_s = step > first_step ? secs / (step - first_step) * (total_steps - step) : 0;
    return e;
  };
  auto save_checkpoint = [&] {
    nn::TrainingState st;
    st.step = step;
    st.metadata = std::map<std::string, std::string>(id.begin(), id.end());
    st.metadata["epoch"] = std::to_string(epoch);
    st.metadata["batch_in_epoch"] = std::to_string(batch_in_epoch);
    st.metadata["loss"] = fmt(smoothed);
    st.metadata["best"] = fmt(result.best_metric);
    st.metadata["best_json"] = run.best_json;
    nn::save_training_checkpoint(ckpt, *run.model, opt, &schedule, nullptr, st);
    TrainEvent e = event(TrainEvent::Kind::checkpoint);
    e.message = "checkpoint " + ckpt + " at step " + std::to_string(step);
    emit(e);
  };
  auto validate = [&] {
    if (o.val.empty()) return;
    run.model->eval();
    const double m = train_detail::validation_metric(run, o.val, o.val_limit, o.skip_bad);
    run.model->train();
    TrainEvent e = event(TrainEvent::Kind::validation);
    e.metric_name = task->metric_name();
    e.metric = m;
    e.best = m > result.best_metric;
    append_line(metrics, "{\"step\": " + std::to_string(step) +
                             ", \"epoch\": " + std::to_string(epoch) + ", \"val_" + e.metric_name +
                             "\": " + fmt(m) + "}");
    if (e.best) {
      result.best_metric = m;
      run.step = step;
      run.best_json =
          "{\"step\": " + std::to_string(step) + ", \"val_" + e.metric_name + "\": " + fmt(m) + "}";
      save_run(run);
    }
    emit(e);
  };

  {
    TrainEvent e = event(TrainEvent::Kind::start);
    std::ostringstream os;
    os << (o.resume ? "resuming " : "training ") << o.model << " (" << run.task << ", "
       << run.model->parameter_count() << " parameters) on " << task->size() << " samples, "
       << total_steps << " steps of " << batch << (o.resume ? ", from step " : "")
       << (o.resume ? std::to_string(step) : std::string()) << ", vocabulary " << run.vocab.size();
    if (run.task == "vqa") os << ", " << run.answers.size() << " answers";
    e.message = os.str();
    emit(e);
  }

  run.model->train();
  bool stopped = false;
  while (step < total_steps && !stopped) {
    loader.start_epoch(epoch);
    for (int64_t b = 0; b < batch_in_epoch; ++b) loader.next();  // resume mid-epoch
    while (step < total_steps) {
      std::optional<TaskBatch> tb = loader.next();
      if (!tb) break;
      ++batch_in_epoch;
      TaskBatch& bt = *tb;
      bt.images = bt.images.to(device);
      if (bt.tokens.defined()) bt.tokens = bt.tokens.to(device);
      if (bt.lengths.defined()) bt.lengths = bt.lengths.to(device);
      if (bt.answers.defined()) bt.answers = bt.answers.to(device);
      if (bt.image_of.defined()) bt.image_of = bt.image_of.to(device);
      Tensor loss;
      {
        AutocastGuard autocast(half, mixed);
        loss = task->loss(*run.model, bt);
      }
      opt.zero_grad();
      scaler.scale(loss).backward();
      scaler.unscale_(opt);  // clipping sees the true gradients
      if (o.clip_norm > 0) nn::clip_grad_norm_(run.model->parameters(), o.clip_norm);
      scaler.step(opt);  // skipped when an fp16 gradient overflowed
      scaler.update();
      schedule.step();
      const double l = loss.item();
      IRIS_CHECK(std::isfinite(l), "train: the loss is ", l, " at step ", step + 1,
                 " (try a smaller --lr)");
      smoothed = step == 0 ? l : 0.95 * smoothed + 0.05 * l;
      ++step;
      samples_seen += bt.samples;
      if (step % o.log_every == 0 || step == total_steps) {
        TrainEvent e = event(TrainEvent::Kind::progress);
        append_line(metrics, "{\"step\": " + std::to_string(step) +
                                 ", \"epoch\": " + std::to_string(epoch) +
                                 ", \"loss\": " + fmt(smoothed) + ", \"lr\": " + fmt(e.lr) +
                                 ", \"images_per_s\": " + fmt(e.images_per_s) + "}");
        emit(e);
      }
      if (step % val_every == 0 || step == total_steps) validate();
      if (step % ckpt_every == 0 || step == total_steps) save_checkpoint();
      if (o.stop != nullptr && o.stop->load()) {
        stopped = step < total_steps;
        if (stopped && step % ckpt_every != 0) save_checkpoint();
        break;
      }
    }
    if (step < total_steps && !stopped) {
      ++epoch;
      batch_in_epoch = 0;
    }
  }
  // Without validation the last model is the run's model; with it, make sure a model exists.
  if (o.val.empty() || !fs::exists(fs::path(o.out) / "model.safetensors")) {
    run.step = step;
    save_run(run);
  }

  result.steps = step;
  result.epochs_done = epoch + (batch_in_epoch > 0 ? 1 : 0);
  result.stopped = stopped;
  result.final_loss = smoothed;
  result.skipped = task->read_skipped + loader.skips().count();
  result.skip_messages = task->read_messages;
  for (const auto& s : loader.skips().entries()) result.skip_messages.push_back(s.reason);
  result.seconds = seconds_since(t0);
  TrainEvent e = event(TrainEvent::Kind::done);
  e.message = std::string(stopped ? "stopped" : "done") + " at step " + std::to_string(step) +
              (result.skipped ? ", skipped " + std::to_string(result.skipped) + " bad samples"
                              : std::string());
  emit(e);
  return result;
}

namespace train_detail {

Tensor training_image(const std::string& path, const ImageSpec& spec, bool hflip,
                      const nn::BatchRequest& request, int64_t index) {
  Tensor x = load_image_tensor(path, spec);
  if (!hflip) return x;
  Generator g(request.sample_seed(index));
  return nn::random_hflip(x, g).contiguous();
}

}  // namespace train_detail
}  // namespace iris::models
