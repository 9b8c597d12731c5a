#pragma once
// Shared memory under emulation. IRIS_SHARED binds a kernel-scope declaration
// to this block's arena (one offset per declaration, the same storage for every
// thread of the block) and gives a checked view: indexing is bounds-checked per
// dimension, and every element read or write goes through the race detector.
// Pointers (`&tile[r][c]`, dynamic shared memory) are SharedPtr, checked when
// dereferenced; they convert to raw pointers for code that needs one (raw
// accesses are unchecked, except by the guard bytes verified at each barrier).
#include <compare>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace iris::emu {

namespace detail {

// One IRIS_SHARED declaration (a static in the kernel: its address is the key).
struct SharedDecl {
  const char* name;
  const char* file;
  unsigned line;
  size_t bytes;
  size_t align;
  size_t elem_size;
  unsigned rank;
  size_t extents[4];
};

// That declaration's storage in the current block.
struct SharedVar {
  const SharedDecl* decl;  // null for dynamic shared memory
  const char* name;
  const char* file;
  unsigned line;
  size_t elem_size;
  unsigned char* begin;
  unsigned char* end;
};

template <class A>
constexpr SharedDecl make_shared_decl(const char* name, const char* file, unsigned line) {
  SharedDecl d{name,
               file,
               line,
               sizeof(A),
               alignof(A),
               sizeof(std::remove_all_extents_t<A>),
               static_cast<unsigned>(std::rank_v<A>),
               {0, 0, 0, 0}};
  static_assert(std::rank_v<A> <= 4, "IRIS_SHARED: at most 4 dimensions");
  if constexpr (std::rank_v < A >> 0) d.extents[0] = std::extent_v<A, 0>;
  if constexpr (std::rank_v < A >> 1) d.extents[1] = std::extent_v<A, 1>;
  if constexpr (std::rank_v < A >> 2) d.extents[2] = std::extent_v<A, 2>;
  if constexpr (std::rank_v < A >> 3) d.extents[3] = std::extent_v<A, 3>;
  return d;
}

const SharedVar* shared_bind(const SharedDecl& decl);
const SharedVar* dynamic_shared(const char* name, size_t align);
// Race detector hooks for an element access by the calling thread.
void shared_load(const void* p, size_t bytes, const SharedVar* var);
void shared_store(const void* p, size_t bytes, const SharedVar* var);
void shared_atomic(const void* p, size_t bytes, const SharedVar* var);
// Out-of-bounds or misaligned pointer dereference -> iris::Error naming the variable.
void shared_check_pointer(const void* p, size_t bytes, size_t align, const SharedVar* var);
[[noreturn]] void shared_index_error(const SharedVar* var, long long index, size_t extent);

template <class I>
void check_index(I i, size_t extent, const SharedVar* var) {
  if constexpr (std::is_signed_v<I>) {
    if (i < 0) shared_index_error(var, static_cast<long long>(i), extent);
  }
  if (static_cast<unsigned long long>(i) >= extent)
    shared_index_error(var, static_cast<long long>(i), extent);
}

template <class T>
T* offset_pointer(T* p, long long elements) {
  return reinterpret_cast<T*>(reinterpret_cast<uintptr_t>(p) +
                              static_cast<uintptr_t>(elements * static_cast<long long>(sizeof(T))));
}

}  // namespace detail

template <class T>
class SharedPtr;

// A shared-memory element (T is not an array): reads and writes are tracked.
template <class T>
class SharedRef {
  using V = std::remove_const_t<T>;

 public:
  SharedRef(T* p, const detail::SharedVar* var) : p_(p), var_(var) {}
  SharedRef(const SharedRef&) = default;

  V load() const {
    detail::shared_load(p_, sizeof(T), var_);
    V v;
    std::memcpy(&v, p_, sizeof(T));
    return v;
  }
  void store(const V& v) const requires(!std::is_const_v<T>) {
    detail::shared_store(p_, sizeof(T), var_);
    std::memcpy(p_, &v, sizeof(T));
  }

