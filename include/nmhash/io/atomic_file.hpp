// Atomic file replacement: data is written to a temporary file next to the
// target (`<target>.tmp.<pid>`), flushed to disk, and renamed over it, so
// readers see the old file or the complete new one, never a partial write.
//  - A failed write, flush or rename throws nmhash::error with the real
//    cause (e.g. "File too large (EFBIG)", "No space left on device
//    (ENOSPC)") and removes the temporary file.
//  - Temporary files of the same target left by killed processes (their pid
//    no longer runs) are removed when the target is next written.
//  - atomic_group commits several files that belong together (distances and
//    indices, codes and labels, a summary and its model): every old target
//    is removed before the first new one is renamed into place, so every
//    file a reader finds is from one commit: the whole old set, the whole
//    new set, or (after a crash mid-commit) part of one of them with the
//    rest absent, never a new file beside a stale partner.
//  - Only regular files are replaced: a target that exists as a directory,
//    a device (/dev/null), a FIFO, a socket or a symbolic link is refused
//    before anything is written.
//  - Two writers of one file in one process (two outputs of a run that
//    resolve to the same file, "X" and "./X") are refused: the second
//    throws, naming both spellings, and the first is untouched.
//  - directory_lock: a run that writes a directory of outputs holds it, so
//    a second run on the same directory is refused instead of mixing its
//    files with the first one's.
#pragma once

#include <cerrno>
#include <signal.h>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nmhash/core/error.hpp"
#include "nmhash/io/read_file.hpp"

namespace nmhash::io {

namespace detail {

// strerror(e) followed by the errno name for the causes a full or failing
// disk gives, e.g. "File too large (EFBIG)".
inline std::string errno_text(int e) {
  const char* name = e == EFBIG ? "EFBIG" : e == ENOSPC ? "ENOSPC" : e == EIO ? "EIO" : e == EDQUOT ? "EDQUOT"
                   : e == EROFS ? "EROFS" : e == EACCES ? "EACCES" : e == ENOENT ? "ENOENT" : nullptr;
  std::string s = std::strerror(e);
  if (name) s += std::string(" (") + name + ")";
  return s;
}

inline std::string dir_of(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

inline std::string base_of(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Removes `<target>.tmp.<pid>` files whose process no longer exists.
inline void remove_stale_temporaries(const std::string& target) {
  const std::string dir = dir_of(target), prefix = base_of(target) + ".tmp.";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return;
  std::vector<std::string> stale;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const auto pid = static_cast<pid_t>(std::stol(digits));
    if (pid > 0 && pid != ::getpid() && ::kill(pid, 0) != 0 && errno == ESRCH) stale.push_back(dir + "/" + name);
  }
  ::closedir(d);
  for (const auto& s : stale) ::unlink(s.c_str());
}

// Throws unless `path` may be written: absent, or a regular file.
inline void check_output_target(const std::string& path) {
  check_path(path);
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
    nmhash::detail::fail(path, ": exists and is ", file_kind(st.st_mode),
                         "; only regular files are replaced, so nothing was written");
}

// The file a path names, whether or not it exists: its directory resolved
// (symbolic links, "." and ".."), then its name.
inline std::string resolved_target(const std::string& path) {
  const std::string dir = dir_of(path);
  char buf[PATH_MAX];
  if (::realpath(dir.c_str(), buf) == nullptr) return path;  // the open reports it
  std::string r = buf;
  if (r != "/") r += "/";
  return r + base_of(path);
}

// The targets this process is writing now (resolved), with the spelling
// that claimed each.
class writers {
 public:
  static writers& instance() {
    static writers w;
    return w;
  }
  void claim(const std::string& resolved, const std::string& spelled) {
    std::lock_guard<std::mutex> lock(m_);
    const auto [it, fresh] = active_.emplace(resolved, spelled);
    if (!fresh)
      nmhash::detail::fail(spelled, ": is the file ", it->second,
                           " that this process is already writing (two outputs on one path?); nothing was written");
  }
  void release(const std::string& resolved) {
    std::lock_guard<std::mutex> lock(m_);
    active_.erase(resolved);
  }

 private:
  std::mutex m_;
  std::map<std::string, std::string> active_;
};

// Makes renames in `dir` durable; best effort (some file systems refuse).
inline void sync_directory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

}  // namespace detail

class atomic_file {
 public:
  explicit atomic_file(std::string path) : path_(std::move(path)) {
    detail::check_output_target(path_);
    resolved_ = detail::resolved_target(path_);
    detail::writers::instance().claim(resolved_, path_);
    claimed_ = true;
    detail::remove_stale_temporaries(path_);
    tmp_ = path_ + ".tmp." + std::to_string(::getpid());
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd_ < 0) {
      const int e = errno;
      release();
      nmhash::detail::fail(path_, ": cannot create temporary file ", tmp_, ": ", detail::errno_text(e));
    }
    buf_.reserve(buffer_size);
  }
  atomic_file(const atomic_file&) = delete;
  atomic_file& operator=(const atomic_file&) = delete;
  ~atomic_file() {
    discard();
    release();
  }

  const std::string& path() const { return path_; }

  void write(const void* data, std::size_t bytes) {
    require(fd_ >= 0 && !finished_, path_, ": write after the file was finished");
    const auto* p = static_cast<const char*>(data);
    if (buf_.size() + bytes <= buffer_size) {
      buf_.insert(buf_.end(), p, p + bytes);
      return;
    }
    flush_buffer();
    if (bytes < buffer_size) buf_.insert(buf_.end(), p, p + bytes);
    else write_all(p, bytes);
  }

