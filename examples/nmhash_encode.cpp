// nmhash_encode: the codes of every image of an image list (DeepHash-
// pytorch's format: path, then 0/1 labels) under a trained model file
// (nmhash_train's or nmhash_reproduce's model.safetensors), as +-1 float32
// values or packed bytes (or, with --raw, the network's float outputs before
// the sign), and the list's labels as a 0/1 matrix.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "tool_common.hpp"
#include "nmhash/data/image_list.hpp"
#include "nmhash/hashing/encoder.hpp"
#include "nmhash/io/atomic_file.hpp"
#include "nmhash/io/codes_npy.hpp"
#include "nmhash/io/npy.hpp"

namespace {

int run_tool(int argc, char** argv) {
  CLI::App app{"nmhash_encode: hash codes of the images of a list with a trained model"};
  std::string model, list, root, out, labels_out;
  bool packed = false, raw = false;
  std::size_t batch = 64;
  app.add_option("--model", model, "model file (nmhash_train's OUT/model.safetensors)")->required();
  app.add_option("--list", list, "image list: one 'path 0 1 0 ...' line per image")->required();
  app.add_option("--root", root, "folder the list's image paths are relative to (default: the list's folder)");
  app.add_option("--out", out, "codes .npy: float32 +-1 (N, K), or packed uint8 with --packed")->required();
  app.add_option("--labels-out", labels_out, "the list's labels .npy: uint8 0/1 (N, C)");
  auto* packed_opt = app.add_flag("--packed", packed, "write packed bytes (FAISS's bit order, numpy.packbits(..., bitorder=\"little\"); ceil(K/8) per code)");
  app.add_flag("--raw", raw, "write the network's float32 outputs before the sign and the vote (N, B_in) instead of codes")
      ->excludes(packed_opt);
  nmhash_tool::add_max_image_pixels(app);
  app.add_option("--batch", batch, "images per forward pass, 1 to 4096")->check(nmhash_tool::integer_range(1, 4096));
  try {
    app.parse(argc, argv);
    nmhash_tool::check_numbers(app);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    // Outputs that cannot be written are refused before any image is read.
    nmhash::io::check_outputs(labels_out.empty() ? std::vector<std::string>{out} : std::vector<std::string>{out, labels_out});
    const auto t0 = std::chrono::steady_clock::now();
    nmhash::hashing::encoder<float> enc(model);
    const auto& d = enc.description();
    std::size_t classes = 0;
    auto entries = nmhash::data::read_image_list(list, classes);
    if (root.empty()) {
      root = std::filesystem::path(list).parent_path().string();
      if (root.empty()) root = ".";
    }
    auto source = std::make_shared<nmhash::data::image_list_source>(std::move(entries), root, d.arch.channels, classes);
    std::vector<std::size_t> ids(source->size());
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = i;
    nmhash::io::atomic_group outputs;
    std::size_t rows = 0, width = 0;
    if (raw) {
      const auto y = enc.outputs(source, ids, batch);
      nmhash::io::write_npy(outputs.add(out), y.data(), {ids.size(), d.b_in});
      rows = ids.size();
      width = d.b_in;
    } else {
      const nmhash::packed_codes codes = enc.encode(source, ids, batch);
      if (packed) {
        nmhash::io::write_codes_npy(outputs.add(out), codes);
      } else {
        std::vector<float> v(codes.size() * codes.bits());
        for (std::size_t i = 0; i < codes.size(); ++i)
          for (std::size_t k = 0; k < codes.bits(); ++k) v[i * codes.bits() + k] = codes.bit(i, k) ? 1.0f : -1.0f;
        nmhash::io::write_npy(outputs.add(out), v.data(), {codes.size(), codes.bits()});
      }
      rows = codes.size();
      width = codes.bits();
    }
    if (!labels_out.empty()) {
      std::vector<std::uint8_t> m;
      m.reserve(source->size() * classes);
      for (std::size_t i = 0; i < source->size(); ++i)
        m.insert(m.end(), source->entry(i).labels.begin(), source->entry(i).labels.end());
      nmhash::io::write_npy(outputs.add(labels_out), m.data(), {source->size(), classes});
    }
    outputs.commit();
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("encoded %zu images of %s with %s (%s, %s, %s %zu) in %.1f s: %s%s%s\n", rows, list.c_str(),
                model.c_str(), d.arch.name.c_str(), d.arch.input_str().c_str(), raw ? "outputs" : "K =", width, s,
                out.c_str(), labels_out.empty() ? "" : ", ", labels_out.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nmhash_encode: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  nmhash_tool::start(true);
  return nmhash_tool::finish("nmhash_encode", run_tool(argc, argv));
}