  operator V() const { return load(); }
  // A class element (bf16, half) converts onward like the value would (`float f = tile[i]`).
  template <class U>
  requires(std::is_class_v<V> && !std::is_same_v<U, V> && std::is_convertible_v<V, U>) operator U()
      const {
    return static_cast<U>(load());
  }

  const SharedRef& operator=(const V& v) const requires(!std::is_const_v<T>) {
    store(v);
    return *this;
  }
  SharedRef& operator=(const SharedRef& other) requires(!std::is_const_v<T>) {
    store(other.load());
    return *this;
  }

#define IRIS_EMU_SHARED_COMPOUND(op)                                               \
  template <class U>                                                               \
  const SharedRef& operator op(const U& rhs) const requires(!std::is_const_v<T>) { \
    V cur = load();                                                                \
    cur op rhs;                                                                    \
    store(cur);                                                                    \
    return *this;                                                                  \
  }
  IRIS_EMU_SHARED_COMPOUND(+=)
  IRIS_EMU_SHARED_COMPOUND(-=)
  IRIS_EMU_SHARED_COMPOUND(*=)
  IRIS_EMU_SHARED_COMPOUND(/=)
  IRIS_EMU_SHARED_COMPOUND(%=)
  IRIS_EMU_SHARED_COMPOUND(&=)
  IRIS_EMU_SHARED_COMPOUND(|=)
  IRIS_EMU_SHARED_COMPOUND(^=)
  IRIS_EMU_SHARED_COMPOUND(<<=)
  IRIS_EMU_SHARED_COMPOUND(>>=)
#undef IRIS_EMU_SHARED_COMPOUND

  const SharedRef& operator++() const {
    V cur = load();
    ++cur;
    store(cur);
    return *this;
  }
  const SharedRef& operator--() const {
    V cur = load();
    --cur;
    store(cur);
    return *this;
  }
  V operator++(int) const {
    V cur = load();
    V next = cur;
    ++next;
    store(next);
    return cur;
  }
  V operator--(int) const {
    V cur = load();
    V next = cur;
    --next;
    store(next);
    return cur;
  }

  SharedPtr<T> operator&() const { return SharedPtr<T>(p_, var_); }

 private:
  T* p_;
  const detail::SharedVar* var_;
};

// A shared array (or a row of one): indexing checks the bound of this dimension.
template <class T, size_t N>
class SharedRef<T[N]> {
 public:
  SharedRef(T (*p)[N], const detail::SharedVar* var) : p_(p), var_(var) {}

  template <std::integral I>
  SharedRef<T> operator[](I i) const {
    detail::check_index(i, N, var_);
    return SharedRef<T>(&(*p_)[i], var_);
  }
  // Array-to-pointer decay: checked (SharedPtr) or raw.
  template <class U>
  requires(std::is_same_v<U, T> || std::is_same_v<U, const T>) operator SharedPtr<U>() const {
    return SharedPtr<U>(&(*p_)[0], var_);
  }
  operator T*() const { return &(*p_)[0]; }
  template <std::integral I>
  friend SharedPtr<T> operator+(const SharedRef& a, I i) {
    return SharedPtr<T>(&(*a.p_)[0], a.var_) + i;
  }
  SharedPtr<T[N]> operator&() const { return SharedPtr<T[N]>(p_, var_); }

 private:
  T (*p_)[N];
  const detail::SharedVar* var_;
};

// A pointer into shared memory that checks bounds and alignment when dereferenced.
template <class T>
class SharedPtr {
 public:
  SharedPtr() = default;
  SharedPtr(T* p, const detail::SharedVar* var) : p_(p), var_(var) {}
  template <class U>
  requires(std::is_same_v<const U, T> && !std::is_same_v<U, T>) SharedPtr(const SharedPtr<U>& other)
      : p_(other.get()), var_(other.var()) {}

