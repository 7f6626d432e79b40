// Reads a whole file into memory; a missing or unreadable file throws with
// its path.
#pragma once

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "nmhash/core/error.hpp"

namespace nmhash::io {

inline std::vector<unsigned char> read_file(const std::string& path) {
  check_path(path);
  std::ifstream in(path, std::ios::binary);
  require(in.good(), path, ": cannot open file");
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  require(!in.bad(), path, ": read error");
  return bytes;
}

}  // namespace nmhash::io
