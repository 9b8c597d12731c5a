// GPU side of `iris profile`: CUDA-event timing, the device's limits from its properties, and
// the vendor baselines: cuDNN convolution (legacy API, the fastest algorithm
// cudnnFind*AlgorithmEx measures), cuDNN fused attention for the 16-bit attention rows
// (profile_cudnn_attention.cpp) and cuBLASLt GEMM (plain, and with the GELU_BIAS epilogue).
// Without IRIS_WITH_CUDA there is no GPU.
#include <algorithm>
#include <sstream>

#include "nn/json_lite.h"
#include "tools/profile.h"

#ifdef IRIS_WITH_CUDA
#include "tools/profile_cudnn_attention.h"
#include "tools/profile_gpu_check.h"
#endif

namespace iris::tools {

#ifdef IRIS_WITH_CUDA

namespace {

// Device scratch (workspaces, baseline outputs), freed on scope exit.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes) : bytes_(bytes) {
    if (bytes) PROFILE_CUDA(cudaMalloc(&p_, bytes));
  }
  ~DeviceBuffer() {
    if (p_) (void)cudaFree(p_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  void* get() const { return p_; }
  size_t bytes() const { return bytes_; }
  std::vector<float> to_host() const {
    std::vector<float> h(bytes_ / sizeof(float));
    PROFILE_CUDA(cudaMemcpy(h.data(), p_, bytes_, cudaMemcpyDeviceToHost));
    return h;
  }

 private:
  void* p_ = nullptr;
  size_t bytes_;
};

constexpr size_t kWorkspaceBytes = size_t(256) << 20;

const Tensor& input_named(const PreparedCase& c, const std::string& name) {
  for (const auto& [n, t] : c.inputs)
    if (n == name) return t;
  IRIS_FAIL("iris profile: case has no input '", name, "'");
}

std::vector<int64_t> int_list(const json::Value& spec, const char* key) {
  const json::Value* v = spec.find(key);
  IRIS_CHECK(v && v->kind == json::Value::Kind::array, "iris profile: spec has no '", key, "'");
  std::vector<int64_t> out;
  for (const json::Value& e : v->arr) out.push_back(e.integer);
  return out;
}

int64_t int_field(const json::Value& spec, const char* key) {
  const json::Value* v = spec.find(key);
  IRIS_CHECK(v && v->is_integer, "iris profile: spec has no integer '", key, "'");
  return v->integer;
}

// ---- cuDNN convolution ----

struct CudnnConv {
  cudnnHandle_t handle = nullptr;
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;
  CudnnConv(const std::vector<int64_t>& xs, const std::vector<int64_t>& ws, int stride, int pad) {
    PROFILE_CUDNN(cudnnCreate(&handle));
    PROFILE_CUDNN(cudnnCreateTensorDescriptor(&x));
    PROFILE_CUDNN(cudnnCreateTensorDescriptor(&y));
    PROFILE_CUDNN(cudnnCreateFilterDescriptor(&w));
    PROFILE_CUDNN(cudnnCreateConvolutionDescriptor(&conv));
    PROFILE_CUDNN(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, int(xs[0]),
                                             int(xs[1]), int(xs[2]), int(xs[3])));
    PROFILE_CUDNN(cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, int(ws[0]),
                                             int(ws[1]), int(ws[2]), int(ws[3])));
    PROFILE_CUDNN(cudnnSetConvolution2dDescriptor(conv, pad, pad, stride, stride, 1, 1,
                                                  CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    // fp32 is the reference: no TF32 tensor-core math in the baseline either.
    PROFILE_CUDNN(cudnnSetConvolutionMathType(conv, CUDNN_FMA_MATH));
    int n, c, h, wd;
    PROFILE_CUDNN(cudnnGetConvolution2dForwardOutputDim(conv, x, w, &n, &c, &h, &wd));
    PROFILE_CUDNN(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, n, c, h, wd));
  }
  ~CudnnConv() {
    (void)cudnnDestroyConvolutionDescriptor(conv);
    (void)cudnnDestroyFilterDescriptor(w);
    (void)cudnnDestroyTensorDescriptor(y);
    (void)cudnnDestroyTensorDescriptor(x);
    (void)cudnnDestroy(handle);
  }
  CudnnConv(const CudnnConv&) = delete;
  CudnnConv& operator=(const CudnnConv&) = delete;
};

BaselineResult cudnn_conv(const ProfileCase& c, const PreparedCase& p, const TimingPolicy& tp) {
  const json::Value spec = json::parse(c.spec, "iris profile: case spec");
  const std::vector<int64_t> xs = int_list(spec, "input_shape"),
                             ws = int_list(spec, "weight_shape");
  CudnnConv d(xs, ws, int(int_field(spec, "stride")), int(int_field(spec, "pad")));
  const float one = 1.0f, zero = 0.0f;
  DeviceBuffer workspace(kWorkspaceBytes);
  BaselineResult r;
  r.name = cudnn_version_name() + " (Find)";
  constexpr int kAlgos = 16;
  int found = 0;
  std::function<void()> run;
  if (c.op == "conv2d_fwd") {
    const Tensor& x = input_named(p, "x");
    const Tensor& w = input_named(p, "w");
    DeviceBuffer y(size_t(p.outputs[0].second.numel()) * sizeof(float));
    cudnnConvolutionFwdAlgoPerf_t perf[kAlgos];
    PROFILE_CUDNN(cudnnFindConvolutionForwardAlgorithmEx(
        d.handle, d.x, x.raw_data(), d.w, w.raw_data(), d.conv, d.y, y.get(), kAlgos, &found, perf,
        workspace.get(), workspace.bytes()));
    IRIS_CHECK(found > 0 && perf[0].status == CUDNN_STATUS_SUCCESS,
               "iris profile: cuDNN found no forward algorithm for ", c.shape);
    const cudnnConvolutionFwdAlgo_t algo = perf[0].algo;
    run = [&] {
      PROFILE_CUDNN(cudnnConvolutionForward(d.handle, &one, d.x, x.raw_data(), d.w, w.raw_data(),
                                            d.conv, algo, workspace.get(), workspace.bytes(), &zero,
                                            d.y, y.get()));
    };
    r.ms = gpu_time_median_ms(run, tp);
    r.outputs["out"] = y.to_host();
  } else if (c.op == "conv2d_bwd_data") {
    const Tensor& dy = input_named(p, "dout");
    const Tensor& w = input_named(p, "w");
    DeviceBuffer dx(size_t(p.outputs[0].second.numel()) * sizeof(float));
    cudnnConvolutionBwdDataAlgoPerf_t perf[kAlgos];
    PROFILE_CUDNN(cudnnFindConvolutionBackwardDataAlgorithmEx(
        d.handle, d.w, w.raw_data(), d.y, dy.raw_data(), d.conv, d.x, dx.get(), kAlgos, &found,
        perf, workspace.get(), workspace.bytes()));
    IRIS_CHECK(found > 0 && perf[0].status == CUDNN_STATUS_SUCCESS,
               "iris profile: cuDNN found no backward-data algorithm for ", c.shape);
    const cudnnConvolutionBwdDataAlgo_t algo = perf[0].algo;
    run = [&] {
      PROFILE_CUDNN(cudnnConvolutionBackwardData(d.handle, &one, d.w, w.raw_data(), d.y,
                                                 dy.raw_data(), d.conv, algo, workspace.get(),
                                                 workspace.bytes(), &zero, d.x, dx.get()));
    };
    r.ms = gpu_time_median_ms(run, tp);
    r.outputs["dinp"] = dx.to_host();
  } else {
    const Tensor& dy = input_named(p, "dout");
    const Tensor& x = input_named(p, "x");
    DeviceBuffer dw(size_t(p.outputs[0].second.numel()) * sizeof(float));
    cudnnConvolutionBwdFilterAlgoPerf_t perf[kAlgos];
    PROFILE_CUDNN(cudnnFindConvolutionBackwardFilterAlgorithmEx(
        d.handle, d.x, x.raw_data(), d.y, dy.raw_data(), d.conv, d.w, dw.get(), kAlgos, &found,
        perf, workspace.get(), workspace.bytes()));
    IRIS_CHECK(found > 0 && perf[0].status == CUDNN_STATUS_SUCCESS,
               "iris profile: cuDNN found no backward-filter algorithm for ", c.shape);
    const cudnnConvolutionBwdFilterAlgo_t algo = perf[0].algo;
    run = [&] {
      PROFILE_CUDNN(cudnnConvolutionBackwardFilter(d.handle, &one, d.x, x.raw_data(), d.y,
                                                   dy.raw_data(), d.conv, algo, workspace.get(),
                                                   workspace.bytes(), &zero, d.w, dw.get()));
    };
    r.ms = gpu_time_median_ms(run, tp);
    r.outputs["dweight"] = dw.to_host();
  }
  return r;
}

// ---- cuBLASLt GEMM: out [M, N] = x [M, K] W[N, K]^T, fp32 without TF32; with bias_gelu,
// out = gelu_tanh(x W^T + b) by the GELU_BIAS epilogue ----

BaselineResult cublaslt_gemm(const PreparedCase& p, const TimingPolicy& tp, bool bias_gelu) {
  const Tensor& x = input_named(p, "x");
  const Tensor& w = input_named(p, "w");
  const int64_t M = x.size(0), K = x.size(1), N = w.size(0);
  cublasLtHandle_t lt;
  PROFILE_CUBLAS(cublasLtCreate(&lt));
  cublasLtMatmulDesc_t op;
  PROFILE_CUBLAS(cublasLtMatmulDescCreate(&op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  // Column-major view: out^T [N, M] = W [N, K] (as K x N, transposed) * x^T [K, M].
  const cublasOperation_t trans = CUBLAS_OP_T, none = CUBLAS_OP_N;
  PROFILE_CUBLAS(
      cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSA, &trans, sizeof(trans)));
  PROFILE_CUBLAS(
      cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_TRANSB, &none, sizeof(none)));
  if (bias_gelu) {  // the bias has one value per row of out^T, i.e. per output feature
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_GELU_BIAS;
    const void* bias = input_named(p, "b").raw_data();
    PROFILE_CUBLAS(cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue,
                                                  sizeof(epilogue)));
    PROFILE_CUBLAS(
        cublasLtMatmulDescSetAttribute(op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof(bias)));
  }
  cublasLtMatrixLayout_t la, lb, lc;
  PROFILE_CUBLAS(cublasLtMatrixLayoutCreate(&la, CUDA_R_32F, uint64_t(K), uint64_t(N), K));
  PROFILE_CUBLAS(cublasLtMatrixLayoutCreate(&lb, CUDA_R_32F, uint64_t(K), uint64_t(M), K));
  PROFILE_CUBLAS(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, uint64_t(N), uint64_t(M), N));
  DeviceBuffer workspace(size_t(32) << 20);
  cublasLtMatmulPreference_t pref;
  PROFILE_CUBLAS(cublasLtMatmulPreferenceCreate(&pref));
  const size_t ws_bytes = workspace.bytes();
  PROFILE_CUBLAS(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes, sizeof(ws_bytes)));
  cublasLtMatmulHeuristicResult_t heuristic{};
  int found = 0;
  PROFILE_CUBLAS(
      cublasLtMatmulAlgoGetHeuristic(lt, op, la, lb, lc, lc, pref, 1, &heuristic, &found));
  IRIS_CHECK(found > 0, "iris profile: cuBLASLt has no algorithm for ", M, " x ", N, " x ", K);
  DeviceBuffer out(size_t(M * N) * sizeof(float));
  const float one = 1.0f, zero = 0.0f;
  auto run = [&] {
    PROFILE_CUBLAS(cublasLtMatmul(lt, op, &one, w.raw_data(), la, x.raw_data(), lb, &zero,
                                  out.get(), lc, out.get(), lc, &heuristic.algo, workspace.get(),
                                  workspace.bytes(), nullptr));
  };
  BaselineResult r;
  r.name = bias_gelu ? "cuBLASLt (GELU_BIAS)" : "cuBLASLt";
  r.ms = gpu_time_median_ms(run, tp);
  r.outputs["out"] = out.to_host();
  (void)cublasLtMatmulPreferenceDestroy(pref);
  (void)cublasLtMatrixLayoutDestroy(lc);
  (void)cublasLtMatrixLayoutDestroy(lb);
  (void)cublasLtMatrixLayoutDestroy(la);
  (void)cublasLtMatmulDescDestroy(op);
  (void)cublasLtDestroy(lt);
  return r;
}

}  // namespace

