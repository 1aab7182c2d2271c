#include "vmm/json_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "base/unique_fd.h"

namespace vmm::json {
namespace {

// nlohmann's DOM parser, with the syntax error kept as text instead of thrown.
class DomParser : public nlohmann::detail::json_sax_dom_parser<Json> {
 public:
  explicit DomParser(Json& root) : json_sax_dom_parser(root, /*allow_exceptions_=*/false) {}

  template <class Exception>
  bool parse_error(std::size_t position, const std::string& token, const Exception& error) {
    message_ = error.what();
    return json_sax_dom_parser::parse_error(position, token, error);
  }

  const std::string& message() const { return message_; }

 private:
  std::string message_;
};

}  // namespace

base::Result<std::string> ReadJsonFile(const std::string& path, std::string_view what) {
  base::UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) return base::MakeErrnoError(base::ErrorKind::kNoInput, "{} {}", what, path);
  struct stat st {};
  if (fstat(fd.get(), &st) != 0) {
    return base::MakeErrnoError(base::ErrorKind::kNoInput, "{} {}: fstat", what, path);
  }
  if (!S_ISREG(st.st_mode)) {
    return base::MakeError(base::ErrorKind::kConfig, "{} {}: not a regular file", what, path);
  }
  if (static_cast<uint64_t>(st.st_size) > kMaxJsonFileBytes) {
    return base::MakeError(base::ErrorKind::kConfig,
                           "{} {}: {} bytes is larger than the {} bytes allowed", what, path,
                           static_cast<uint64_t>(st.st_size), kMaxJsonFileBytes);
  }
  // One byte more than the cap, to notice a file that grew since fstat.
  std::string text(static_cast<size_t>(kMaxJsonFileBytes) + 1, '\0');
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = read(fd.get(), text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return base::MakeErrnoError(base::ErrorKind::kNoInput, "{} {}: read error", what, path);
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  if (done > kMaxJsonFileBytes) {
    return base::MakeError(base::ErrorKind::kConfig, "{} {}: larger than the {} bytes allowed",
                           what, path, kMaxJsonFileBytes);
  }
  text.resize(done);
  return text;
}

base::Result<Json> Parse(std::string_view text, std::string_view origin) {
  Json root;
  DomParser parser(root);
  const bool ok = Json::sax_parse(text, &parser, nlohmann::detail::input_format_t::json,
                                  /*strict=*/true, /*ignore_comments=*/true);
  if (!ok || root.is_discarded()) {
    return base::MakeError(base::ErrorKind::kConfig, "{}: not valid JSON: {}", origin,
                           parser.message());
  }
  return root;
}

base::Error FieldError(std::string_view origin, std::string_view field, std::string_view what) {
  return base::Error(base::ErrorKind::kConfig,
                     fmt::format("{}: field '{}': {}", origin, field, what));
}

base::Result<std::string> GetString(const Json& value, std::string_view origin,
                                    std::string_view field) {
  if (!value.is_string()) {
    return std::unexpected(
        FieldError(origin, field, fmt::format("must be a string, not {}", value.type_name())));
  }
  return value.get<std::string>();
}

base::Result<std::string> GetPath(const Json& value, std::string_view origin,
                                  std::string_view field) {
  if (!value.is_string()) {
    return std::unexpected(
        FieldError(origin, field, fmt::format("must be a path string, not {}", value.type_name())));
  }
  std::string path = value.get<std::string>();
  if (path.empty()) return std::unexpected(FieldError(origin, field, "the path is empty"));
  if (path.find('\0') != std::string::npos) {
    return std::unexpected(FieldError(origin, field, "the path holds a NUL character"));
  }
  return path;
}

base::Result<bool> GetBool(const Json& value, std::string_view origin, std::string_view field) {
  if (!value.is_boolean()) {
    return std::unexpected(
        FieldError(origin, field, fmt::format("must be true or false, not {}", value.type_name())));
  }
  return value.get<bool>();
}

base::Result<double> GetNumber(const Json& value, std::string_view origin, std::string_view field) {
  if (!value.is_number()) {
    return std::unexpected(
        FieldError(origin, field, fmt::format("must be a number, not {}", value.type_name())));
  }
  return value.get<double>();
}

base::Result<uint64_t> GetUnsigned(const Json& value, std::string_view origin,
                                   std::string_view field, uint64_t max) {
  if (!value.is_number_unsigned() || value.get<uint64_t>() > max) {
    return std::unexpected(FieldError(
        origin, field, fmt::format("must be an integer 0..{}, not {}", max, value.dump())));
  }
  return value.get<uint64_t>();
}

}  // namespace vmm::json
