// JSON input for the VM config (--config) and the suite's case files: read a
// bounded regular file, parse it without exceptions, and read typed fields
// with errors that name the file and the field.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/error.h"

namespace vmm::json {

using Json = nlohmann::json;

// The largest JSON file vmm reads: a config or a case file is a few hundred
// bytes; this stops `--config /dev/zero` or a huge file from filling memory.
inline constexpr uint64_t kMaxJsonFileBytes = 1ull << 20;

// Reads `path` whole. `what` names the role in messages ("config file").
// kNoInput (66) when it is missing or unreadable; kConfig (78) naming the
// file when it is not a regular file or is larger than kMaxJsonFileBytes.
[[nodiscard]] base::Result<std::string> ReadJsonFile(const std::string& path,
                                                     std::string_view what);

// Parses `text` (comments allowed). kConfig "ORIGIN: not valid JSON: DETAIL".
[[nodiscard]] base::Result<Json> Parse(std::string_view text, std::string_view origin);

// "ORIGIN: field 'FIELD': WHAT", kConfig.
[[nodiscard]] base::Error FieldError(std::string_view origin, std::string_view field,
                                     std::string_view what);

// Typed getters. On a type mismatch: FieldError naming the expected type and
// the JSON type found.
[[nodiscard]] base::Result<std::string> GetString(const Json& value, std::string_view origin,
                                                  std::string_view field);
// A string used as a file name: also refuses an empty string and one that
// holds a NUL (the kernel would see only the part before it).
[[nodiscard]] base::Result<std::string> GetPath(const Json& value, std::string_view origin,
                                                std::string_view field);
[[nodiscard]] base::Result<bool> GetBool(const Json& value, std::string_view origin,
                                         std::string_view field);
// Any JSON number, as a double.
[[nodiscard]] base::Result<double> GetNumber(const Json& value, std::string_view origin,
                                             std::string_view field);
// A non-negative integer no larger than `max`.
[[nodiscard]] base::Result<uint64_t> GetUnsigned(const Json& value, std::string_view origin,
                                                 std::string_view field, uint64_t max);

}  // namespace vmm::json