  T* get() const { return p_; }
  const detail::SharedVar* var() const { return var_; }
  operator T*() const { return p_; }  // unchecked from here on

  SharedRef<T> operator*() const {
    detail::shared_check_pointer(p_, sizeof(T), alignof(T), var_);
    return SharedRef<T>(p_, var_);
  }
  template <std::integral I>
  SharedRef<T> operator[](I i) const {
    return *(*this + i);
  }

  template <std::integral I>
  friend SharedPtr operator+(const SharedPtr& p, I i) {
    return SharedPtr(detail::offset_pointer(p.p_, static_cast<long long>(i)), p.var_);
  }
  template <std::integral I>
  friend SharedPtr operator+(I i, const SharedPtr& p) {
    return p + i;
  }
  template <std::integral I>
  friend SharedPtr operator-(const SharedPtr& p, I i) {
    return SharedPtr(detail::offset_pointer(p.p_, -static_cast<long long>(i)), p.var_);
  }
  friend std::ptrdiff_t operator-(const SharedPtr& a, const SharedPtr& b) { return a.p_ - b.p_; }
  template <std::integral I>
  SharedPtr& operator+=(I i) {
    return *this = *this + i;
  }
  template <std::integral I>
  SharedPtr& operator-=(I i) {
    return *this = *this - i;
  }
  SharedPtr& operator++() { return *this = *this + 1; }
  SharedPtr& operator--() { return *this = *this - 1; }
  SharedPtr operator++(int) {
    SharedPtr old = *this;
    ++*this;
    return old;
  }
  SharedPtr operator--(int) {
    SharedPtr old = *this;
    --*this;
    return old;
  }
  friend bool operator==(const SharedPtr& a, const SharedPtr& b) { return a.p_ == b.p_; }
  friend std::strong_ordering operator<=>(const SharedPtr& a, const SharedPtr& b) {
    return std::compare_three_way{}(a.p_, b.p_);
  }

 private:
  T* p_ = nullptr;
  const detail::SharedVar* var_ = nullptr;
};

namespace detail {
template <class A>
SharedRef<A> bind_shared(const SharedDecl& decl) {
  const SharedVar* var = shared_bind(decl);
  return SharedRef<A>(reinterpret_cast<A*>(var->begin), var);
}
template <class T>
SharedPtr<T> bind_dynamic_shared(const char* name) {
  const SharedVar* var = dynamic_shared(name, alignof(T));
  return SharedPtr<T>(reinterpret_cast<T*>(var->begin), var);
}
}  // namespace detail

}  // namespace iris::emu

namespace iris {
// Checked under emulation, plain `T*` with nvcc: the type for shared pointers in helpers.
template <class T>
using smem_ptr = emu::SharedPtr<T>;
// reinterpret_cast that keeps shared-memory checks (`ptr_cast<float4>(&tile[r][c])`).
template <class U, class T>
emu::SharedPtr<U> ptr_cast(const emu::SharedPtr<T>& p) {
  return emu::SharedPtr<U>(reinterpret_cast<U*>(p.get()), p.var());
}
template <class U, class T>
auto ptr_cast(T* p) {
  if constexpr (std::is_const_v<T>)
    return reinterpret_cast<const U*>(p);
  else
    return reinterpret_cast<U*>(p);
}
}  // namespace iris

#define IRIS_SHARED(T, name, ...)                                                      \
  static constexpr ::iris::emu::detail::SharedDecl iris_shared_decl_##name =           \
      ::iris::emu::detail::make_shared_decl<T __VA_ARGS__>(#name, __FILE__, __LINE__); \
  ::iris::emu::SharedRef<T __VA_ARGS__> name =                                         \
      ::iris::emu::detail::bind_shared<T __VA_ARGS__>(iris_shared_decl_##name)
#define IRIS_DYNAMIC_SHARED(T, name) \
  ::iris::emu::SharedPtr<T> name = ::iris::emu::detail::bind_dynamic_shared<T>(#name)
