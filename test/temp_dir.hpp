// A scratch directory removed when the test ends.
#pragma once

#include <filesystem>
#include <fstream>
#include <random>
#include <string>

#include "fuzz/crafted.hpp"

struct temp_dir {
  std::filesystem::path path;
  temp_dir() {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() / ("nmhash-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path);
  }
  ~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return (path / name).string(); }
};

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// A raw version-1.0 .npy file with the given header dictionary and payload.
inline std::string npy_bytes(const std::string& dict, const std::string& payload) {
  return nmhash_fuzz::npy_image(dict, payload);
}
