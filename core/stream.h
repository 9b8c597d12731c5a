#pragma once
// CUDA streams and events (no CUDA headers needed to include this). Kernels, device copies
// and allocations go to the current stream of their device: per host thread, the default
// stream unless a StreamGuard says otherwise. Host-to-device copies return before the
// device has the data (pageable sources go through pinned staging buffers); only reading a
// host value (item, to_vector, to(cpu)) waits, and only for the current stream. Work on two
// streams is ordered only by an event: producer.record(a); b.wait(producer).
//
// Memory: a tensor's block is reused only by allocations on the stream it was allocated on.
// A tensor used on another stream must be marked with record_stream(t, other) (or the host
// must synchronise that stream before freeing it), as in PyTorch. The default stream orders
// itself after every other stream, so memory of the default stream needs no marking.
#include <cstdint>
#include <memory>
#include <string>

namespace iris {
class Tensor;
}

namespace iris::cuda {

namespace detail {
struct StreamState;
struct EventState;
}  // namespace detail

class Event;

class Stream {
 public:
  // A new stream on `device`; destroyed with its last copy, after its queued work has run.
  static Stream create(int device = 0);
  static Stream default_stream(int device = 0);
  // This thread's current stream of `device`.
  static Stream current(int device = 0);

  int device() const { return device_; }
  uint64_t id() const;  // 0 for the default stream, unique (never reused) otherwise
  bool is_default() const { return id() == 0; }
  void synchronize() const;  // returns when all work queued so far has run
  bool query() const;        // true when all work queued so far has run
  // Work queued on this stream after this call runs after `e`'s latest record.
  void wait(const Event& e) const;
  bool operator==(const Stream& o) const { return device_ == o.device_ && id() == o.id(); }

 private:
  friend class Event;
  friend class StreamGuard;
  Stream(std::shared_ptr<detail::StreamState> state, int device)
      : state_(std::move(state)), device_(device) {}
  void* handle() const;
  std::shared_ptr<detail::StreamState> state_;  // null: the default stream
  int device_ = 0;
};

// Makes `s` the current stream of its device on this thread until the guard goes.
class StreamGuard {
 public:
  explicit StreamGuard(const Stream& s);
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  Stream previous_;
};

// A point in a stream's work. Copies of an Event are the same event.
class Event {
 public:
  explicit Event(int device = 0);
  void record();  // on the current stream of the event's device
  void record(const Stream& s);
  // Both throw iris::Error for an event that was never recorded.
  void synchronize() const;  // returns when the recorded work has run
  bool query() const;        // true when the recorded work has run
  // Milliseconds from this event to `end`; both recorded and complete.
  float elapsed_ms(const Event& end) const;
  bool recorded() const;
  int device() const { return device_; }

 private:
  friend class Stream;
  void* handle() const;
  std::shared_ptr<detail::EventState> state_;
  int device_ = 0;
};

// Returns when all work on every stream of `device` has run.
void synchronize(int device = 0);
// Marks t's memory as in use by the work queued on `s` so far: when t is freed, its block is
// not reused before that work has run.
void record_stream(const Tensor& t, const Stream& s);
// "cuda" or "cuda (emulated)": the backend these calls reach.
std::string backend_name();

}  // namespace iris::cuda