bool is_real_gpu_tensor(const Tensor& t) {
  if (!t.defined() || !t.device().is_cuda()) return false;
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, t.raw_data()) != cudaSuccess) {
    (void)cudaGetLastError();  // no driver or a host pointer (the emulator)
    return false;
  }
  return attr.type == cudaMemoryTypeDevice;
}

std::optional<MachineLimits> gpu_limits(int device_index) {
  int sms = 0, clock_khz = 0, mem_khz = 0, bus_bits = 0, major = 0;
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device_index) != cudaSuccess) {
    (void)cudaGetLastError();
    return std::nullopt;
  }
  PROFILE_CUDA(cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, device_index));
  PROFILE_CUDA(cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, device_index));
  PROFILE_CUDA(cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, device_index));
  PROFILE_CUDA(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device_index));
  // FP32 lanes per SM: 64 on sm_80 (A100), 128 on sm_86 and later (H100/H200).
  const int lanes = major == 8 ? 64 : 128;
  MachineLimits m;
  m.peak_gflops = 2.0 * sms * lanes * clock_khz * 1e-6;
  m.bandwidth_gbs = 2.0 * mem_khz * 1e3 * (bus_bits / 8.0) * 1e-9;  // double data rate
  std::ostringstream os;
  os << "device properties: " << sms << " SMs x " << lanes << " FP32 lanes x " << clock_khz / 1000
     << " MHz boost; " << bus_bits << "-bit bus at " << mem_khz / 1000 << " MHz DDR";
  m.source = os.str();
  return m;
}

