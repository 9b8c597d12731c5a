// cuDNN fused attention (SDPA forward) through the cuDNN graph (backend) API. The graph is the
// one cuDNN's frontend builds for its SDPA node (frontend 1.x, cuDNN 9 before 9.21, whose
// softmax is still a composite of reductions and pointwise ops):
//   S = Q K^T (fp32) -> S * scale -> [causal: keep where row (+ Lk - Lq) >= col, else lowest]
//   -> max, S - max, exp, sum, stats = max + log(sum), P = exp / sum (P in the inputs' dtype)
//   -> O = P V
// with Q, K^T, V, O and the stats bound by unique id, the scale and mask constants passed by
// value, and the first engine configuration cuDNN's heuristics offer that finalizes.
#include "tools/profile_cudnn_attention.h"

#ifdef IRIS_WITH_CUDA

#include <algorithm>
#include <array>
#include <deque>
#include <limits>
#include <memory>
#include <vector>

#include "nn/json_lite.h"
#include "tools/profile_gpu_check.h"

namespace iris::tools {

namespace {

// The handle attributes are deprecated since cuDNN 9.8 (a DEVICEPROP descriptor may stand in)
// but are the form every cuDNN 9 release accepts.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
constexpr cudnnBackendAttributeName_t kGraphHandleAttr = CUDNN_ATTR_OPERATIONGRAPH_HANDLE;
constexpr cudnnBackendAttributeName_t kPlanHandleAttr = CUDNN_ATTR_EXECUTION_PLAN_HANDLE;
#pragma GCC diagnostic pop

// One backend descriptor, destroyed on scope exit.
class Desc {
 public:
  explicit Desc(cudnnBackendDescriptorType_t type) {
    PROFILE_CUDNN(cudnnBackendCreateDescriptor(type, &d_));
  }
  ~Desc() {
    if (d_) (void)cudnnBackendDestroyDescriptor(d_);
  }
  Desc(const Desc&) = delete;
  Desc& operator=(const Desc&) = delete;

  cudnnBackendDescriptor_t get() const { return d_; }
  template <class V>
  Desc& set(cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type, const V* values,
            int64_t count = 1) {
    PROFILE_CUDNN(cudnnBackendSetAttribute(d_, name, type, count, values));
    return *this;
  }
  Desc& set_desc(cudnnBackendAttributeName_t name, const Desc& other) {
    const cudnnBackendDescriptor_t o = other.get();
    return set(name, CUDNN_TYPE_BACKEND_DESCRIPTOR, &o);
  }
  void finalize() { PROFILE_CUDNN(cudnnBackendFinalize(d_)); }

 private:
  cudnnBackendDescriptor_t d_ = nullptr;
};

class CudnnHandle {
 public:
  CudnnHandle() { PROFILE_CUDNN(cudnnCreate(&h_)); }
  ~CudnnHandle() {
    if (h_) (void)cudnnDestroy(h_);
  }
  CudnnHandle(const CudnnHandle&) = delete;
  CudnnHandle& operator=(const CudnnHandle&) = delete;
  cudnnHandle_t get() const { return h_; }

 private:
  cudnnHandle_t h_ = nullptr;
};

using Dims = std::array<int64_t, 4>;

Dims dense_strides(const Dims& d) { return {d[1] * d[2] * d[3], d[2] * d[3], d[3], 1}; }

// An operation graph under construction: owns every descriptor its operations reference.
class Graph {
 public:
  // uid 0: the next free id (virtual intermediates never meet the variant pack).
  const Desc& tensor(cudnnDataType_t type, const Dims& dims, const Dims& strides, bool is_virtual,
                     bool by_value = false, int64_t uid = 0) {
    Desc& t = keep_.emplace_back(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    const int64_t id = uid != 0 ? uid : next_uid_++;
    const int64_t alignment = 16;  // what the tensor-core engines need
    t.set(CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, &type)
        .set(CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, dims.data(), 4)
        .set(CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, strides.data(), 4)
        .set(CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, &id)
        .set(CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, &alignment)
        .set(CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, &is_virtual)
        .set(CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, &by_value);
    t.finalize();
    return t;
  }
  // A constant passed by value (a host pointer in the variant pack).
  const Desc& scalar(cudnnDataType_t type, int64_t uid) {
    return tensor(type, {1, 1, 1, 1}, {1, 1, 1, 1}, false, true, uid);
  }

  // y = op(x[, b[, t]]); axis for GEN_INDEX.
  void pointwise(cudnnPointwiseMode_t mode, cudnnDataType_t precision, const Desc& x, const Desc* b,
                 const Desc& y, const Desc* t = nullptr, int64_t axis = -1) {
    Desc& pw = keep_.emplace_back(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    pw.set(CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, &mode)
        .set(CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, &precision);
    if (axis >= 0) pw.set(CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, &axis);
    pw.finalize();
    Desc& op = add_op(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, pw)
        .set_desc(CUDNN_ATTR_OPERATION_POINTWISE_XDESC, x);
    if (b) op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_BDESC, *b);
    if (t) op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_TDESC, *t);
    op.set_desc(CUDNN_ATTR_OPERATION_POINTWISE_YDESC, y);
    op.finalize();
  }

