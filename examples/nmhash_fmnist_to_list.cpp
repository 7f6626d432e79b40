// nmhash_fmnist_to_list: writes the fmnist-dpsh split of Fashion-MNIST as an
// image-list data set (PNG files and DeepHash-pytorch lists: train.txt,
// database.txt, test.txt with one-hot label vectors), the worked example of
// docs/datasets.md and a template for preparing one's own images.
#include <png.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "tool_common.hpp"
#include "nmhash/data/fmnist_dpsh.hpp"
#include "nmhash/io/atomic_file.hpp"

namespace {

void write_png(const std::string& path, const std::uint8_t* px, std::size_t rows, std::size_t cols) {
  png_image im;
  std::memset(&im, 0, sizeof im);
  im.version = PNG_IMAGE_VERSION;
  im.width = static_cast<png_uint_32>(cols);
  im.height = static_cast<png_uint_32>(rows);
  im.format = PNG_FORMAT_GRAY;
  png_alloc_size_t size = 0;
  // Size first, then the bytes, so the file is written atomically.
  nmhash::require(png_image_write_to_memory(&im, nullptr, &size, 0, px, 0, nullptr) != 0, path, ": ", im.message);
  std::vector<unsigned char> buf(size);
  nmhash::require(png_image_write_to_memory(&im, buf.data(), &size, 0, px, 0, nullptr) != 0, path, ": ", im.message);
  nmhash::io::atomic_file f(path);
  f.write(buf.data(), size);
  f.commit();
}

int run_tool(int argc, char** argv) {
  CLI::App app{"nmhash_fmnist_to_list: the fmnist-dpsh split as PNG files and DeepHash-pytorch image lists"};
  std::string data = nmhash::data::default_fashion_mnist_dir, out;
  std::size_t train_limit = 0, query_limit = 0, db_limit = 0;
  app.add_option("--data", data, "Fashion-MNIST directory");
  app.add_option("--out", out, "output folder (images/ and the three lists)")->required();
  app.add_option("--train-limit", train_limit, "at most N training images, every ceil(5000 / N)-th (0: all 5,000)")
      ->check(nmhash_tool::integer_range(0, UINT32_MAX));
  app.add_option("--query-limit", query_limit, "at most N queries, every ceil(1000 / N)-th (0: all 1,000)")
      ->check(nmhash_tool::integer_range(0, UINT32_MAX));
  app.add_option("--db-limit", db_limit, "at most N database images, every ceil(69000 / N)-th (0: all 69,000)")
      ->check(nmhash_tool::integer_range(0, UINT32_MAX));
  try {
    app.parse(argc, argv);
    nmhash_tool::check_numbers(app);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    const auto pool = nmhash::data::load_fashion_mnist_pool(data);
    const auto split = nmhash::data::make_fmnist_dpsh_splits(pool.labels);
    std::filesystem::create_directories(out + "/images");
    const std::size_t px = pool.rows * pool.cols;
    std::vector<char> written(pool.size(), 0);
    nmhash::io::atomic_group lists;
    std::size_t images = 0;
    for (const auto& [name, ids, limit] :
         {std::make_tuple("train.txt", &split.train, train_limit), std::make_tuple("database.txt", &split.database, db_limit),
          std::make_tuple("test.txt", &split.query, query_limit)}) {
      std::string text;
      for (const std::size_t i : nmhash::data::subsample(*ids, limit)) {
        const std::string rel = "images/" + std::to_string(i) + ".png";
        if (!written[i]) {
          write_png(out + "/" + rel, pool.pixels.data() + i * px, pool.rows, pool.cols);
          written[i] = 1;
          ++images;
        }
        text += rel;
        for (int c = 0; c < 10; ++c) text += c == pool.labels[i] ? " 1" : " 0";
        text += '\n';
      }
      lists.add(out + "/" + name).write(text.data(), text.size());
    }
    lists.commit();
    std::printf("wrote %zu PNG images and train.txt, database.txt, test.txt to %s\n", images, out.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nmhash_fmnist_to_list: error: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  nmhash_tool::start(false);
  return nmhash_tool::finish("nmhash_fmnist_to_list", run_tool(argc, argv));
}
