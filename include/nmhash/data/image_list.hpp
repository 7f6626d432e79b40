// Image lists in DeepHash-pytorch's format (its data/cifar10, nuswide_21 and
// coco lists): a text file with one image per line, the image path then
// its 0/1 label vector, separated by white space:
//
//   images/0001.jpg 0 1 0 0 1
//
// A list data set is a folder holding train.txt (the training set),
// database.txt and test.txt (the queries); image paths are relative to an
// image root (the folder itself unless set). The number of classes is the
// length of the label vectors and must be the same on every line of every
// list. Lists where every image has exactly one label are single-label
// (class ids, relevant iff equal); otherwise multi-label (relevant iff the
// label sets meet).
//
// Every problem is reported with the list file and line: a missing image, a
// label vector of the wrong length, a label other than 0 or 1, an empty
// list, the same image twice in one list. A corrupt image is reported with
// its file and list line when it is decoded (verify() decodes all of them
// up front).
#pragma once

#include <sys/stat.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "nmhash/core/error.hpp"
#include "nmhash/core/parallel.hpp"
#include "nmhash/data/dataset.hpp"
#include "nmhash/data/image.hpp"
#include "nmhash/io/read_file.hpp"

namespace nmhash::data {

struct list_entry {
  std::string path;        // as written in the list
  std::string list;        // the list file
  std::size_t line = 0;    // 1-based
  std::vector<std::uint8_t> labels;
};

// Reads one list file. `classes` is the expected label count (0: take the
// first line's, and return it through `classes`).
inline std::vector<list_entry> read_image_list(const std::string& list, std::size_t& classes,
                                               const std::string& classes_from = "") {
  io::require_regular_input(list);
  std::ifstream in(list);
  require(in.good(), list, ": cannot open the image list");
  std::vector<list_entry> out;
  std::map<std::string, std::size_t> seen;
  std::string text;
  std::size_t line = 0;
  std::string first_line_of_classes = classes_from;
  while (std::getline(in, text)) {
    ++line;
    if (!text.empty() && text.back() == '\r') text.pop_back();
    std::istringstream fields(text);
    list_entry e;
    if (!(fields >> e.path)) continue;  // blank line
    e.list = list;
    e.line = line;
    std::string tok;
    while (fields >> tok) {
      require(tok == "0" || tok == "1", list, ":", line, ": label ", e.labels.size() + 1, " is '", tok,
              "', expected 0 or 1");
      e.labels.push_back(tok == "1" ? 1 : 0);
    }
    require(!e.labels.empty(), list, ":", line, ": '", e.path, "' has no label vector (expected the image path, then ",
            classes ? std::to_string(classes) + " " : "", "0/1 labels)");
    if (!classes) {
      classes = e.labels.size();
      first_line_of_classes = list + ":" + std::to_string(line);
    }
    require(e.labels.size() == classes, list, ":", line, ": ", e.labels.size(), " labels, expected ", classes,
            " as on ", first_line_of_classes);
    // The same image spelled twice ("images/1.png", "./images/1.png") is
    // one entry: paths are compared in their lexically normal form here,
    // and as files (device and inode) when the images are found.
    const auto [it, fresh] = seen.emplace(std::filesystem::path(e.path).lexically_normal().string(), line);
    require(fresh, list, ":", line, ": '", e.path, "' is already listed on line ", it->second);
    out.push_back(std::move(e));
  }
  require(!in.bad(), list, ": read error");
  require(!out.empty(), list, ": the list holds no image");
  return out;
}

// The images of one or more lists, decoded from files under `root`.
class image_list_source : public image_source {
 public:
  // `channels`: the channel count images are converted to (1 or 3).
  image_list_source(std::vector<list_entry> entries, std::string root, std::size_t channels, std::size_t classes)
      : entries_(std::move(entries)), root_(std::move(root)), channels_(channels), classes_(classes) {
    require(channels_ == 1 || channels_ == 3, "image_list_source: ", channels_, " channels (1 or 3)");
    bool single = true;
    // (list, device, inode) -> the entry that named the file first.
    std::map<std::tuple<std::string, dev_t, ino_t>, const list_entry*> files;
    for (const auto& e : entries_) {
      std::size_t ones = 0;
      for (auto v : e.labels) ones += v;
      single = single && ones == 1;
      struct stat st;
      const std::string file = file_of(e);
      require(::stat(file.c_str(), &st) == 0, e.list, ":", e.line, ": image '", e.path, "' not found (", file, ")");
      require(S_ISREG(st.st_mode), e.list, ":", e.line, ": image '", e.path, "' is not a regular file (", file, ")");
      require(st.st_size > 0, e.list, ":", e.line, ": image '", e.path, "' is empty (", file, ")");
      const auto [at, fresh] = files.emplace(std::make_tuple(e.list, st.st_dev, st.st_ino), &e);
      require(fresh, e.list, ":", e.line, ": image '", e.path, "' is the file listed on line ", at->second->line, " ('",
              at->second->path, "')");
    }
    if (single) {
      std::vector<std::int32_t> ids;
      for (const auto& e : entries_)
        for (std::size_t c = 0; c < classes_; ++c)
          if (e.labels[c]) ids.push_back(static_cast<std::int32_t>(c));
      labels_ = nmhash::labels::single(std::move(ids));
    } else {
      std::vector<std::uint8_t> m;
      m.reserve(entries_.size() * classes_);
      for (const auto& e : entries_) m.insert(m.end(), e.labels.begin(), e.labels.end());
      labels_ = nmhash::labels::multi_hot(m.data(), entries_.size(), classes_);
    }
  }

