// nmhash_index: builds a binary index file from codes (and optional ids),
// converts between nmhash's and FAISS's index files, and prints a file's
// header.
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "tool_common.hpp"
#include "nmhash/index/index_io.hpp"
#include "nmhash/io/codes_npy.hpp"
#include "nmhash/io/npy.hpp"

namespace {

void save_as(const nmhash::binary_index& idx, const std::string& path, const std::string& format) {
  if (format == "faiss")
    nmhash::io::write_faiss_index(idx, path);
  else
    nmhash::io::save_index(idx, path);
}

void print_info(const std::string& path) {
  const auto info = nmhash::io::read_index_info(path);
  std::printf("%s: %s", path.c_str(), info.type.c_str());
  if (info.format == nmhash::io::index_format::nmhash) std::printf(" index, format version %u", info.version);
  std::printf("\n  codes: %zu of K = %zu bits (%zu bytes each)\n  ids: %s\n  file: %zu bytes\n", info.count,
              info.bits, info.code_size, info.has_ids ? "stored with the codes" : "positions 0 .. n-1",
              info.file_size);
}

int run_tool(int argc, char** argv) {
  CLI::App app{"nmhash_index: binary index files (nmhash's format and FAISS's IndexBinaryFlat / IndexBinaryIDMap)"};
  app.require_subcommand(1);
  std::string codes, ids, out, in, order, format = "nmhash";
  std::size_t bits = 0;
  auto* build = app.add_subcommand("build", "build an index file from codes and optional ids");
  build->add_option("--codes", codes, "codes .npy (float, int8 +-1 or packed uint8)")->required();
  build->add_option("--ids", ids, "ids .npy: one integer per code (absent: codes are numbered 0 .. n-1)");
  build->add_option("--bits", bits, "code length K of packed uint8 codes (0 or absent: 8 x columns)")
      ->check(nmhash_tool::integer_range(0, 65536));
  nmhash_tool::add_bit_order(*build, order);
  build->add_option("--out", out, "index file to write (atomically)")->required();
  build->add_option("--format", format, "nmhash (default) or faiss (faiss.read_index_binary reads it)")
      ->check(CLI::IsMember({"nmhash", "faiss"}));
  auto* convert = app.add_subcommand("convert", "rewrite an nmhash or FAISS index file in the other format");
  convert->add_option("--in", in, "nmhash or FAISS index file")->required();
  convert->add_option("--out", out, "index file to write (atomically)")->required();
  convert->add_option("--format", format, "format of --out: nmhash or faiss")
      ->required()
      ->check(CLI::IsMember({"nmhash", "faiss"}));
  auto* info = app.add_subcommand("info", "print the header of an nmhash or FAISS index file");
  info->add_option("file", in, "index file")->required();
  try {
    app.parse(argc, argv);
    nmhash_tool::check_numbers(app);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (*build) {
      const auto bo = nmhash_tool::bit_order_of(order);
      const auto c = nmhash::io::load_codes_npy(codes, bits, bo);
      nmhash::binary_index idx(c.bits());
      if (ids.empty())
        idx.add(c);
      else
        idx.add_with_ids(c, nmhash::io::load_ids_npy(ids, c.size()));
      save_as(idx, out, format);
      print_info(out);
    } else if (*convert) {
      save_as(nmhash::io::open_index(in), out, format);
      print_info(out);
    } else {
      print_info(in);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nmhash_index: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  nmhash_tool::start(true);
  return nmhash_tool::finish("nmhash_index", run_tool(argc, argv));
}