  // y = reduce(x) over the dims where y has extent 1; fp32.
  void reduction(cudnnReduceTensorOp_t reduce, const Desc& x, const Desc& y) {
    Desc& r = keep_.emplace_back(CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
    const cudnnDataType_t f32 = CUDNN_DATA_FLOAT;
    r.set(CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, &reduce)
        .set(CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, &f32);
    r.finalize();
    Desc& op = add_op(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR);
    op.set_desc(CUDNN_ATTR_OPERATION_REDUCTION_XDESC, x)
        .set_desc(CUDNN_ATTR_OPERATION_REDUCTION_YDESC, y)
        .set_desc(CUDNN_ATTR_OPERATION_REDUCTION_DESC, r);
    op.finalize();
  }

  // c = a @ b over the last two dims, batched over the first two; fp32 accumulation.
  void matmul(const Desc& a, const Desc& b, const Desc& c) {
    Desc& mm = keep_.emplace_back(CUDNN_BACKEND_MATMUL_DESCRIPTOR);
    const cudnnDataType_t f32 = CUDNN_DATA_FLOAT;
    mm.set(CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, &f32);
    mm.finalize();
    Desc& op = add_op(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR);
    op.set_desc(CUDNN_ATTR_OPERATION_MATMUL_ADESC, a)
        .set_desc(CUDNN_ATTR_OPERATION_MATMUL_BDESC, b)
        .set_desc(CUDNN_ATTR_OPERATION_MATMUL_CDESC, c)
        .set_desc(CUDNN_ATTR_OPERATION_MATMUL_DESC, mm);
    op.finalize();
  }

  const Desc& finalize(cudnnHandle_t handle) {
    Desc& g = keep_.emplace_back(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
    g.set(CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR, ops_.data(),
          static_cast<int64_t>(ops_.size()))
        .set(kGraphHandleAttr, CUDNN_TYPE_HANDLE, &handle);
    g.finalize();
    return g;
  }

 private:
  Desc& add_op(cudnnBackendDescriptorType_t type) {
    Desc& op = keep_.emplace_back(type);
    ops_.push_back(op.get());
    return op;
  }

  std::deque<Desc> keep_;  // a deque: references stay valid as it grows
  std::vector<cudnnBackendDescriptor_t> ops_;
  int64_t next_uid_ = 100;
};

// The tensors the variant pack binds.
enum Uid : int64_t { kQ = 1, kK, kV, kO, kStats, kScale, kMaskFill, kCausalShift };

struct SdpaShape {
  int64_t B = 0, H = 0, Lq = 0, Lk = 0, D = 0;
  bool causal = false;
  cudnnDataType_t io = CUDNN_DATA_BFLOAT16;  // Q, K, V, O (and P) type: bf16 or fp16
};

void build_sdpa_forward(Graph& g, const SdpaShape& s) {
  constexpr cudnnDataType_t f32 = CUDNN_DATA_FLOAT, i32 = CUDNN_DATA_INT32,
                            boolean = CUDNN_DATA_BOOLEAN;
  const Dims q_dims{s.B, s.H, s.Lq, s.D}, v_dims{s.B, s.H, s.Lk, s.D};
  const Dims s_dims{s.B, s.H, s.Lq, s.Lk}, row_dims{s.B, s.H, s.Lq, 1};
  const Dims row_strides{s.H * s.Lq, s.Lq, 1, 1};
  const Desc& q = g.tensor(s.io, q_dims, dense_strides(q_dims), false, false, kQ);
  // K [B, H, Lk, D] dense, described as K^T [B, H, D, Lk].
  const Desc& kt = g.tensor(s.io, {s.B, s.H, s.D, s.Lk}, {s.H * s.Lk * s.D, s.Lk * s.D, 1, s.D},
                            false, false, kK);
  const Desc& v = g.tensor(s.io, v_dims, dense_strides(v_dims), false, false, kV);
  const Desc& o = g.tensor(s.io, q_dims, dense_strides(q_dims), false, false, kO);
  const Desc& stats = g.tensor(f32, row_dims, row_strides, false, false, kStats);
  auto scores = [&](cudnnDataType_t type) -> const Desc& {
    return g.tensor(type, s_dims, dense_strides(s_dims), true);
  };
  auto per_row = [&]() -> const Desc& { return g.tensor(f32, row_dims, row_strides, true); };

  const Desc& raw = scores(f32);
  g.matmul(q, kt, raw);
  const Desc& scaled = scores(f32);
  g.pointwise(CUDNN_POINTWISE_MUL, f32, raw, &g.scalar(f32, kScale), scaled);
  const Desc* logits = &scaled;
  if (s.causal) {
    const Desc& row = scores(i32);
    g.pointwise(CUDNN_POINTWISE_GEN_INDEX, i32, scaled, nullptr, row, nullptr, 2);
    const Desc* aligned_row = &row;
    if (s.Lk != s.Lq) {  // bottom-right aligned, as iris: query i sees keys j <= i + Lk - Lq
      const Desc& shifted = scores(i32);
      g.pointwise(CUDNN_POINTWISE_ADD, i32, row, &g.scalar(i32, kCausalShift), shifted);
      aligned_row = &shifted;
    }
    const Desc& col = scores(i32);
    g.pointwise(CUDNN_POINTWISE_GEN_INDEX, i32, scaled, nullptr, col, nullptr, 3);
    const Desc& keep = scores(boolean);
    g.pointwise(CUDNN_POINTWISE_CMP_GE, boolean, *aligned_row, &col, keep);
    const Desc& masked = scores(f32);
    g.pointwise(CUDNN_POINTWISE_BINARY_SELECT, f32, scaled, &g.scalar(f32, kMaskFill), masked,
                &keep);
    logits = &masked;
  }
  const Desc& row_max = per_row();
  g.reduction(CUDNN_REDUCE_TENSOR_MAX, *logits, row_max);
  const Desc& centered = scores(f32);
  g.pointwise(CUDNN_POINTWISE_SUB, f32, *logits, &row_max, centered);
  const Desc& exps = scores(f32);
  g.pointwise(CUDNN_POINTWISE_EXP, f32, centered, nullptr, exps);
  const Desc& row_sum = per_row();
  g.reduction(CUDNN_REDUCE_TENSOR_ADD, exps, row_sum);
  const Desc& log_sum = per_row();
  g.pointwise(CUDNN_POINTWISE_LOG, f32, row_sum, nullptr, log_sum);
  g.pointwise(CUDNN_POINTWISE_ADD, f32, row_max, &log_sum, stats);
  const Desc& probs = scores(s.io);
  g.pointwise(CUDNN_POINTWISE_DIV, f32, exps, &row_sum, probs);
  g.matmul(probs, v, o);
}

// The first engine configuration of cuDNN's heuristics (mode A) that finalizes into a plan;
// nullptr (and why) when none does.
std::unique_ptr<Desc> make_plan(cudnnHandle_t handle, const Desc& graph, std::string& why) {
  Desc heur(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  const cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
  heur.set_desc(CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, graph)
      .set(CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, &mode);
  heur.finalize();
  int64_t count = 0;
  PROFILE_CUDNN(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &count, nullptr));
  why = "cuDNN's heuristics offer no engine for this graph";
  if (count <= 0) return nullptr;
  std::deque<Desc> configs;
  std::vector<cudnnBackendDescriptor_t> raw;
  for (int64_t i = 0; i < count; ++i)
    raw.push_back(configs.emplace_back(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR).get());
  int64_t returned = 0;
  PROFILE_CUDNN(cudnnBackendGetAttribute(heur.get(), CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                         CUDNN_TYPE_BACKEND_DESCRIPTOR, count, &returned,
                                         raw.data()));
  for (int64_t i = 0; i < std::min(returned, count); ++i) {
    auto plan = std::make_unique<Desc>(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR);
    const cudnnBackendDescriptor_t config = raw[size_t(i)];
    plan->set(kPlanHandleAttr, CUDNN_TYPE_HANDLE, &handle)
        .set(CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG, CUDNN_TYPE_BACKEND_DESCRIPTOR, &config);
    const cudnnStatus_t status = cudnnBackendFinalize(plan->get());
    if (status == CUDNN_STATUS_SUCCESS) return plan;
    why = std::string("no engine configuration finalizes (last: ") + cudnnGetErrorString(status) +
          ")";
  }
  return nullptr;
}

const Tensor* input_or_null(const PreparedCase& p, const std::string& name) {
  for (const auto& [n, t] : p.inputs)
    if (n == name) return &t;
  return nullptr;
}

BaselineResult not_available(const std::string& short_reason, const std::string& detail) {
  BaselineResult r;
  r.name = "n/a (" + short_reason + ")";
  r.error = cudnn_version_name() + " fused attention: " + detail;
  return r;
}

}  // namespace

std::string cudnn_version_name() {
  const size_t v = cudnnGetVersion();
  return "cuDNN " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100);
}

BaselineResult cudnn_attention(const ProfileCase& c, const PreparedCase& p,
                               const TimingPolicy& tp) {
  if (c.op != "attention_fwd")
    return not_available("cuDNN SDPA backward not built",
                         "only the forward graph is built through the backend API");
  if (cudnnGetVersion() < 8903)
    return not_available("cuDNN < 8.9.3", "fused attention needs cuDNN 8.9.3 or later");
  const Tensor* qp = input_or_null(p, "q");
  const Tensor* kp = input_or_null(p, "k");
  const Tensor* vp = input_or_null(p, "v");
  IRIS_CHECK(qp && kp && vp, "iris profile: attention case ", c.shape, " lacks q, k or v");
  if (input_or_null(p, "q_lens") || input_or_null(p, "k_lens"))
    return not_available("per-sample lengths not built",
                         "per-sample lengths need cuDNN's padding mask (sequence-length tensors "
                         "and matmul overrides), not built in this baseline");
  const Tensor &q = *qp, &k = *kp, &v = *vp;
  if (q.dtype() != DType::bf16 && q.dtype() != DType::f16)
    return not_available("needs bf16/fp16", "inputs are " + std::string(dtype_name(q.dtype())));
  IRIS_CHECK(q.dim() == 4 && k.dim() == 4 && v.dim() == 4 && q.is_contiguous() &&
                 k.is_contiguous() && v.is_contiguous() && k.shape() == v.shape(),
             "iris profile: cuDNN attention expects dense [B, H, L, D] q, k, v, got ", q.desc(),
             ", ", k.desc(), ", ", v.desc());
  int device = 0, major = 0;
  PROFILE_CUDA(cudaGetDevice(&device));
  PROFILE_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  if (major < 8) return not_available("needs sm_80+", "fused attention needs sm_80 or later");

  const json::Value spec = json::parse(c.spec, "iris profile: case spec");
  const json::Value* causal = spec.find("causal");
  const json::Value* scale_v = spec.find("scale");
  IRIS_CHECK(causal && causal->kind == json::Value::Kind::boolean && scale_v &&
                 scale_v->kind == json::Value::Kind::number,
             "iris profile: attention spec lacks causal/scale: ", c.spec);
  SdpaShape s;
  s.B = q.size(0), s.H = q.size(1), s.Lq = q.size(2), s.Lk = k.size(2), s.D = q.size(3);
  s.causal = causal->b;
  s.io = q.dtype() == DType::bf16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF;

  CudnnHandle handle;
  Graph graph;
  std::unique_ptr<Desc> plan;
  std::string why;
  try {  // an unsupported graph or shape is an n/a row, not a failed profile
    build_sdpa_forward(graph, s);
    plan = make_plan(handle.get(), graph.finalize(handle.get()), why);
  } catch (const Error& e) {
    why = e.what();
  }
  if (!plan) return not_available("unsupported here", why);

  int64_t workspace_bytes = 0, returned = 0;
  PROFILE_CUDNN(cudnnBackendGetAttribute(plan->get(), CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE,
                                         CUDNN_TYPE_INT64, 1, &returned, &workspace_bytes));
  const Tensor workspace =
      Tensor::empty({std::max<int64_t>(workspace_bytes, 1)}, DType::u8, q.device());
  const Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());
  const Tensor stats = Tensor::empty({s.B, s.H, s.Lq}, DType::f32, q.device());
  float scale = static_cast<float>(scale_v->num), fill = std::numeric_limits<float>::lowest();
  int32_t shift = static_cast<int32_t>(s.Lk - s.Lq);
  std::vector<int64_t> uids{kQ, kK, kV, kO, kStats, kScale};
  std::vector<void*> ptrs{q.raw_data(), k.raw_data(), v.raw_data(), out.raw_data()};
  ptrs.push_back(stats.raw_data());
  ptrs.push_back(&scale);
  if (s.causal) uids.push_back(kMaskFill), ptrs.push_back(&fill);
  if (s.causal && s.Lk != s.Lq) uids.push_back(kCausalShift), ptrs.push_back(&shift);
  void* workspace_ptr = workspace.raw_data();
  Desc pack(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR);
  pack.set(CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, uids.data(),
           static_cast<int64_t>(uids.size()))
      .set(CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, ptrs.data(),
           static_cast<int64_t>(ptrs.size()))
      .set(CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, &workspace_ptr);
  pack.finalize();

  BaselineResult r;
  r.name = cudnn_version_name() + " (fused attention)";
  r.ms = gpu_time_median_ms(
      [&] { PROFILE_CUDNN(cudnnBackendExecute(handle.get(), plan->get(), pack.get())); }, tp);
  r.outputs["out"] = host_floats(out);
  return r;
}

}  // namespace iris::tools

#endif  // IRIS_WITH_CUDA