  // Writes the data out, syncs it to disk and closes the temporary file;
  // the target is untouched until publish() (atomic_group uses the two
  // steps; commit() does both).
  void finish() {
    require(fd_ >= 0 && !finished_, path_, ": finish of a file already finished");
    flush_buffer();
    if (::fsync(fd_) != 0) fail_and_discard("flush to disk failed", errno);
    const int rc = ::close(fd_);
    fd_ = -1;
    if (rc != 0) fail_and_discard("close failed", errno);
    finished_ = true;
  }

  // Renames the finished temporary file over the target.
  void publish() {
    require(finished_, path_, ": publish before finish");
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
      const int e = errno;
      ::unlink(tmp_.c_str());
      finished_ = false;
      nmhash::detail::fail(path_, ": cannot rename temporary file into place: ", detail::errno_text(e));
    }
    finished_ = false;
    published_ = true;
  }

  // finish() then publish(), then the directory entry is synced.
  void commit() {
    finish();
    publish();
    detail::sync_directory(detail::dir_of(path_));
  }

 private:
  static constexpr std::size_t buffer_size = std::size_t{1} << 20;

  void release() noexcept {
    if (claimed_) detail::writers::instance().release(resolved_);
    claimed_ = false;
  }

  void discard() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    if (!published_) ::unlink(tmp_.c_str());
    finished_ = false;
  }

  [[noreturn]] void fail_and_discard(const char* what, int e) {
    discard();
    nmhash::detail::fail(path_, ": ", what, ": ", detail::errno_text(e));
  }

  void write_all(const char* p, std::size_t n) {
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) fail_and_discard("write failed", w < 0 ? errno : EIO);
      p += w;
      n -= static_cast<std::size_t>(w);
    }
  }

  void flush_buffer() {
    if (buf_.empty()) return;
    write_all(buf_.data(), buf_.size());
    buf_.clear();
  }

  std::string path_, tmp_, resolved_;
  int fd_ = -1;
  bool finished_ = false, published_ = false, claimed_ = false;
  std::vector<char> buf_;
};

// Writes `bytes` as the whole of `path`, atomically.
inline void write_file(const std::string& path, const std::string& bytes) {
  atomic_file f(path);
  f.write(bytes.data(), bytes.size());
  f.commit();
}

// Checks a program's outputs before it does its work: each may be written
// (absent, or a regular file) and no two resolve to one file. Throws naming
// the paths; atomic_file makes the same checks when the files are opened.
inline void check_outputs(const std::vector<std::string>& paths) {
  std::map<std::string, std::string> seen;
  for (const auto& p : paths) {
    detail::check_output_target(p);
    const auto [it, fresh] = seen.emplace(detail::resolved_target(p), p);
    if (!fresh) nmhash::detail::fail(p, " and ", it->second, ": two outputs resolve to one file; nothing was written");
  }
}

// Files that belong together, committed as a set (see the top of this
// file). Each add() starts one file; commit() publishes them all.
class atomic_group {
 public:
  atomic_file& add(const std::string& path) {
    files_.push_back(std::make_unique<atomic_file>(path));
    return *files_.back();
  }

  void commit() {
    for (auto& f : files_) f->finish();
    // No new file may appear beside a stale partner: the old set goes first.
    for (auto& f : files_)
      if (::unlink(f->path().c_str()) != 0 && errno != ENOENT)
        nmhash::detail::fail(f->path(), ": cannot remove the previous file: ", detail::errno_text(errno));
    for (auto& f : files_) f->publish();
    std::vector<std::string> dirs;
    for (auto& f : files_) {
      const std::string d = detail::dir_of(f->path());
      bool seen = false;
      for (const auto& x : dirs) seen = seen || x == d;
      if (!seen) dirs.push_back(d);
    }
    for (const auto& d : dirs) detail::sync_directory(d);
    files_.clear();
  }

 private:
  std::vector<std::unique_ptr<atomic_file>> files_;
};

// Holds a directory of outputs for one run: an exclusive flock on
// `<dir>/.nmhash.lock` (created, and holding the holder's pid), taken
// without waiting. A second holder, in this process or another, is
// refused naming the directory and the first holder's pid. The lock goes
// with the object, or with the process however it ends.
class directory_lock {
 public:
  explicit directory_lock(const std::string& dir) : path_(dir + "/.nmhash.lock") {
    check_path(path_);
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0666);
    if (fd_ < 0) {
      const int e = errno;
      nmhash::detail::fail(dir, ": cannot create the run lock ", path_, ": ", detail::errno_text(e));
    }
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int e = errno;
      char buf[32] = {0};
      const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
      ::close(fd_);
      fd_ = -1;
      if (e == EWOULDBLOCK) {
        const std::string holder = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("?");
        nmhash::detail::fail(dir, ": another run (pid ", holder.substr(0, holder.find('\n')),
                             ") is writing this directory; wait for it to end or choose another output directory");
      }
      nmhash::detail::fail(dir, ": cannot lock ", path_, ": ", detail::errno_text(e));
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) == 0) (void)!::pwrite(fd_, pid.data(), pid.size(), 0);
  }
  directory_lock(const directory_lock&) = delete;
  directory_lock& operator=(const directory_lock&) = delete;
  ~directory_lock() {
    if (fd_ >= 0) ::close(fd_);  // releases the flock
  }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace nmhash::io
