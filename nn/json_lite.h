#pragma once
// A small JSON reader for file headers (safetensors, configs) so the runtime
// library needs no JSON dependency. Errors carry the byte position.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace iris::json {

struct Value {
  enum class Kind { null, boolean, number, string, array, object } kind = Kind::null;
  bool b = false;
  double num = 0;
  bool is_integer = false;
  int64_t integer = 0;
  std::string str;
  std::vector<Value> arr;
  std::vector<std::pair<std::string, Value>> obj;  // insertion order
  const Value* find(const std::string& key) const;
};

// Parses one JSON document; throws iris::Error("<context>: ... at byte N").
Value parse(const std::string& text, const std::string& context);
// Quotes and escapes s as a JSON string.
std::string quote(const std::string& s);

}  // namespace iris::json
