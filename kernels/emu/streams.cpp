// The emulator's streams and events: created streams queue their work and run it only
// when the host waits or polls (runtime.h states the guarantees), so a missing
// synchronisation shows as stale data instead of passing by luck.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_set>
#include <vector>

#include "core/error.h"
#include "kernels/emu/stream_queue.h"

namespace iris::emu {

using Clock = std::chrono::steady_clock;

struct StreamImpl {
  uint64_t id;
  std::deque<std::function<void()>> queue;
  uint64_t submitted = 0;  // operations ever queued
  uint64_t completed = 0;  // operations started (or dropped after a failure)
};

struct EventImpl {
  // One per record: the marker that completes it writes the time when it runs.
  struct Stamp {
    std::optional<Clock::time_point> time;
  };
  uint64_t stream_id = 0;  // 0: recorded on the legacy stream (complete at once) or never
  uint64_t seq = 0;        // complete once that stream's `completed` reaches it
  std::shared_ptr<Stamp> stamp;
};

namespace {

struct Streams {
  std::recursive_mutex mu;
  std::map<uint64_t, std::unique_ptr<StreamImpl>> live;  // by id: creation order
  std::unordered_set<const StreamImpl*> handles;
  std::unordered_set<const EventImpl*> events;
  uint64_t next_id = 1;
  std::atomic<size_t> pending{0};
};
Streams& streams() {
  static Streams* s = new Streams;  // never destroyed: streams may outlive static objects
  return *s;
}

thread_local Stream t_current = nullptr;

// The caller holds mu.
StreamImpl* checked(Streams& st, Stream s, const char* op) {
  IRIS_CHECK(st.handles.count(s), op, ": ", static_cast<const void*>(s),
             " is not a live stream (destroyed, or never created)");
  return s;
}
void checked_event(Streams& st, Event e, const char* op) {
  IRIS_CHECK(e && st.events.count(e), op, ": ", static_cast<const void*>(e),
             " is not a live event");
}
StreamImpl* find(Streams& st, uint64_t id) {
  auto it = st.live.find(id);
  return it == st.live.end() ? nullptr : it->second.get();
}

// Runs the next queued operation of s; a failure drops the rest of its queue.
void run_one(Streams& st, StreamImpl* s) {
  std::function<void()> op = std::move(s->queue.front());
  s->queue.pop_front();
  ++s->completed;
  --st.pending;
  try {
    op();
  } catch (...) {
    s->completed += s->queue.size();
    st.pending -= s->queue.size();
    s->queue.clear();
    throw;
  }
}

void run_until(Streams& st, StreamImpl* s, uint64_t seq) {
  while (s->completed < seq && !s->queue.empty()) run_one(st, s);
}

bool event_done(Streams& st, const EventImpl* e) {
  const StreamImpl* s = find(st, e->stream_id);
  return !s || s->completed >= e->seq;  // a destroyed stream ran all its work
}

}  // namespace

namespace detail {

void run_all_pending() {
  Streams& st = streams();
  if (st.pending.load() == 0) return;
  std::lock_guard<std::recursive_mutex> lk(st.mu);
  while (st.pending.load() != 0) {
    for (auto it = st.live.rbegin(); it != st.live.rend(); ++it)
      run_until(st, it->second.get(), it->second->submitted);
  }
}

void submit(Stream s, std::function<void()> op) {
  if (!s) {
    run_all_pending();
    op();
    return;
  }
  Streams& st = streams();
  std::lock_guard<std::recursive_mutex> lk(st.mu);
  checked(st, s, "emu: stream operation");
  s->queue.push_back(std::move(op));
  ++s->submitted;
  ++st.pending;
}

void run_stream(Stream s) {
  if (!s) return run_all_pending();
  Streams& st = streams();
  std::lock_guard<std::recursive_mutex> lk(st.mu);
  run_until(st, checked(st, s, "emu::stream_synchronize"), s->submitted);
}

}  // namespace detail

Stream stream_create() {
  Streams& st = streams();
  std::lock_guard<std::recursive_mutex> lk(st.mu);
  auto impl = std::make_unique<StreamImpl>();
  impl->id = st.next_id++;
  Stream s = impl.get();
  st.live.emplace(s->id, std::move(impl));
  st.handles.insert(s);
  return s;
}

void stream_destroy(Stream s) {
  if (!s) return;
  Streams& st = streams();
  std::lock_guard<std::recursive_mutex> lk(st.mu);
  run_until(st, checked(st, s, "emu::stream_destroy"), s->submitted);
  st.handles.erase(s);
  if (t_current == s) t_current = nullptr;
  st.live.erase(s->id);
}

void stream_synchronize(Stream s) { detail::run_stream(s); }

bool stream_query(Stream s) {
  if (!s) {
    detail::run_all_pending();
    return true;
  }
  Streams& st = streams();
  std::lock_guard<std::recursive_mutex> lk(st.mu);
  checked(st, s, "emu::stream_query");
  if (s->queue.empty()) return true;
  run_one(st, s);
  return s->queue.empty();
}

void stream_wait_event(Stream s, Event e) {
  Streams& st = streams();
  std::lock_guard<std::recursive_mutex> lk(st.mu);
  checked_event(st, e, "emu::stream_wait_event");
  if (event_done(st, e)) return;  // also a never-recorded event, as in CUDA
  const uint64_t id = e->stream_id, seq = e->seq;
  auto wait = [id, seq] {
    Streams& st2 = streams();
    if (StreamImpl* producer = find(st2, id)) run_until(st2, producer, seq);
  };
  if (!s) return wait();
  detail::submit(s, wait);
}

void set_current_stream(Stream s) {
  if (s) {
    Streams& st = streams();
    std::lock_guard<std::recursive_mutex> lk(st.mu);
    checked(st, s, "emu::set_current_stream");
  }
  t_current = s;
}
Stream current_stream() { return t_current; }

size_t pending_operations() { return streams().pending.load(); }

void memcpy_async(void* dst, const void* src, size_t bytes, CopyKind kind, Stream s) {
  if (bytes == 0) return;
  if (!s) return memcpy(dst, src, bytes, kind);
  bool dst_dev = false, src_dev = false;
  detail::check_copy(dst, src, bytes, kind, &dst_dev, &src_dev);
  const bool dst_pageable = !dst_dev && !is_pinned_pointer(dst);
  const bool src_pageable = !src_dev && !is_pinned_pointer(src);
  if (dst_pageable) {  // CUDA returns once the copy into pageable memory is done
    detail::run_stream(s);
    std::memmove(dst, src, bytes);
    return;
  }
  if (src_pageable) {  // CUDA syncs the stream and stages the source before returning
    detail::run_stream(s);
    auto staged = std::make_shared<std::vector<char>>(static_cast<const char*>(src),
                                                      static_cast<const char*>(src) + bytes);
    detail::submit(s, [dst, staged] { std::memcpy(dst, staged->data(), staged->size()); });
    return;
  }
  detail::submit(s, [dst, src, bytes] { std::memmove(dst, src, bytes); });
}

Event event_create() {
  Streams& st = streams();
  std::lock_guard<std::recursive_mutex> lk(st.mu);
  Event e = new EventImpl;
  st.events.insert(e);
  return e;
}

void event_destroy(Event e) {
  if (!e) return;
  Streams& st = streams();
  std::lock_guard<std::recursive_mutex> lk(st.mu);
  checked_event(st, e, "emu::event_destroy");
  st.events.erase(e);
  delete e;
}

void event_record(Event e, Stream s) {
  Streams& st = streams();
  std::lock_guard<std::recursive_mutex> lk(st.mu);
  checked_event(st, e, "emu::event_record");
  auto stamp = std::make_shared<EventImpl::Stamp>();
  e->stamp = stamp;
  auto mark = [stamp] { stamp->time = Clock::now(); };
  if (!s) {
    detail::run_all_pending();
    mark();
    e->stream_id = 0, e->seq = 0;
    return;
  }
  detail::submit(s, mark);
  e->stream_id = s->id;
  e->seq = s->submitted;
}

void event_synchronize(Event e) {
  Streams& st = streams();
  std::lock_guard<std::recursive_mutex> lk(st.mu);
  checked_event(st, e, "emu::event_synchronize");
  if (StreamImpl* s = find(st, e->stream_id)) run_until(st, s, e->seq);
}

bool event_completed(Event e) {
  Streams& st = streams();
  std::lock_guard<std::recursive_mutex> lk(st.mu);
  checked_event(st, e, "emu::event_completed");
  return event_done(st, e);
}

bool event_query(Event e) {
  Streams& st = streams();
  std::lock_guard<std::recursive_mutex> lk(st.mu);
  checked_event(st, e, "emu::event_query");
  if (event_done(st, e)) return true;
  run_one(st, find(st, e->stream_id));
  return event_done(st, e);
}

float event_elapsed_ms(Event start, Event end) {
  Streams& st = streams();
  std::lock_guard<std::recursive_mutex> lk(st.mu);
  checked_event(st, start, "emu::event_elapsed_ms");
  checked_event(st, end, "emu::event_elapsed_ms");
  for (const EventImpl* e : {start, end}) {
    IRIS_CHECK(e->stamp, "emu::event_elapsed_ms: an event was never recorded");
    IRIS_CHECK(event_done(st, e) && e->stamp->time,
               "emu::event_elapsed_ms: an event has not completed (synchronize it first)");
  }
  return std::chrono::duration<float, std::milli>(*end->stamp->time - *start->stamp->time).count();
}

}  // namespace iris::emu
