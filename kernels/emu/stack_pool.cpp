#include "kernels/emu/stack_pool.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace iris::emu::detail {
namespace {

size_t page_size() {
  static const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return page;
}

void unmap(const boost::context::stack_context& sctx) {
  void* low = static_cast<char*>(sctx.sp) - sctx.size;
  ::munmap(low, sctx.size);
}

}  // namespace

StackPool::~StackPool() {
  for (const auto& s : free_) unmap(s);
}

boost::context::stack_context StackPool::take(size_t usable) {
  const size_t page = page_size();
  usable = (usable + page - 1) / page * page;
  if (usable != usable_) {
    for (const auto& s : free_) unmap(s);
    free_.clear();
    usable_ = usable;
  }
  if (!free_.empty()) {
    boost::context::stack_context s = free_.back();
    free_.pop_back();
    return s;
  }
  const size_t total = usable + page;
  void* low = ::mmap(nullptr, total, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
  IRIS_CHECK(low != MAP_FAILED, "emu: cannot map a ", total,
             "-byte fiber stack: ", std::strerror(errno));
  IRIS_CHECK(::mprotect(low, page, PROT_NONE) == 0,
             "emu: cannot protect a stack guard page: ", std::strerror(errno));
  boost::context::stack_context s;
  s.size = total;
  s.sp = static_cast<char*>(low) + total;
  return s;
}

void StackPool::give_back(boost::context::stack_context sctx) {
  if (sctx.size == usable_ + page_size()) {
    free_.push_back(sctx);
  } else {
    unmap(sctx);
  }
}

}  // namespace iris::emu::detail
