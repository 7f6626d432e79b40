// Runs a shell command as a user runs a tool, capturing its exit status,
// standard output and standard error (through files in a temp_dir).
#pragma once

#include <cstdlib>
#include <string>
#include <sys/wait.h>

#include "temp_dir.hpp"

struct run_result {
  int status;
  std::string out, err;
};

inline run_result run(const temp_dir& tmp, const std::string& cmd) {
  const std::string o = tmp.file("stdout.txt"), e = tmp.file("stderr.txt");
  const int rc = std::system((cmd + " >" + o + " 2>" + e).c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, read_bytes(o), read_bytes(e)};
}
