// Atomic file replacement: data is written to a temporary file next to the
// target, flushed, and renamed over it, so readers see the old file or the
// complete new one, never a partial write.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include "nmhash/core/error.hpp"

namespace nmhash::io {

class atomic_file {
 public:
  explicit atomic_file(std::string path) : path_(std::move(path)) {
    tmp_ = path_ + ".tmp." + std::to_string(::getpid());
    f_ = std::fopen(tmp_.c_str(), "wb");
    require(f_ != nullptr, path_, ": cannot create temporary file ", tmp_, ": ",
            std::strerror(errno));
  }
  atomic_file(const atomic_file&) = delete;
  atomic_file& operator=(const atomic_file&) = delete;
  ~atomic_file() {
    if (f_) {
      std::fclose(f_);
      std::remove(tmp_.c_str());
    }
  }

  void write(const void* data, std::size_t bytes) {
    if (bytes == 0) return;
    require(std::fwrite(data, 1, bytes, f_) == bytes, path_, ": write failed: ",
            std::strerror(errno));
  }

  // Flushes to disk and renames the temporary file over the target.
  void commit() {
    require(std::fflush(f_) == 0 && ::fsync(fileno(f_)) == 0, path_,
            ": flush failed: ", std::strerror(errno));
    const int rc = std::fclose(f_);
    f_ = nullptr;
    if (rc != 0) {
      std::remove(tmp_.c_str());
      nmhash::detail::fail(path_, ": close failed: ", std::strerror(errno));
    }
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
      const int e = errno;
      std::remove(tmp_.c_str());
      nmhash::detail::fail(path_, ": cannot rename temporary file into place: ", std::strerror(e));
    }
  }

 private:
  std::string path_;
  std::string tmp_;
  std::FILE* f_ = nullptr;
};

}  // namespace nmhash::io
