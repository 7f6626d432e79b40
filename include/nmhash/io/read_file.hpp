// Reading input files: only regular files are read (a directory, a FIFO, a
// device such as /dev/zero or a socket is refused by name before anything
// is read), and a whole-file read allocates what the file's size says,
// nothing more; a missing or unreadable file throws with its path.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nmhash/core/error.hpp"

namespace nmhash::io {

namespace detail {

// What a file of this mode is, for messages: "a directory", "a FIFO", ...
inline const char* file_kind(mode_t mode) {
  if (S_ISREG(mode)) return "a regular file";
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

}  // namespace detail

// Opens `path` for reading (O_RDONLY | O_CLOEXEC) and returns the
// descriptor after checking that it is a regular file; `st` receives its
// status. Throws naming the path otherwise (the descriptor is closed).
inline int open_regular_input(const std::string& path, struct stat& st) {
  check_path(path);
  // O_NONBLOCK: opening a FIFO must not wait for a writer before it is refused.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    const int e = errno;
    nmhash::detail::fail(path, ": cannot open file: ", std::strerror(e));
  }
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    nmhash::detail::fail(path, ": cannot stat: ", std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    nmhash::detail::fail(path, ": is ", detail::file_kind(st.st_mode), ", not a regular file; refusing to read it");
  }
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return fd;
}

// Throws unless `path` names a regular file (for readers that open it
// their own way).
inline void require_regular_input(const std::string& path) {
  struct stat st {};
  ::close(open_regular_input(path, st));
}

inline std::vector<unsigned char> read_file(const std::string& path) {
  struct stat st {};
  const int fd = open_regular_input(path, st);
  std::vector<unsigned char> bytes;
  try {
    bytes.resize(static_cast<std::size_t>(st.st_size));
  } catch (const std::exception&) {
    ::close(fd);
    nmhash::detail::fail(path, ": cannot allocate ", static_cast<unsigned long long>(st.st_size),
                         " bytes to read the file");
  }
  std::size_t got = 0;
  while (got < bytes.size()) {
    const ssize_t r = ::read(fd, bytes.data() + got, bytes.size() - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      const int e = errno;
      ::close(fd);
      nmhash::detail::fail(path, ": read error: ", std::strerror(e));
    }
    if (r == 0) break;  // shorter than its size said (it shrank): what was there
    got += static_cast<std::size_t>(r);
  }
  ::close(fd);
  bytes.resize(got);
  return bytes;
}

}  // namespace nmhash::io