  std::size_t size() const override { return entries_.size(); }
  // Images of any size (measured_sizes() says which, after verify()).
  image_shape shape() const override { return image_shape{channels_, 0, 0}; }
  const nmhash::labels& labels() const override { return labels_; }
  std::size_t num_classes() const override { return classes_; }
  void decode(std::size_t i, image8& out) const override {
    const list_entry& e = entries_.at(i);
    const std::string file = file_of(e);
    try {
      load_image(file, out);
    } catch (const error& err) {
      nmhash::detail::fail(e.list, ":", e.line, ": ", err.what());
    }
  }
  std::string describe(std::size_t i) const override {
    const list_entry& e = entries_.at(i);
    return e.list + ":" + std::to_string(e.line) + " (" + file_of(e) + ")";
  }
  const list_entry& entry(std::size_t i) const { return entries_.at(i); }
  const std::string& root() const { return root_; }

  // Decodes every image once; the first failure throws with its list line.
  // The decoded sizes of every image (as the files hold them, before any
  // transform), measured by verify().
  struct image_sizes {
    bool measured = false;
    std::size_t min_height = 0, max_height = 0, min_width = 0, max_width = 0;
    std::string str() const {
      const auto one = [](std::size_t h, std::size_t w) { return std::to_string(h) + "x" + std::to_string(w); };
      if (min_height == max_height && min_width == max_width) return "every image " + one(min_height, min_width);
      return "heights " + std::to_string(min_height) + " to " + std::to_string(max_height) + ", widths " +
             std::to_string(min_width) + " to " + std::to_string(max_width);
    }
  };

  // Decodes every image (each failure names its file and list line) and
  // measures their sizes.
  image_sizes verify(threads t = {}) const {
    image_sizes all;
    std::mutex m;
    parallel_for(static_cast<std::int64_t>(size()), t, 16, [&](std::int64_t i) {
      thread_local image8 img;
      decode(static_cast<std::size_t>(i), img);
      std::lock_guard<std::mutex> lock(m);
      if (!all.measured) {
        all = {true, img.height, img.height, img.width, img.width};
      } else {
        all.min_height = std::min(all.min_height, img.height);
        all.max_height = std::max(all.max_height, img.height);
        all.min_width = std::min(all.min_width, img.width);
        all.max_width = std::max(all.max_width, img.width);
      }
    });
    std::lock_guard<std::mutex> lock(sizes_mutex_);
    sizes_ = all;
    return all;
  }
  image_sizes measured_sizes() const {
    std::lock_guard<std::mutex> lock(sizes_mutex_);
    return sizes_;
  }

 private:
  std::string file_of(const list_entry& e) const {
    return !e.path.empty() && e.path[0] == '/' ? e.path : root_ + "/" + e.path;
  }

  std::vector<list_entry> entries_;
  mutable std::mutex sizes_mutex_;
  mutable image_sizes sizes_;
  std::string root_;
  std::size_t channels_, classes_;
  nmhash::labels labels_;
};

struct image_list_options {
  std::string root;          // image root (empty: the data set's folder)
  std::size_t channels = 3;  // network input channels
  // Every `validation_every`-th training image (the last of each run of
  // that many) scores bits in NMLayer runs (V); the rest train them (T').
  std::size_t validation_every = 25;
};

// The list data set in folder `dir`: train.txt, database.txt, test.txt.
inline retrieval_split image_list_dataset(const std::string& dir, const image_list_options& o = {}) {
  require(o.validation_every >= 2, "image_list_dataset: validation_every must be at least 2");
  std::size_t classes = 0;
  std::vector<list_entry> all;
  retrieval_split r;
  r.name = "list:" + dir;
  std::string classes_from;
  for (const char* name : {"train.txt", "database.txt", "test.txt"}) {
    const std::string list = dir + "/" + name;
    auto part = read_image_list(list, classes, classes_from);
    if (classes_from.empty()) classes_from = list + ":" + std::to_string(part.front().line);
    auto& ids = name[0] == 't' && name[1] == 'r' ? r.train : name[0] == 'd' ? r.database : r.query;
    for (auto& e : part) {
      ids.push_back(all.size());
      all.push_back(std::move(e));
    }
  }
  for (std::size_t i = 0; i < r.train.size(); ++i)
    (i % o.validation_every == o.validation_every - 1 ? r.validation : r.train_nm).push_back(r.train[i]);
  r.pool = std::make_shared<image_list_source>(std::move(all), o.root.empty() ? dir : o.root, o.channels, classes);
  return r;
}

}  // namespace nmhash::data
