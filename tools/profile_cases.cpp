// The ops and shapes `iris profile` times (issue 6): each case makes its inputs on a device,
// calls the iris kernel through its dispatch table, and counts its FLOPs or bytes. Inputs are
// drawn on the host (a fixed Philox seed) and copied, so every device sees the same values.
#include <algorithm>
#include <array>
#include <cmath>
#include <sstream>

#include "autograd/ops.h"
#include "core/rng.h"
#include "kernels/attention.h"
#include "kernels/conv.h"
#include "kernels/gemm_epilogue.h"
#include "kernels/norm.h"
#include "kernels/softmax.h"
#include "tools/profile.h"

namespace iris::tools {
namespace {

constexpr uint64_t kSeed = 20240611;

Tensor random_input(const Shape& shape, Device device, uint64_t salt) {
  Generator gen(kSeed + salt);
  return randn(shape, DType::f32, Device::cpu(), &gen).to(device);
}

// The same values rounded to a 16-bit dtype on the host, then copied.
Tensor random_input_as(const Shape& shape, Device device, uint64_t salt, DType dtype) {
  Generator gen(kSeed + salt);
  return randn(shape, DType::f32, Device::cpu(), &gen).to(dtype).to(device);
}

Tensor empty_on(const Shape& shape, Device device, DType dtype = DType::f32) {
  return Tensor::empty(shape, dtype, device);
}

std::string join(std::initializer_list<std::string> parts) {
  std::string s;
  for (const std::string& p : parts) s += (s.empty() ? "" : " ") + p;
  return s;
}

std::string num(int64_t v) { return std::to_string(v); }

// ---- conv2d: forward, backward-data, backward-weight ----

struct ConvShape {
  std::string where;  // "cnn-rnn", "resnet50"
  int64_t N, C, H, W, K, R, stride, pad;
};

void add_conv_cases(std::vector<ProfileCase>& out, const ConvShape& s) {
  kernels::Conv2dParams p;
  p.stride_h = p.stride_w = s.stride;
  p.pad_h = p.pad_w = s.pad;
  const int64_t OH = kernels::conv_output_size(s.H, s.R, s.stride, s.pad, 1);
  const int64_t OW = kernels::conv_output_size(s.W, s.R, s.stride, s.pad, 1);
  const Shape xs{s.N, s.C, s.H, s.W}, ws{s.K, s.C, s.R, s.R}, ys{s.N, s.K, OH, OW};
  const double flops = 2.0 * double(s.N * s.K * OH * OW) * double(s.C * s.R * s.R);
  const std::string shape =
      join({s.where, "N" + num(s.N), "C" + num(s.C), num(s.H) + "x" + num(s.W), "K" + num(s.K),
            num(s.R) + "x" + num(s.R), "s" + num(s.stride), "p" + num(s.pad)});
  std::ostringstream spec_tail;
  spec_tail << ", \"stride\": " << s.stride << ", \"pad\": " << s.pad << ", \"input_shape\": ["
            << s.N << ", " << s.C << ", " << s.H << ", " << s.W << "], \"weight_shape\": [" << s.K
            << ", " << s.C << ", " << s.R << ", " << s.R << "]}";

  out.push_back({"conv2d_fwd", shape, "f32", flops, 0, "{\"op\": \"conv2d_fwd\"" + spec_tail.str(),
                 [=](Device d) {
                   PreparedCase c;
                   Tensor x = random_input(xs, d, 1), w = random_input(ws, d, 2);
                   Tensor y = empty_on(ys, d);
                   c.inputs = {{"x", x}, {"w", w}};
                   c.outputs = {{"out", y}};
                   c.run = [=] { kernels::conv2d_forward_table().get(d)(x, w, Tensor(), p, y); };
                   return c;
                 }});
  out.push_back({"conv2d_bwd_data", shape, "f32", flops, 0,
                 "{\"op\": \"conv2d_bwd_data\"" + spec_tail.str(), [=](Device d) {
                   PreparedCase c;
                   Tensor dy = random_input(ys, d, 3), w = random_input(ws, d, 2);
                   Tensor dx = empty_on(xs, d);
                   c.inputs = {{"dout", dy}, {"w", w}};
                   c.outputs = {{"dinp", dx}};
                   c.run = [=] { kernels::conv2d_backward_data_table().get(d)(dy, w, p, dx); };
                   return c;
                 }});
  out.push_back({"conv2d_bwd_weight", shape, "f32", flops, 0,
                 "{\"op\": \"conv2d_bwd_weight\"" + spec_tail.str(), [=](Device d) {
                   PreparedCase c;
                   Tensor dy = random_input(ys, d, 3), x = random_input(xs, d, 1);
                   Tensor dw = empty_on(ws, d);
                   c.inputs = {{"dout", dy}, {"x", x}};
                   c.outputs = {{"dweight", dw}};
                   c.run = [=] {
                     kernels::conv2d_backward_weight_table().get(d)(dy, x, p, dw, Tensor());
                   };
                   return c;
                 }});
}

// ---- attention: forward and backward (fp32; bf16 on CUDA, where cuDNN's fused attention is
// the baseline) ----

struct AttentionShape {
  std::string where;
  int64_t B, H, Lq, Lk, D;
  bool causal = false;
  bool ragged = false;  // per-sample query and key lengths
};

// Per-sample lengths: sample b keeps between half and all of the rows (a fixed pattern).
std::vector<int32_t> ragged_lengths(int64_t B, int64_t L, int64_t salt) {
  std::vector<int32_t> lens(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t drop = ((b * 7 + salt * 3) % (B + 1)) * (L / 2) / std::max<int64_t>(B, 1);
    lens[size_t(b)] = int32_t(std::max<int64_t>(1, L - drop));
  }
  return lens;
}

void add_attention_cases(std::vector<ProfileCase>& out, const AttentionShape& s,
                         DType dtype = DType::f32) {
  std::vector<int32_t> qlens(size_t(s.B), int32_t(s.Lq)), klens(size_t(s.B), int32_t(s.Lk));
  if (s.ragged) qlens = ragged_lengths(s.B, s.Lq, 1), klens = ragged_lengths(s.B, s.Lk, 2);
  // Score pairs actually computed: per sample, causal rows see a bottom-right aligned prefix.
  double pairs = 0;
  for (int64_t b = 0; b < s.B; ++b) {
    const int64_t lq = qlens[size_t(b)], lk = klens[size_t(b)];
    if (!s.causal) {
      pairs += double(lq * lk);
      continue;
    }
    for (int64_t i = 0; i < lq; ++i) pairs += double(std::clamp<int64_t>(lk - lq + i + 1, 0, lk));
  }
  const double fwd_flops = 4.0 * pairs * double(s.H * s.D);
  const double scale = 1.0 / std::sqrt(double(s.D));
  std::string shape = join({s.where, "B" + num(s.B), "H" + num(s.H), "Lq" + num(s.Lq),
                            "Lk" + num(s.Lk), "D" + num(s.D)});
  if (s.causal) shape += " causal";
  if (s.ragged) shape += " ragged";
  std::ostringstream spec_tail;
  spec_tail << ", \"causal\": " << (s.causal ? "true" : "false") << ", \"scale\": " << scale << "}";
  const Shape qs{s.B, s.H, s.Lq, s.D}, ks{s.B, s.H, s.Lk, s.D}, ls{s.B, s.H, s.Lq};
  const AttentionShape sc = s;
  const std::string dt_name = dtype == DType::f32 ? "f32" : dtype == DType::bf16 ? "bf16" : "f16";
  auto input = [dtype](const Shape& shape, Device d, uint64_t salt) {
    return dtype == DType::f32 ? random_input(shape, d, salt)
                               : random_input_as(shape, d, salt, dtype);
  };

  // Inputs shared by forward and backward; the masks carry the per-sample lengths.
  auto make = [=](Device d, PreparedCase& c, kernels::AttentionMasks& m) {
    // iris's CPU attention computes fp32/fp64 only: a 16-bit case is a GPU case.
    IRIS_CHECK(dtype == DType::f32 || d.is_cuda(), "iris profile: attention in ", dt_name,
               " runs on CUDA only (the CPU kernels compute float32/float64)");
    Tensor q = input(qs, d, 11), k = input(ks, d, 12), v = input(ks, d, 13);
    m.causal = sc.causal;
    m.scale = scale;
    c.inputs = {{"q", q}, {"k", k}, {"v", v}};
    if (sc.ragged) {
      m.q_lens = Tensor::from_vector(qlens, {sc.B}).to(d);
      m.k_lens = Tensor::from_vector(klens, {sc.B}).to(d);
      c.inputs.push_back({"q_lens", m.q_lens});
      c.inputs.push_back({"k_lens", m.k_lens});
      // Rows past a sample's length are padding: compared as zero on both sides.
      c.mask_padding = [=](const std::string& name, std::vector<float>& h) {
        const bool keys = name == "dk" || name == "dv";
        const int64_t L = keys ? sc.Lk : sc.Lq;
        const auto& lens = keys ? klens : qlens;
        for (int64_t b = 0; b < sc.B; ++b)
          for (int64_t hh = 0; hh < sc.H; ++hh)
            for (int64_t i = lens[size_t(b)]; i < L; ++i)
              std::fill_n(h.begin() + ((b * sc.H + hh) * L + i) * sc.D, sc.D, 0.0f);
      };
    }
    return std::array<Tensor, 3>{q, k, v};
  };

  out.push_back({"attention_fwd", shape, dt_name, fwd_flops, 0,
                 "{\"op\": \"attention_fwd\"" + spec_tail.str(), [=](Device d) {
                   PreparedCase c;
                   kernels::AttentionMasks m;
                   const auto qkv = make(d, c, m);
                   const Tensor q = qkv[0], k = qkv[1], v = qkv[2];
                   Tensor o = empty_on(qs, d, dtype), lse = empty_on(ls, d);
                   c.outputs = {{"out", o}};
                   c.run = [=] { kernels::attention_forward_table().get(d)(q, k, v, m, o, lse); };
                   return c;
                 }});
  out.push_back({"attention_bwd", shape, dt_name, 2.5 * fwd_flops, 0,
                 "{\"op\": \"attention_bwd\"" + spec_tail.str(), [=](Device d) {
                   PreparedCase c;
                   kernels::AttentionMasks m;
                   const auto qkv = make(d, c, m);
                   const Tensor q = qkv[0], k = qkv[1], v = qkv[2];
                   Tensor o = empty_on(qs, d, dtype), lse = empty_on(ls, d);
                   kernels::attention_forward_table().get(d)(q, k, v, m, o, lse);
                   Tensor dout = input(qs, d, 14);
                   Tensor dq = empty_on(qs, d, dtype), dk = empty_on(ks, d, dtype),
                          dv = empty_on(ks, d, dtype);
                   c.inputs.push_back({"dout", dout});
                   c.outputs = {{"dq", dq}, {"dk", dk}, {"dv", dv}};
                   c.run = [=] {
                     kernels::attention_backward_table().get(d)(q, k, v, o, dout, lse, m, dq, dk,
                                                                dv);
                   };
                   return c;
                 }});
}

// ---- layer norm, softmax, cross-entropy: memory-bound rows ----

std::string rows_shape(int64_t M, int64_t N) { return num(M) + " x " + num(N); }

void add_layer_norm_cases(std::vector<ProfileCase>& out, int64_t M, int64_t N) {
  const double elems = double(M * N) * sizeof(float);
  const std::string spec = ", \"eps\": 1e-05}";
  out.push_back({"layer_norm_fwd", rows_shape(M, N), "f32", 0, 2 * elems,
                 "{\"op\": \"layer_norm_fwd\"" + spec, [=](Device d) {
                   PreparedCase c;
                   Tensor x = random_input({M, N}, d, 21), w = random_input({N}, d, 22),
                          b = random_input({N}, d, 23);
                   Tensor y = empty_on({M, N}, d), mean = empty_on({M}, d), rstd = empty_on({M}, d);
                   c.inputs = {{"x", x}, {"w", w}, {"b", b}};
                   c.outputs = {{"out", y}};
                   c.run = [=] {
                     kernels::layer_norm_forward_table().get(d)(x, w, b, 1e-5, y, mean, rstd);
                   };
                   return c;
                 }});
  out.push_back({"layer_norm_bwd", rows_shape(M, N), "f32", 0, 3 * elems,
                 "{\"op\": \"layer_norm_bwd\"" + spec, [=](Device d) {
                   PreparedCase c;
                   Tensor x = random_input({M, N}, d, 21), w = random_input({N}, d, 22),
                          b = random_input({N}, d, 23), dy = random_input({M, N}, d, 24);
                   Tensor y = empty_on({M, N}, d), mean = empty_on({M}, d), rstd = empty_on({M}, d);
                   kernels::layer_norm_forward_table().get(d)(x, w, b, 1e-5, y, mean, rstd);
                   Tensor dx = empty_on({M, N}, d), dw = empty_on({N}, d), db = empty_on({N}, d);
                   c.inputs = {{"dy", dy}, {"x", x}, {"w", w}, {"b", b}};
                   c.outputs = {{"dx", dx}, {"dweight", dw}, {"dbias", db}};
                   c.run = [=] {
                     kernels::layer_norm_backward_table().get(d)(dy, x, mean, rstd, w, dx, dw, db);
                   };
                   return c;
                 }});
}

void add_softmax_cases(std::vector<ProfileCase>& out, int64_t M, int64_t N) {
  const double elems = double(M * N) * sizeof(float);
  out.push_back({"softmax_fwd", rows_shape(M, N), "f32", 0, 2 * elems, "{\"op\": \"softmax_fwd\"}",
                 [=](Device d) {
                   PreparedCase c;
                   Tensor x = random_input({M, N}, d, 31), y = empty_on({M, N}, d);
                   c.inputs = {{"x", x}};
                   c.outputs = {{"out", y}};
                   c.run = [=] { kernels::softmax_forward_table().get(d)(x, 1, false, y); };
                   return c;
                 }});
  out.push_back({"softmax_bwd", rows_shape(M, N), "f32", 0, 3 * elems, "{\"op\": \"softmax_bwd\"}",
                 [=](Device d) {
                   PreparedCase c;
                   Tensor x = random_input({M, N}, d, 31), dy = random_input({M, N}, d, 32);
                   Tensor y = empty_on({M, N}, d), dx = empty_on({M, N}, d);
                   kernels::softmax_forward_table().get(d)(x, 1, false, y);
                   c.inputs = {{"dy", dy}, {"y", y}};
                   c.outputs = {{"dx", dx}};
                   c.run = [=] { kernels::softmax_backward_table().get(d)(dy, y, 1, false, dx); };
                   return c;
                 }});
}

void add_cross_entropy_cases(std::vector<ProfileCase>& out, int64_t N, int64_t C) {
  const double elems = double(N * C) * sizeof(float);
  auto targets = [=](Device d) {
    std::vector<int64_t> t(static_cast<size_t>(N));
    for (int64_t i = 0; i < N; ++i) t[size_t(i)] = (i * 7919 + 13) % C;
    return Tensor::from_vector(t, {N, 1}).to(d);
  };
  out.push_back({"cross_entropy_fwd", rows_shape(N, C), "f32", 0, elems,
                 "{\"op\": \"cross_entropy_fwd\"}", [=](Device d) {
                   PreparedCase c;
                   Tensor x = random_input({N, C, 1}, d, 41), t = targets(d);
                   Tensor loss = empty_on({N, 1}, d), lse = empty_on({N, 1}, d);
                   c.inputs = {{"logits", x}, {"target", t}};
                   c.outputs = {{"loss", loss}};
                   c.run = [=] {
                     kernels::cross_entropy_forward_table().get(d)(x, t, -100, 0.0, loss, lse);
                   };
                   return c;
                 }});
  out.push_back({"cross_entropy_bwd", rows_shape(N, C), "f32", 0, 2 * elems,
                 "{\"op\": \"cross_entropy_bwd\"}", [=](Device d) {
                   PreparedCase c;
                   Tensor x = random_input({N, C, 1}, d, 41), t = targets(d);
                   Tensor loss = empty_on({N, 1}, d), lse = empty_on({N, 1}, d);
                   kernels::cross_entropy_forward_table().get(d)(x, t, -100, 0.0, loss, lse);
                   Tensor dloss = random_input({N, 1}, d, 42), dx = empty_on({N, C, 1}, d);
                   c.inputs = {{"logits", x}, {"target", t}, {"dloss", dloss}};
                   c.outputs = {{"dlogits", dx}};
                   c.run = [=] {
                     kernels::cross_entropy_backward_table().get(d)(x, t, lse, dloss, -100, 0.0,
                                                                    dx);
                   };
                   return c;
                 }});
}

// ---- GEMM: linear layers y = x W^T (+ b, GELU) ----
// On CUDA, iris's default GEMM is cuBLASLt itself: the "gemm" rows time the hand-written
// kernel against it; the "gemm_bias_gelu" pair times the fused epilogue both ways.

void add_gemm_case(std::vector<ProfileCase>& out, const std::string& where, int64_t M, int64_t N,
                   int64_t K, kernels::GemmEpilogue ep = kernels::GemmEpilogue::none,
                   kernels::GemmImpl impl = kernels::GemmImpl::hand_written) {
  const bool gelu = ep == kernels::GemmEpilogue::bias_gelu_tanh;
  std::string shape = join({where, num(M) + " x " + num(N) + " x " + num(K)});
  if (gelu)
    shape += impl == kernels::GemmImpl::hand_written ? " (gelu(x W^T + b), hand-written)"
                                                     : " (gelu(x W^T + b), default path)";
  else
    shape += " (x W^T)";
  const std::string op = gelu ? "gemm_bias_gelu" : "gemm";
  out.push_back({op, shape, "f32", 2.0 * double(M) * double(N) * double(K), 0,
                 "{\"op\": \"" + op + "\"}", [=](Device d) {
                   PreparedCase c;
                   Tensor x = random_input({M, K}, d, 51), w = random_input({N, K}, d, 52);
                   Tensor bias = gelu ? random_input({N}, d, 53) : Tensor();
                   Tensor y = empty_on({M, N}, d);
                   // [1, M, K] @ [1, K, N] where the right operand is W's transposed view.
                   Tensor a = x.as_strided({1, M, K}, {M * K, K, 1}, x.offset());
                   Tensor b = w.as_strided({1, K, N}, {N * K, 1, K}, w.offset());
                   Tensor o = y.as_strided({1, M, N}, {M * N, N, 1}, y.offset());
                   c.inputs = {{"x", x}, {"w", w}};
                   if (gelu) c.inputs.push_back({"b", bias});
                   c.outputs = {{"out", y}};
                   c.run = [=] { kernels::gemm_epilogue_table().get(d)(a, b, bias, o, ep, impl); };
                   return c;
                 }});
}

void add_gemm_bias_gelu_pair(std::vector<ProfileCase>& out, const std::string& where, int64_t M,
                             int64_t N, int64_t K) {
  for (kernels::GemmImpl impl : {kernels::GemmImpl::hand_written, kernels::GemmImpl::automatic})
    add_gemm_case(out, where, M, N, K, kernels::GemmEpilogue::bias_gelu_tanh, impl);
}

bool wanted(const std::vector<std::string>& families, const std::string& f) {
  return families.empty() || std::find(families.begin(), families.end(), f) != families.end();
}

}  // namespace

const std::vector<std::string>& profile_op_families() {
  static const std::vector<std::string> f = {"conv",    "attention",     "layer_norm",
                                             "softmax", "cross_entropy", "gemm"};
  return f;
}

std::vector<ProfileCase> profile_cases(const std::vector<std::string>& families, CaseSize size) {
  for (const std::string& f : families)
    IRIS_CHECK(std::find(profile_op_families().begin(), profile_op_families().end(), f) !=
                   profile_op_families().end(),
               "iris profile: unknown op family '", f,
               "' (conv, attention, layer_norm, softmax, cross_entropy, gemm)");
  const bool full = size == CaseSize::full, tiny = size == CaseSize::tiny;
  std::vector<ProfileCase> out;
  if (wanted(families, "conv")) {
    std::vector<ConvShape> shapes;
    if (tiny) {
      shapes = {{"tiny", 1, 3, 8, 8, 4, 3, 2, 1}};
    } else {
      const int64_t B = full ? 32 : 4, N = full ? 8 : 1;  // cnn-rnn trains at batch 32
      shapes = {{"cnn-rnn", B, 3, 64, 64, 32, 3, 2, 1},    {"cnn-rnn", B, 32, 32, 32, 32, 3, 1, 1},
                {"cnn-rnn", B, 64, 16, 16, 128, 3, 2, 1},  {"cnn-rnn", B, 256, 4, 4, 256, 3, 1, 1},
                {"resnet50", N, 3, 224, 224, 64, 7, 2, 3}, {"resnet50", N, 64, 56, 56, 64, 3, 1, 1},
                {"resnet50", N, 256, 56, 56, 64, 1, 1, 0}};
      if (full) {
        shapes.push_back({"resnet50", N, 128, 28, 28, 128, 3, 1, 1});
        shapes.push_back({"resnet50", N, 256, 14, 14, 256, 3, 1, 1});
        shapes.push_back({"resnet50", N, 1024, 14, 14, 256, 1, 1, 0});
        shapes.push_back({"resnet50", N, 512, 7, 7, 512, 3, 1, 1});
      }
    }
    for (const ConvShape& s : shapes) add_conv_cases(out, s);
  }
  if (wanted(families, "attention")) {
    std::vector<AttentionShape> shapes;
    if (tiny) {
      shapes = {{"tiny", 1, 2, 8, 8, 16, true, false}, {"tiny", 2, 2, 4, 12, 16, false, true}};
    } else if (!full) {
      shapes = {{"vit-b", 1, 12, 197, 197, 64},
                {"gpt2", 1, 2, 256, 256, 64, true},
                {"cross", 4, 8, 16, 197, 64, false, true}};
    } else {
      shapes = {{"vit-b", 4, 12, 197, 197, 64},
                {"gpt2", 1, 12, 1024, 1024, 64, true},
                {"long", 1, 2, 4096, 4096, 128}};
      for (int64_t lq : {16, 32, 77})
        for (int64_t lk : {64, 197, 577})
          shapes.push_back({"cross", 16, 8, lq, lk, 64, false, true});
    }
    for (const AttentionShape& s : shapes) add_attention_cases(out, s);
    // bf16 (what cuDNN's fused attention computes; GPU rows) on the shapes its baseline runs
    // here: those without per-sample lengths.
    if (!tiny)
      for (const AttentionShape& s : shapes)
        if (!s.ragged) add_attention_cases(out, s, DType::bf16);
  }
  // Memory-bound ops: full shapes hold 32 MiB or more per tensor (larger than the L2).
  if (wanted(families, "layer_norm")) {
    if (tiny) add_layer_norm_cases(out, 4, 32);
    for (int64_t n : {768, 1024, 12288})
      if (!tiny) add_layer_norm_cases(out, full ? (int64_t(12) << 20) / n : 256, n);
  }
  if (wanted(families, "softmax")) {
    if (tiny) add_softmax_cases(out, 4, 40);
    if (!tiny) add_softmax_cases(out, full ? 4 * 12 * 197 : 12 * 197, 197);  // ViT-B scores
    if (!tiny) add_softmax_cases(out, full ? 8192 : 256, 1024);
    if (full) add_softmax_cases(out, 256, 50257);
  }
  if (wanted(families, "cross_entropy")) {
    if (tiny) add_cross_entropy_cases(out, 4, 33);
    if (!tiny) add_cross_entropy_cases(out, 512, 1024);  // vit-cap: 32 x 16 tokens, vocab 1024
    if (!tiny) add_cross_entropy_cases(out, full ? 1024 : 64, 50257);  // GPT-2's vocabulary
  }
  if (wanted(families, "gemm")) {
    if (tiny) {
      add_gemm_case(out, "tiny", 8, 24, 16);
    } else if (!full) {
      add_gemm_case(out, "vit-cap qkv", 2080, 576, 192);
      add_gemm_case(out, "gpt2 qkv", 256, 2304, 768);
      add_gemm_bias_gelu_pair(out, "gpt2 mlp up", 256, 3072, 768);
    } else {
      add_gemm_case(out, "vit-cap qkv", 2080, 576, 192);
      add_gemm_case(out, "vit-cap mlp down", 2080, 192, 768);
      add_gemm_case(out, "vit-b qkv", 1576, 2304, 768);
      add_gemm_case(out, "vit-b mlp up", 1576, 3072, 768);
      add_gemm_case(out, "vit-b mlp down", 1576, 768, 3072);
      add_gemm_case(out, "gpt2 qkv", 1024, 2304, 768);
      add_gemm_case(out, "gpt2 lm head", 1024, 50257, 768);
      add_gemm_bias_gelu_pair(out, "vit-b mlp up", 1576, 3072, 768);
      add_gemm_bias_gelu_pair(out, "gpt2 mlp up", 1024, 3072, 768);
    }
  }
  return out;
}

}  // namespace iris::tools
