// The exception types of nmhash. Library code reports every failure by
// throwing; it never prints and never terminates the process.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace nmhash {

// Base of every exception nmhash throws: bad arguments, malformed files,
// inconsistent shapes. The message names what was wrong and where.
class error : public std::runtime_error {
 public:
  explicit error(const std::string& what) : std::runtime_error(what) {}
};

namespace detail {

template <class... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}

template <class... Args>
[[noreturn]] void fail(Args&&... args) {
  throw error(concat(std::forward<Args>(args)...));
}

}  // namespace detail

// Throws nmhash::error with the concatenated message when cond is false.
template <class... Args>
void require(bool cond, Args&&... args) {
  if (!cond) detail::fail(std::forward<Args>(args)...);
}

// Refuses a file path that the operating system would read differently: an
// empty one, or one holding a NUL character (open() would stop there and
// open the truncated name). Every function of nmhash that opens a path
// calls it first.
inline void check_path(const std::string& path) {
  require(!path.empty(), "a file path is empty");
  const auto nul = path.find('\0');
  require(nul == std::string::npos, "file path \"", path.substr(0, nul), "...\" holds a NUL character at byte ", nul,
          " (open() would stop there)");
}

}  // namespace nmhash
