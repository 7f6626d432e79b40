// Runs a libFuzzer harness's LLVMFuzzerTestOneInput over every file of the
// directories (or single files) named on the command line, without
// libFuzzer: the test suite replays the seed corpora and regression inputs
// through the same harnesses and invariants. Fails when a path holds no
// input at all.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

int replay(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::cerr << file.string() << ": cannot open\n";
    return 1;
  }
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // A heap block of exactly the input's size, as libFuzzer passes it, so a
  // read past the end is caught by the sanitizers and valgrind.
  const std::unique_ptr<std::uint8_t[]> exact(new std::uint8_t[bytes.size()]);
  std::copy(bytes.begin(), bytes.end(), exact.get());
  LLVMFuzzerTestOneInput(exact.get(), bytes.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " DIR_OR_FILE...\n";
    return 2;
  }
  int failures = 0;
  for (int i = 1; i < argc; ++i) {
    const std::filesystem::path root(argv[i]);
    std::vector<std::filesystem::path> files;
    if (std::filesystem::is_directory(root)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(root))
        if (e.is_regular_file()) files.push_back(e.path());
    } else if (std::filesystem::is_regular_file(root)) {
      files.push_back(root);
    }
    std::sort(files.begin(), files.end());
    if (files.empty()) {
      std::cerr << root.string() << ": no inputs to replay\n";
      ++failures;
      continue;
    }
    for (const auto& f : files) failures += replay(f);
    std::cout << "replayed " << files.size() << " inputs from " << root.string() << "\n";
  }
  return failures == 0 ? 0 : 1;
}
