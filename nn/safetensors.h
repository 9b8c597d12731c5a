#pragma once
// safetensors (https://huggingface.co/docs/safetensors): an 8-byte little-endian
// header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__":
// {str: str}}, then the raw bytes. Reads map the file (tensors alias the mapping
// and keep it alive); writes are atomic (temporary file, fsync, rename). Every
// malformed input is an iris::Error naming the file and, where known, the tensor.
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace iris {

struct SafetensorsEntry {
  std::string name;
  DType dtype;
  Shape shape;
  size_t begin = 0, end = 0;  // byte offsets within the data section
};

struct Safetensors {
  std::vector<std::string> names;  // file order
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
  const Tensor& at(const std::string& name) const;  // throws naming the file and the tensor
  bool has(const std::string& name) const { return tensors.count(name) > 0; }
  std::string path;
};

// CPU tensors viewing a private (copy-on-write) mapping of the file: writes never reach it.
Safetensors load_safetensors(const std::string& path);
// Tensors are written contiguous, in the given order, on the CPU (converted if needed).
void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// "F32" <-> DType::f32, etc.
const char* safetensors_dtype_name(DType dt);
DType parse_safetensors_dtype(const std::string& s, const std::string& context);

}  // namespace iris
