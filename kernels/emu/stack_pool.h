#pragma once
// Fiber stacks for emulated threads: mmap'd, a PROT_NONE guard page below each
// (an overflow faults instead of corrupting a neighbour), reused from block to
// block by the worker that owns the pool.
#include <boost/context/stack_context.hpp>
#include <cstddef>
#include <vector>

namespace iris::emu::detail {

class StackPool {
 public:
  StackPool() = default;
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;
  ~StackPool();

  // A stack with `usable` bytes above its guard page (rounded up to pages).
  boost::context::stack_context take(size_t usable);
  void give_back(boost::context::stack_context sctx);

 private:
  size_t usable_ = 0;  // the size of every pooled stack; a new size drops the pool
  std::vector<boost::context::stack_context> free_;
};

// boost.context StackAllocator over a pool (the pool outlives the fibers);
// also tells the owner where the stack is (AddressSanitizer needs the bounds).
class PooledStack {
 public:
  PooledStack(StackPool* pool, size_t usable, boost::context::stack_context* where)
      : pool_(pool), usable_(usable), where_(where) {}
  boost::context::stack_context allocate() { return *where_ = pool_->take(usable_); }
  void deallocate(boost::context::stack_context& sctx) { pool_->give_back(sctx); }

 private:
  StackPool* pool_;
  size_t usable_;
  boost::context::stack_context* where_;
};

}  // namespace iris::emu::detail
