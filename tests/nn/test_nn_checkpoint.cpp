// Checkpoints: state-dict round trips, every corrupt or mismatched file as an iris::Error
// naming the tensor (and the file), non-strict reports, no partial loads, and a training
// checkpoint that resumes bit for bit.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "nn/checkpoint.h"
#include "nn/layers.h"
#include "nn/loss.h"
#include "tests/support/testing.h"

namespace iris::nn {
namespace {

std::string temp_path(const std::string& name) {
  return "/tmp/iris-nn-ckpt-" + std::to_string(::getpid()) + "-" + name + ".safetensors";
}

struct TempFile {
  explicit TempFile(const std::string& name) : path(temp_path(name)) {}
  ~TempFile() { std::remove(path.c_str()); }
  std::string path;
};

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void write_all(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A small model with parameters, float buffers and an int64 buffer.
class Net : public Module {
 public:
  explicit Net(uint64_t seed, Generator* dropout_gen = nullptr) : Module("Net"), gen(seed) {
    conv = register_module("conv", std::make_shared<Conv2d>(2, 4, 3, Conv2dOptions{}, &gen));
    bn = register_module("bn", std::make_shared<BatchNorm2d>(4));
    head = register_module("head",
                           std::make_shared<Sequential>(std::vector<std::shared_ptr<Module>>{
                               std::make_shared<Linear>(4, 8, true, &gen), std::make_shared<GELU>(),
                               std::make_shared<Dropout>(0.25, dropout_gen),
                               std::make_shared<Linear>(8, 3, true, &gen)}));
  }
  Tensor forward(const Tensor& x) override {
    return head->forward(relu(bn->forward(conv->forward(x))).flatten(1));
  }
  Generator gen;
  std::shared_ptr<Conv2d> conv;
  std::shared_ptr<BatchNorm2d> bn;
  std::shared_ptr<Sequential> head;
};

void expect_same_state(const Module& a, const Module& b) {
  const auto sa = a.state_dict(), sb = b.state_dict();
  ASSERT_EQ(sa.size(), sb.size());
  for (size_t i = 0; i < sa.size(); ++i) {
    EXPECT_EQ(sa[i].first, sb[i].first);
    EXPECT_TRUE(testing::all_close(sa[i].second, sb[i].second, 0, 0)) << sa[i].first;
  }
}

TEST(Checkpoint, StateDictRoundTrip) {
  TempFile f("roundtrip");
  Net a(1), b(2);
  a.forward(randn({3, 2, 3, 3}));  // running stats and num_batches_tracked move
  save_state_dict(a, f.path, {{"note", "hello"}});
  const Safetensors file = load_safetensors(f.path);
  EXPECT_EQ(file.names.size(), a.state_dict().size());
  EXPECT_EQ(file.names[0], "conv.weight");
  EXPECT_EQ(file.metadata.at("note"), "hello");
  EXPECT_EQ(file.at("bn.num_batches_tracked").dtype(), DType::i64);
  const LoadReport r = load_state_dict(b, f.path);
  EXPECT_TRUE(r.complete());
  EXPECT_EQ(r.loaded.size(), a.state_dict().size());
  expect_same_state(a, b);
  EXPECT_EQ(b.bn->num_batches_tracked.item(), 1.0);
  // Loaded values are copies: the module does not alias the file mapping.
  EXPECT_NE(b.conv->weight.storage(), file.at("conv.weight").storage());
}

// A file written from `entries` (name -> tensor) with safetensors' own writer.
void write_file(const std::string& path, const std::vector<NamedTensor>& entries) {
  save_safetensors(path, entries);
}

std::vector<NamedTensor> edited(const Module& m, const std::string& name,
                                const Tensor& replacement) {
  std::vector<NamedTensor> out;
  for (const auto& [n, t] : m.state_dict()) {
    if (n != name)
      out.emplace_back(n, t);
    else if (replacement.defined())
      out.emplace_back(n, replacement);
  }
  return out;
}

TEST(Checkpoint, MismatchedFilesNameTheTensorAndTheFile) {
  Net src(1);
  TempFile f("mismatch");
  auto expect_strict_error = [&](const std::vector<NamedTensor>& entries,
                                 const std::string& needle) {
    write_file(f.path, entries);
    Net dst(2);
    const auto before = dst.state_dict();
    std::vector<Tensor> copies;
    for (const auto& [n, t] : before) copies.push_back(t.clone());
    EXPECT_IRIS_ERROR(load_state_dict(dst, f.path), needle);
    EXPECT_IRIS_ERROR(load_state_dict(dst, f.path), f.path);
    // Nothing was loaded.
    for (size_t i = 0; i < before.size(); ++i)
      EXPECT_TRUE(testing::all_close(before[i].second, copies[i], 0, 0)) << before[i].first;
  };
  expect_strict_error(edited(src, "bn.running_var", src.bn->running_var.to(DType::f64)),
                      "bn.running_var: float64[4] in the file, float32[4] in the module");
  expect_strict_error(edited(src, "conv.weight", zeros({4, 2, 9})),
                      "conv.weight: float32[4, 2, 9] in the file, float32[4, 2, 3, 3]");
  expect_strict_error(edited(src, "head.3.bias", Tensor()), "missing tensors ('head.3.bias')");
  auto extra = src.state_dict();
  extra.emplace_back("head.4.weight", zeros({2}));
  expect_strict_error(extra, "unexpected tensors ('head.4.weight')");
  expect_strict_error(edited(src, "bn.num_batches_tracked", zeros({}, DType::f32)),
                      "bn.num_batches_tracked: float32[] in the file, int64[]");
}

TEST(Checkpoint, NonStrictLoadReportsWhatItSkipped) {
  Net src(1), dst(2);
  TempFile f("nonstrict");
  auto entries = edited(src, "head.0.bias", Tensor());
  entries.emplace_back("extra", zeros({1}));
  for (auto& [n, t] : entries)
    if (n == "conv.bias") t = zeros({5});
  write_file(f.path, entries);
  const LoadReport r = load_state_dict(dst, f.path, /*strict=*/false);
  EXPECT_EQ(r.missing, std::vector<std::string>{"head.0.bias"});
  EXPECT_EQ(r.unexpected, std::vector<std::string>{"extra"});
  ASSERT_EQ(r.mismatched.size(), 1u);
  EXPECT_NE(r.mismatched[0].find("conv.bias"), std::string::npos);
  EXPECT_EQ(r.loaded.size(), src.state_dict().size() - 2);
  EXPECT_TRUE(testing::all_close(dst.conv->weight, src.conv->weight, 0, 0));
  EXPECT_FALSE(testing::all_close(dst.conv->bias, src.conv->bias, 0, 0));
  EXPECT_NE(r.str().find("1 missing tensors ('head.0.bias')"), std::string::npos) << r.str();
}

TEST(Checkpoint, CorruptFilesAreErrorsNotCrashes) {
  Net src(1);
  TempFile good("good"), bad("bad");
  save_state_dict(src, good.path);
  const std::string bytes = read_all(good.path);
  // Truncated in the data section: the tensors whose bytes are gone are named.
  write_all(bad.path, bytes.substr(0, bytes.size() - 8));  // inside the last tensor
  Net dst(2);
  EXPECT_IRIS_ERROR(load_state_dict(dst, bad.path), "tensor 'head.3.bias'");
  EXPECT_IRIS_ERROR(load_state_dict(dst, bad.path), "truncated or corrupt");
  // Truncated inside the header, or shorter than the length prefix.
  write_all(bad.path, bytes.substr(0, 40));
  EXPECT_IRIS_ERROR(load_state_dict(dst, bad.path), bad.path);
  write_all(bad.path, bytes.substr(0, 5));
  EXPECT_IRIS_ERROR(load_state_dict(dst, bad.path), "truncated");
  // A damaged header: JSON broken, then an entry with an unknown dtype.
  std::string broken = bytes;
  broken[10] = '}';
  write_all(bad.path, broken);
  EXPECT_IRIS_ERROR(load_state_dict(dst, bad.path), bad.path);
  std::string dtype = bytes;
  const size_t at = dtype.find("\"F32\"");
  ASSERT_NE(at, std::string::npos);
  dtype.replace(at, 5, "\"X32\"");
  write_all(bad.path, dtype);
  EXPECT_IRIS_ERROR(load_state_dict(dst, bad.path), "tensor 'conv.weight'");
  // A missing file.
  EXPECT_IRIS_ERROR(load_state_dict(dst, temp_path("absent")), "cannot open");
  expect_same_state(Net(2), dst);  // still the fresh initialisation
}

// One step of training on deterministic data; the RNG drives the dropout masks.
void train_step(Net& net, Optimizer& opt, LrSchedule& sched, int step) {
  Generator data(1000 + static_cast<uint64_t>(step));
  const Tensor x = randn({5, 2, 3, 3}, DType::f32, Device::cpu(), &data);
  const Tensor y = uniform({5}, 0, 3, DType::f32, Device::cpu(), &data).to(DType::i64);
  const Tensor loss = cross_entropy_loss(net.forward(x), y, {.label_smoothing = 0.1});
  opt.zero_grad();
  loss.backward();
  clip_grad_norm_(net.parameters(), 1.0);
  opt.step();
  sched.step();
}

TEST(Checkpoint, TrainingResumesBitForBit) {
  const int k = 4, n = 3;
  Generator rng_a(77);
  Net straight(5, &rng_a);
  AdamW opt_a(straight, AdamWOptions{.lr = 0.05, .weight_decay = 0.1});
  CosineWarmupSchedule sched_a(opt_a, 2, k + n);
  for (int s = 0; s < k + n; ++s) train_step(straight, opt_a, sched_a, s);

  TempFile f("training");
  {
    Generator rng_b(77);
    Net first(5, &rng_b);
    AdamW opt_b(first, AdamWOptions{.lr = 0.05, .weight_decay = 0.1});
    CosineWarmupSchedule sched_b(opt_b, 2, k + n);
    for (int s = 0; s < k; ++s) train_step(first, opt_b, sched_b, s);
    save_training_checkpoint(f.path, first, opt_b, &sched_b, &rng_b,
                             {.step = k, .metadata = {{"model", "Net"}}});
  }
  // A fresh process's view: another initialisation, another RNG state, another lr.
  Generator rng_c(12345);
  Net resumed(99, &rng_c);
  AdamW opt_c(resumed, AdamWOptions{.lr = 0.05, .weight_decay = 0.1});
  CosineWarmupSchedule sched_c(opt_c, 2, k + n);
  const TrainingState st = load_training_checkpoint(f.path, resumed, opt_c, &sched_c, &rng_c);
  EXPECT_EQ(st.step, k);
  EXPECT_EQ(st.metadata.at("model"), "Net");
  EXPECT_EQ(sched_c.last_step(), k);
  EXPECT_EQ(rng_c.seed(), 77u);
  for (int s = k; s < k + n; ++s) train_step(resumed, opt_c, sched_c, s);

  expect_same_state(straight, resumed);
  EXPECT_EQ(opt_a.lr(), opt_c.lr());
  const auto oa = opt_a.state_dict(), oc = opt_c.state_dict();
  ASSERT_EQ(oa.size(), oc.size());
  for (size_t i = 0; i < oa.size(); ++i)
    EXPECT_TRUE(testing::all_close(oa[i].second, oc[i].second, 0, 0)) << oa[i].first;
  EXPECT_GT(rng_a.offset(), 0u);  // the dropout masks did draw from it
  EXPECT_EQ(rng_a.offset(), rng_c.offset());
}

TEST(Checkpoint, TrainingCheckpointMismatches) {
  TempFile f("training-bad");
  Net net(1);
  AdamW adam(net);
  StepSchedule step(adam, 10);
  save_training_checkpoint(f.path, net, adam, &step, nullptr, {});
  Net other(2);
  SGD sgd(other);
  EXPECT_IRIS_ERROR(load_training_checkpoint(f.path, other, sgd, nullptr, nullptr),
                    "the checkpoint holds AdamW state, the optimizer is SGD");
  AdamW adam2(other);
  CosineWarmupSchedule cos(adam2, 1, 5);
  EXPECT_IRIS_ERROR(load_training_checkpoint(f.path, other, adam2, &cos, nullptr),
                    "schedule is Step");
  StepSchedule step2(adam2, 20);
  EXPECT_IRIS_ERROR(load_training_checkpoint(f.path, other, adam2, &step2, nullptr),
                    "schedule step_size is 10");
  TempFile plain("plain");
  save_state_dict(net, plain.path);
  EXPECT_IRIS_ERROR(load_training_checkpoint(plain.path, other, adam2, nullptr, nullptr),
                    "not an iris training checkpoint");
  // A model of another shape: the tensor is named, with the file.
  struct Wide : Module {
    Wide() : Module("Wide") { register_module("conv", std::make_shared<Conv2d>(2, 5, 3)); }
  } wide;
  AdamW adam3(wide);
  EXPECT_IRIS_ERROR(load_training_checkpoint(f.path, wide, adam3, nullptr, nullptr),
                    "conv.weight: float32[4, 2, 3, 3] in the file");
}

}  // namespace
}  // namespace iris::nn
