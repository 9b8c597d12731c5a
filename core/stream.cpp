#include "core/stream.h"

#include <array>
#include <atomic>
#include <cstdio>

#include "core/error.h"
#include "core/stream_backend.h"
#include "core/tensor.h"

namespace iris::cuda {
namespace detail {

// Destructors report instead of throwing: a failure here also surfaces at the next
// synchronising call.
struct StreamState {
  int device;
  uint64_t id;
  void* handle;
  ~StreamState() {
    try {
      stream_backend().stream_destroy(device, handle, id);
    } catch (const Error& e) {
      std::fprintf(stderr, "iris: destroying cuda stream %llu: %s\n",
                   static_cast<unsigned long long>(id), e.what());
    }
  }
};

struct EventState {
  int device;
  void* handle = nullptr;  // made at the first record
  ~EventState() {
    if (!handle) return;
    try {
      stream_backend().event_destroy(device, handle);
    } catch (const Error& e) {
      std::fprintf(stderr, "iris: destroying a cuda event: %s\n", e.what());
    }
  }
};

}  // namespace detail

namespace {

constexpr int kMaxDevices = 16;
StreamBackend* g_backend = nullptr;
std::atomic<uint64_t> g_next_stream_id{1};
thread_local std::array<std::shared_ptr<detail::StreamState>, kMaxDevices> t_current;

void check_index(int device, const char* op) {
  IRIS_CHECK(device >= 0 && device < kMaxDevices, op, ": no cuda device ", device);
}
StreamBackend& backend_for(int device, const char* op) {
  check_index(device, op);
  StreamBackend& b = stream_backend();
  const int n = b.device_count();
  IRIS_CHECK(device < n, op, ": no cuda device ", device, " (", n, " visible)");
  return b;
}

}  // namespace

void register_stream_backend(StreamBackend* backend) { g_backend = backend; }

StreamBackend& stream_backend() {
  IRIS_CHECK(g_backend, "cuda streams: no CUDA backend (iris was built without CUDA)");
  return *g_backend;
}

std::string backend_name() { return g_backend ? g_backend->name() : "none"; }

Stream Stream::create(int device) {
  StreamBackend& b = backend_for(device, "Stream::create");
  const uint64_t id = g_next_stream_id++;
  void* handle = b.stream_create(device, id);
  return Stream(std::shared_ptr<detail::StreamState>(new detail::StreamState{device, id, handle}),
                device);
}

Stream Stream::default_stream(int device) {
  check_index(device, "Stream::default_stream");
  return Stream(nullptr, device);
}

Stream Stream::current(int device) {
  check_index(device, "Stream::current");
  return Stream(t_current[device], device);
}

uint64_t Stream::id() const { return state_ ? state_->id : 0; }
void* Stream::handle() const { return state_ ? state_->handle : nullptr; }

void Stream::synchronize() const {
  backend_for(device_, "Stream::synchronize").stream_synchronize(device_, handle());
}

bool Stream::query() const {
  return backend_for(device_, "Stream::query").stream_query(device_, handle());
}

void Stream::wait(const Event& e) const {
  IRIS_CHECK(e.device() == device_, "Stream::wait: an event of cuda:", e.device(),
             " on a stream of cuda:", device_);
  IRIS_CHECK(e.recorded(), "Stream::wait: the event was never recorded");
  backend_for(device_, "Stream::wait").stream_wait_event(device_, handle(), e.handle());
}

StreamGuard::StreamGuard(const Stream& s) : previous_(Stream::current(s.device())) {
  if (g_backend) g_backend->set_current_stream(s.device(), s.handle(), s.id());
  t_current[s.device()] = s.state_;
}

StreamGuard::~StreamGuard() {
  t_current[previous_.device()] = previous_.state_;
  try {
    if (g_backend)
      g_backend->set_current_stream(previous_.device(), previous_.handle(), previous_.id());
  } catch (const Error& e) {
    std::fprintf(stderr, "iris: restoring the current cuda stream: %s\n", e.what());
  }
}

Event::Event(int device)
    : state_(std::make_shared<detail::EventState>(detail::EventState{device})), device_(device) {
  check_index(device, "Event");
}

void Event::record() { record(Stream::current(device_)); }

void Event::record(const Stream& s) {
  IRIS_CHECK(s.device() == device_, "Event::record: an event of cuda:", device_,
             " on a stream of cuda:", s.device());
  StreamBackend& b = backend_for(device_, "Event::record");
  if (!state_->handle) state_->handle = b.event_create(device_);
  b.event_record(device_, state_->handle, s.handle());
}

bool Event::recorded() const { return state_->handle != nullptr; }
void* Event::handle() const { return state_->handle; }

void Event::synchronize() const {
  IRIS_CHECK(recorded(), "Event::synchronize: the event was never recorded");
  backend_for(device_, "Event::synchronize").event_synchronize(device_, state_->handle);
}

bool Event::query() const {
  IRIS_CHECK(recorded(), "Event::query: the event was never recorded");
  return backend_for(device_, "Event::query").event_query(device_, state_->handle);
}

float Event::elapsed_ms(const Event& end) const {
  IRIS_CHECK(recorded() && end.recorded(), "Event::elapsed_ms: the ", recorded() ? "end" : "start",
             " event was never recorded");
  IRIS_CHECK(end.device_ == device_, "Event::elapsed_ms: events of cuda:", device_,
             " and cuda:", end.device_);
  StreamBackend& b = backend_for(device_, "Event::elapsed_ms");
  IRIS_CHECK(b.event_query(device_, state_->handle) && b.event_query(device_, end.state_->handle),
             "Event::elapsed_ms: the events have not completed (synchronize the end event first)");
  return b.event_elapsed_ms(device_, state_->handle, end.state_->handle);
}

void synchronize(int device) {
  backend_for(device, "cuda::synchronize").device_synchronize(device);
}

void record_stream(const Tensor& t, const Stream& s) {
  IRIS_CHECK(t.defined() && t.device().is_cuda(),
             "record_stream: ", t.defined() ? t.device().str() : std::string("an undefined"),
             " tensor (a cuda tensor is needed)");
  IRIS_CHECK(t.device().index == s.device(), "record_stream: a tensor on ", t.device().str(),
             " and a stream of cuda:", s.device());
  if (!t.storage()->data()) return;  // nothing allocated
  backend_for(s.device(), "record_stream").record_stream(s.device(), t.storage()->data(), s.id());
}

}  // namespace iris::cuda
