// A fault injector loaded with LD_PRELOAD into a tool under test. It counts
// the calls that change files (write to a descriptor other than 0-2, fsync,
// rename, unlink) and, when NMHASH_KILL_AT=N (N >= 1), kills the process
// with SIGKILL just before the N-th of them, as a power cut or `kill -9`
// would. With NMHASH_KILL_COUNT=FILE the number of such calls made is
// written to FILE at exit, so a test can aim at every one of them.
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

std::atomic<long> calls{0};

long kill_at() {
  static const long at = [] {
    const char* v = std::getenv("NMHASH_KILL_AT");
    return v ? std::atol(v) : 0L;
  }();
  return at;
}

void step() {
  const long n = ++calls;
  if (kill_at() > 0 && n == kill_at()) ::raise(SIGKILL);
}

template <class F>
F real(const char* name) {
  return reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
}

__attribute__((destructor)) void report() {
  const char* path = std::getenv("NMHASH_KILL_COUNT");
  if (!path) return;
  if (std::FILE* f = std::fopen(path, "w")) {
    std::fprintf(f, "%ld\n", calls.load());
    std::fclose(f);
  }
}

}  // namespace

extern "C" {

ssize_t write(int fd, const void* buf, size_t n) {
  static const auto next = real<ssize_t (*)(int, const void*, size_t)>("write");
  if (fd > 2) step();
  return next(fd, buf, n);
}

int fsync(int fd) {
  static const auto next = real<int (*)(int)>("fsync");
  step();
  return next(fd);
}

int rename(const char* from, const char* to) {
  static const auto next = real<int (*)(const char*, const char*)>("rename");
  step();
  return next(from, to);
}

int unlink(const char* path) {
  static const auto next = real<int (*)(const char*)>("unlink");
  step();
  return next(path);
}

}  // extern "C"
