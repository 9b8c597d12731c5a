#include "nn/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "nn/json_lite.h"

namespace iris {
namespace {

constexpr uint64_t kMaxHeader = 100u << 20;  // the format's own limit (100 MB)

struct Mapping {
  void* base = nullptr;
  size_t size = 0;
  ~Mapping() {
    if (base && size) munmap(base, size);
  }
};

std::string sys_error() { return std::strerror(errno); }

}  // namespace

const char* safetensors_dtype_name(DType dt) {
  switch (dt) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::bf16: return "BF16";
    case DType::f16: return "F16";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
    case DType::u8: return "U8";
    case DType::b8: return "BOOL";
  }
  return "?";
}

DType parse_safetensors_dtype(const std::string& s, const std::string& context) {
  for (DType dt : {DType::f32, DType::f64, DType::bf16, DType::f16, DType::i32, DType::i64,
                   DType::u8, DType::b8})
    if (s == safetensors_dtype_name(dt)) return dt;
  IRIS_FAIL(context, ": unsupported dtype '", s, "'");
}

const Tensor& Safetensors::at(const std::string& name) const {
  auto it = tensors.find(name);
  IRIS_CHECK(it != tensors.end(), path, ": no tensor named '", name, "'");
  return it->second;
}

Safetensors load_safetensors(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  IRIS_CHECK(fd >= 0, path, ": cannot open: ", sys_error());
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const std::string err = sys_error();
    ::close(fd);
    IRIS_FAIL(path, ": cannot stat: ", err);
  }
  auto map = std::make_shared<Mapping>();
  map->size = static_cast<size_t>(st.st_size);
  if (map->size > 0) {
    void* p = ::mmap(nullptr, map->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const std::string err = sys_error();
      ::close(fd);
      IRIS_FAIL(path, ": cannot map: ", err);
    }
    map->base = p;
  }
  ::close(fd);

  IRIS_CHECK(map->size >= 8, path, ": truncated (", map->size,
             " bytes; a safetensors file starts with an 8-byte header length)");
  const auto* bytes = static_cast<const uint8_t*>(map->base);
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; --i) hlen = (hlen << 8) | bytes[i];
  IRIS_CHECK(hlen <= kMaxHeader && hlen <= map->size - 8, path, ": header length ", hlen,
             " exceeds the file (", map->size, " bytes): truncated or not a safetensors file");
  const std::string header(reinterpret_cast<const char*>(bytes + 8), hlen);
  const json::Value root = json::parse(header, path + " header");
  IRIS_CHECK(root.kind == json::Value::Kind::object, path, ": header is not a JSON object");
  const size_t data_start = 8 + hlen;
  const size_t data_size = map->size - data_start;

  Safetensors out;
  out.path = path;
  std::vector<SafetensorsEntry> entries;
  for (const auto& [name, v] : root.obj) {
    if (name == "__metadata__") {
      IRIS_CHECK(v.kind == json::Value::Kind::object, path, ": __metadata__ is not an object");
      for (const auto& [k, mv] : v.obj) {
        IRIS_CHECK(mv.kind == json::Value::Kind::string, path, ": metadata '", k,
                   "' is not a string");
        out.metadata[k] = mv.str;
      }
      continue;
    }
    const std::string ctx = path + ": tensor '" + name + "'";
    IRIS_CHECK(v.kind == json::Value::Kind::object, ctx, ": entry is not an object");
    const json::Value* dt = v.find("dtype");
    const json::Value* shape = v.find("shape");
    const json::Value* offs = v.find("data_offsets");
    IRIS_CHECK(dt && dt->kind == json::Value::Kind::string, ctx, ": missing dtype");
    IRIS_CHECK(shape && shape->kind == json::Value::Kind::array, ctx, ": missing shape");
    IRIS_CHECK(offs && offs->kind == json::Value::Kind::array && offs->arr.size() == 2, ctx,
               ": missing data_offsets");
    SafetensorsEntry e;
    e.name = name;
    e.dtype = parse_safetensors_dtype(dt->str, ctx);
    for (const json::Value& d : shape->arr) {
      IRIS_CHECK(d.kind == json::Value::Kind::number && d.is_integer && d.integer >= 0, ctx,
                 ": bad shape entry");
      e.shape.push_back(d.integer);
    }
    for (int k = 0; k < 2; ++k)
      IRIS_CHECK(offs->arr[k].kind == json::Value::Kind::number && offs->arr[k].is_integer &&
                     offs->arr[k].integer >= 0,
                 ctx, ": bad data_offsets");
    e.begin = static_cast<size_t>(offs->arr[0].integer);
    e.end = static_cast<size_t>(offs->arr[1].integer);
    IRIS_CHECK(e.begin <= e.end && e.end <= data_size, ctx, ": bytes [", e.begin, ", ", e.end,
               ") outside the data section of ", data_size,
               " bytes (truncated or corrupt file)");
    const size_t want = static_cast<size_t>(numel_of(e.shape)) * itemsize(e.dtype);
    IRIS_CHECK(e.end - e.begin == want, ctx, ": ", e.end - e.begin, " bytes for ",
               dtype_name(e.dtype), shape_str(e.shape), " (", want, " expected)");
    out.names.push_back(name);
    entries.push_back(std::move(e));
  }
  for (const SafetensorsEntry& e : entries) {
    void* p = const_cast<uint8_t*>(bytes + data_start + e.begin);
    auto storage = std::make_shared<Storage>(p, e.end - e.begin, Device::cpu(), [map] {});
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = std::move(storage);
    impl->shape = e.shape;
    impl->strides = contiguous_strides(e.shape);
    impl->dtype = e.dtype;
    Tensor t(std::move(impl));
    // Unaligned data (legal in the format) is copied so kernels may assume alignment.
    if (reinterpret_cast<uintptr_t>(p) % itemsize(e.dtype) != 0) {
      Tensor c = Tensor::empty(e.shape, e.dtype);
      std::memcpy(c.raw_data(), p, e.end - e.begin);
      t = c;
    }
    out.tensors.emplace(e.name, std::move(t));
  }
  return out;
}

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::vector<Tensor> host;
  std::string header = "{";
  bool first = true;
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool f = true;
    for (const auto& [k, v] : metadata) {
      if (!f) header += ',';
      header += json::quote(k);
      header += ':';
      header += json::quote(v);
      f = false;
    }
    header += "}";
    first = false;
  }
  size_t offset = 0;
  std::map<std::string, bool> seen;
  for (const auto& [name, t] : tensors) {
    IRIS_CHECK(t.defined(), path, ": tensor '", name, "' is undefined");
    IRIS_CHECK(!seen[name], path, ": tensor name '", name, "' appears twice");
    IRIS_CHECK(name != "__metadata__", path, ": '__metadata__' is reserved");
    seen[name] = true;
    Tensor h = t.detach();
    if (!h.device().is_cpu()) h = h.to(Device::cpu());
    h = h.contiguous();
    const size_t n = static_cast<size_t>(h.numel()) * itemsize(h.dtype());
    // Appended piece by piece: g++ 12 misreports -Wrestrict on chained string '+'.
    if (!first) header += ',';
    header += json::quote(name);
    header += ":{\"dtype\":\"";
    header += safetensors_dtype_name(h.dtype());
    header += "\",\"shape\":[";
    for (int64_t d = 0; d < h.dim(); ++d) {
      if (d) header += ',';
      header += std::to_string(h.size(d));
    }
    header += "],\"data_offsets\":[";
    header += std::to_string(offset);
    header += ',';
    header += std::to_string(offset + n);
    header += "]}";
    first = false;
    offset += n;
    host.push_back(h);
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');  // data section 8-byte aligned

  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  IRIS_CHECK(fd >= 0, path, ": cannot create ", tmp, ": ", sys_error());
  auto write_all = [&](const void* data, size_t n) {
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
      const ssize_t w = ::write(fd, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        const std::string err = sys_error();
        ::close(fd);
        ::unlink(tmp.c_str());
        IRIS_FAIL(path, ": write failed: ", err, " (the previous file, if any, is intact)");
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
  };
  uint8_t len[8];
  uint64_t hl = header.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>(hl >> (8 * i));
  write_all(len, 8);
  write_all(header.data(), header.size());
  for (const Tensor& h : host) write_all(h.raw_data(), h.numel() * itemsize(h.dtype()));
  if (::fsync(fd) != 0) {
    const std::string err = sys_error();
    ::close(fd);
    ::unlink(tmp.c_str());
    IRIS_FAIL(path, ": fsync failed: ", err);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string err = sys_error();
    ::unlink(tmp.c_str());
    IRIS_FAIL(path, ": rename from ", tmp, " failed: ", err);
  }
}

}  // namespace iris