double gpu_time_median_ms(const std::function<void()>& fn, const TimingPolicy& policy) {
  for (int i = 0; i < policy.warmup; ++i) fn();
  PROFILE_CUDA(cudaDeviceSynchronize());
  cudaEvent_t start, stop;
  PROFILE_CUDA(cudaEventCreate(&start));
  PROFILE_CUDA(cudaEventCreate(&stop));
  std::vector<double> ms;
  double total = 0;
  while (int(ms.size()) < policy.max_runs &&
         (int(ms.size()) < policy.min_runs || total * 1e-3 < policy.min_seconds)) {
    PROFILE_CUDA(cudaEventRecord(start, nullptr));
    fn();
    PROFILE_CUDA(cudaEventRecord(stop, nullptr));
    PROFILE_CUDA(cudaEventSynchronize(stop));
    float t = 0;
    PROFILE_CUDA(cudaEventElapsedTime(&t, start, stop));
    ms.push_back(t);
    total += t;
  }
  (void)cudaEventDestroy(start);
  (void)cudaEventDestroy(stop);
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

std::optional<BaselineResult> vendor_baseline(const ProfileCase& c, const PreparedCase& prepared,
                                              const TimingPolicy& policy) {
  try {
    if (c.op.rfind("conv2d_", 0) == 0) return cudnn_conv(c, prepared, policy);
    if (c.op == "gemm") return cublaslt_gemm(prepared, policy, false);
    if (c.op == "gemm_bias_gelu") return cublaslt_gemm(prepared, policy, true);
    // fp32 attention has the torch GPU script as its baseline; 16-bit attention has cuDNN.
    if (c.op.rfind("attention_", 0) == 0 && c.dtype != "f32")
      return cudnn_attention(c, prepared, policy);
  } catch (const Error& e) {
    BaselineResult r;
    r.name = c.op.rfind("gemm", 0) == 0 ? "cuBLASLt" : cudnn_version_name();
    r.error = e.what();
    return r;
  }
  return std::nullopt;
}

#else  // no CUDA toolkit: no GPU, no vendor baselines

bool is_real_gpu_tensor(const Tensor&) { return false; }
std::optional<MachineLimits> gpu_limits(int) { return std::nullopt; }
double gpu_time_median_ms(const std::function<void()>&, const TimingPolicy&) {
  IRIS_FAIL("iris profile: CUDA-event timing needs the CUDA build");
}
std::optional<BaselineResult> vendor_baseline(const ProfileCase&, const PreparedCase&,
                                              const TimingPolicy&) {
  return std::nullopt;
}

#endif

}  // namespace iris::tools
