// A careless or hostile user, round two: each class of issue 32 with the
// probe that broke it. Outputs that resolve to one file, outputs that are
// not regular files and two runs on one directory lose nothing; inputs
// that are not regular files, images and models that declare more than
// they hold are refused by name before memory is spent; numeric options
// are decimal and finite; damaged checkpoints and models are refused by
// their checksum; a closed pipe is a reported error; index info reads as
// the readers do; a list names one image once however it is spelled.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <csignal>
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "nmhash/data/image.hpp"
#include "nmhash/data/image_list.hpp"
#include "nmhash/hashing/encoder.hpp"
#include "nmhash/index/index_io.hpp"
#include "nmhash/io/atomic_file.hpp"
#include "nmhash/io/codes_npy.hpp"
#include "nmhash/io/read_file.hpp"
#include "nmhash/io/safetensors.hpp"
#include "reference.hpp"
#include "run_command.hpp"
#include "temp_dir.hpp"

namespace {

namespace fs = std::filesystem;
using Catch::Contains;

void write_text(const std::string& path, const std::string& text) {
  nmhash::io::atomic_file f(path);
  f.write(text.data(), text.size());
  f.commit();
}

// A PNG holding its signature, a header declaring w x h RGB pixels, an
// 8-byte image data chunk and an end chunk: 65 bytes that promise w x h x 3.
std::vector<unsigned char> png_header_only(std::uint32_t w, std::uint32_t h) {
  std::vector<unsigned char> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  auto be32 = [&](std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<unsigned char>(v >> s));
  };
  auto chunk = [&](const char* type, const std::vector<unsigned char>& data) {
    be32(static_cast<std::uint32_t>(data.size()));
    const std::size_t at = out.size();
    out.insert(out.end(), type, type + 4);
    out.insert(out.end(), data.begin(), data.end());
    be32(static_cast<std::uint32_t>(::crc32(0, out.data() + at, static_cast<uInt>(out.size() - at))));
  };
  std::vector<unsigned char> ihdr;
  for (const std::uint32_t v : {w, h})
    for (int s = 24; s >= 0; s -= 8) ihdr.push_back(static_cast<unsigned char>(v >> s));
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8-bit RGB
  chunk("IHDR", ihdr);
  chunk("IDAT", {0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01});
  chunk("IEND", {});
  return out;
}

// A small model file (the encoder test's network) at `path`.
void write_small_model(const std::string& path) {
  const nmhash::nn::architecture arch{"custom", "conv3p1-6,relu,maxpool2,flatten,fc24,relu", 3, 12, 12};
  nmhash::nn::sequential<float> net;
  nmhash::nn::build_hashing_network<float>(net, arch, 8, 1);
  net.initialize(3);
  nmhash::hashing::model_description md;
  md.arch = arch;
  md.b_in = 8;
  md.transform.channels = 3;
  md.transform.height = md.transform.width = 12;
  md.transform.mean = {0.5f};
  md.transform.stddev = {0.25f};
  nmhash::io::atomic_file f(path);
  nmhash::hashing::write_model(f, net, nmhash::hashing::neuron_partition(8), md);
  f.commit();
}

// The model at `from` with one metadata field replaced, written to `to`
// (a fresh checksum: what a hostile writer can do).
void with_metadata(const std::string& from, const std::string& to, const std::string& key, const std::string& value) {
  auto f = nmhash::io::load_safetensors(from);
  f.metadata[key] = value;
  nmhash::io::save_safetensors(to, f.tensors, f.metadata);
}

std::string codes_npy(const temp_dir& tmp, const std::string& name, std::size_t n, std::size_t k, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  nmhash::io::save_codes_npy(tmp.file(name), ref::pack(ref::random_bits(n, k, g), k));
  return tmp.file(name);
}

}  // namespace

TEST_CASE("outputs: two that resolve to one file, and files that are not regular, are refused with nothing lost",
          "[hostile]") {
  temp_dir tmp;
  const std::string x = tmp.file("x.npy");
  write_text(x, "the previous good file");
  {
    // Two outputs of one group on one file ("x" and "./x"): refused at the
    // second, and the first file is untouched.
    nmhash::io::atomic_group outputs;
    nmhash::io::atomic_file& a = outputs.add(x);
    a.write("new", 3);
    const std::string dotted = (fs::path(tmp.file(".")) / "x.npy").string();
    REQUIRE_THROWS_WITH(outputs.add(dotted), Contains("that this process is already writing"));
  }
  REQUIRE(read_bytes(x) == "the previous good file");
  // The same, checked before a program starts its work (nmhash_encode's
  // --out and --labels-out).
  fs::create_directory(tmp.file("sub"));
  REQUIRE_THROWS_WITH(nmhash::io::check_outputs({x, tmp.file("sub/../x.npy")}),
                      Contains("two outputs resolve to one file"));
  nmhash::io::check_outputs({x, tmp.file("y.npy")});

  // A FIFO, a directory and a symbolic link are never replaced.
  const std::string fifo = tmp.file("fifo"), dir = tmp.file("dir"), link = tmp.file("link");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  fs::create_directory(dir);
  fs::create_symlink(x, link);
  for (const auto& [path, kind] : std::vector<std::pair<std::string, std::string>>{
           {fifo, "a FIFO"}, {dir, "a directory"}, {link, "a symbolic link"}}) {
    REQUIRE_THROWS_WITH(nmhash::io::atomic_file(path), Contains(kind) && Contains("nothing was written"));
    const auto r = run(tmp, std::string(NMHASH_INDEX_BIN) + " build --codes " + codes_npy(tmp, "c.npy", 20, 16, 1) +
                                " --out " + path);
    REQUIRE(r.status == 1);
    REQUIRE_THAT(r.err, Contains(kind));
  }
  struct stat st {};
  REQUIRE(::lstat(fifo.c_str(), &st) == 0);
  REQUIRE(S_ISFIFO(st.st_mode));
  REQUIRE(::lstat(link.c_str(), &st) == 0);
  REQUIRE(S_ISLNK(st.st_mode));
  REQUIRE(read_bytes(x) == "the previous good file");
}

TEST_CASE("a run holds its output directory: a second run on it is refused", "[hostile]") {
  temp_dir tmp;
  const std::string out = tmp.file("run");
  fs::create_directory(out);
  {
    const nmhash::io::directory_lock first(out);
    REQUIRE_THROWS_WITH(nmhash::io::directory_lock(out),
                        Contains("another run (pid " + std::to_string(::getpid()) + ")"));
    if (fs::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz")) {
      // nmhash_train on a directory this process holds.
      const auto r = run(tmp, std::string(NMHASH_TRAIN_BIN) +
                                  " --train-limit 64 --query-limit 10 --db-limit 64 --bits 8 --epochs 1 --out " + out);
      REQUIRE(r.status == 1);
      REQUIRE_THAT(r.err, Contains("another run") && Contains(out));
      REQUIRE_FALSE(fs::exists(out + "/summary.json"));
    }
  }
  const nmhash::io::directory_lock again(out);  // released with the holder
}

TEST_CASE("inputs that are not regular files are refused by name before they are read", "[hostile]") {
  temp_dir tmp;
  REQUIRE_THROWS_WITH(nmhash::io::read_file("/dev/zero"), Contains("/dev/zero: is a character device"));
  REQUIRE_THROWS_WITH(nmhash::io::read_file(tmp.file(".")), Contains("is a directory"));
  const std::string fifo = tmp.file("fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  REQUIRE_THROWS_WITH(nmhash::io::read_npy(fifo), Contains("a FIFO"));  // without waiting for a writer
  REQUIRE_THROWS_WITH(nmhash::io::open_index("/dev/zero"), Contains("is a character device"));
  REQUIRE_THROWS_WITH(nmhash::io::map_index("/dev/zero"), Contains("is a character device"));
  const std::string q = codes_npy(tmp, "q.npy", 3, 16, 2);
  const auto r = run(tmp, std::string(NMHASH_SEARCH_BIN) + " --query " + q + " --db /dev/zero --k 3 --out " +
                              tmp.file("res"));
  REQUIRE(r.status == 1);
  REQUIRE_THAT(r.err, Contains("/dev/zero: is a character device"));
  const auto e = run(tmp, std::string(NMHASH_EVAL_BIN) + " --query-codes " + tmp.file("") + " --db-codes " + q +
                              " --query-labels " + q + " --db-labels " + q);
  REQUIRE(e.status == 1);
  REQUIRE_THAT(e.err, Contains("is a directory"));
  REQUIRE_THROWS_WITH(nmhash::hashing::encoder<float>("/dev/zero"), Contains("/dev/zero: is a character device"));
}

TEST_CASE("images that declare more pixels than the budget or than their file holds are refused before decoding",
          "[hostile]") {
  nmhash::data::image8 img;
  const auto huge = png_header_only(16384, 16384);
  REQUIRE(huge.size() == 65);
  REQUIRE_THROWS_WITH(nmhash::data::decode_image(huge.data(), huge.size(), "huge.png", img),
                      Contains("huge.png: image of 16384 x 16384 pixels exceeds the decode limit of 89478485"));
  REQUIRE(img.pixels.empty());
  // Within a raised budget, still more than 65 bytes can hold.
  nmhash::data::set_max_image_pixels(std::size_t{1} << 30);
  REQUIRE_THROWS_WITH(nmhash::data::decode_image(huge.data(), huge.size(), "huge.png", img),
                      Contains("in a file of ") && Contains("more than such a file can hold"));
  nmhash::data::set_max_image_pixels(nmhash::data::default_max_image_pixels);
  REQUIRE(img.pixels.empty());
  // A JPEG header claiming 60000 x 60000 (3.6 G pixels).
  const std::vector<unsigned char> jpeg = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x11, 0x08, 0xEA, 0x60, 0xEA, 0x60, 0x03,
                                           0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01, 0xFF, 0xD9};
  REQUIRE_THROWS_WITH(nmhash::data::decode_image(jpeg.data(), jpeg.size(), "huge.jpg", img), Contains("huge.jpg"));
  REQUIRE(img.pixels.empty());
}

TEST_CASE("a model file is checked against its metadata before a network is built", "[hostile]") {
  temp_dir tmp;
  const std::string good = tmp.file("model.safetensors");
  write_small_model(good);
  REQUIRE(nmhash::hashing::encoder<float>(good).bits() == 8);
  // The input claimed 1x600x600 (the network would need a 1.4 G-value layer):
  // refused from the shapes, naming the tensors that do not fit.
  with_metadata(good, tmp.file("big.safetensors"), "input", "3x600x600");
  REQUIRE_THROWS_WITH(nmhash::hashing::encoder<float>(tmp.file("big.safetensors")),
                      Contains("the weights do not fit the architecture") && Contains("wrong shape: 4.weight [24,216]"));
  with_metadata(good, tmp.file("deep.safetensors"), "arch", "conv3p1-6,relu,maxpool2,flatten,fc24,relu,fc12");
  REQUIRE_THROWS_WITH(nmhash::hashing::encoder<float>(tmp.file("deep.safetensors")),
                      Contains("missing: 7.weight, 7.bias") && Contains("wrong shape: 6.weight [8,24], expected [12,24]"));
  for (const std::string resize : {"-1", "1e30", "2.5", "1000000"}) {
    with_metadata(good, tmp.file("resize.safetensors"), "transform",
                  "{\"resize\": " + resize + ", \"mean\": [0.5], \"std\": [0.25]}");
    REQUIRE_THROWS_WITH(nmhash::hashing::encoder<float>(tmp.file("resize.safetensors")),
                        Contains("resize is ") && Contains("expected an integer from 0 (none) to 16384"));
  }
  with_metadata(good, tmp.file("std.safetensors"), "transform", "{\"resize\": 0, \"mean\": [0.5], \"std\": [1e39]}");
  REQUIRE_THROWS_WITH(nmhash::hashing::encoder<float>(tmp.file("std.safetensors")), Contains("std"));
  // NaN weights are named with their tensor.
  auto f = nmhash::io::load_safetensors(good);
  auto& w = f.tensors.at("0.weight");
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::memcpy(w.bytes.data() + 4 * 5, &nan, 4);
  nmhash::io::save_safetensors(tmp.file("nan.safetensors"), f.tensors, f.metadata);
  REQUIRE_THROWS_WITH(nmhash::hashing::encoder<float>(tmp.file("nan.safetensors")),
                      Contains("nan.safetensors: tensor '0.weight' holds nan at value 5"));
}

TEST_CASE("checkpoints and model files carry checksums: one flipped bit is refused naming the file", "[hostile]") {
  temp_dir tmp;
  const std::string good = tmp.file("model.safetensors");
  write_small_model(good);
  const std::string bytes = read_bytes(good);
  REQUIRE_THAT(bytes, Contains("nmhash_crc32"));
  REQUIRE(nmhash::io::load_safetensors(good).metadata.count("nmhash_crc32") == 0);
  std::uint64_t header = 0;
  for (int i = 7; i >= 0; --i) header = header << 8 | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);
  // A mantissa bit of the last weight, and a digit of a metadata value.
  std::string flipped = bytes;
  flipped[flipped.size() - 6] = static_cast<char>(flipped[flipped.size() - 6] ^ 0x01);
  write_text(tmp.file("flipped.safetensors"), flipped);
  REQUIRE_THROWS_WITH(nmhash::io::load_safetensors(tmp.file("flipped.safetensors")),
                      Contains("flipped.safetensors: checksum mismatch"));
  std::string meta = bytes;
  const auto at = meta.find("\"b_in\":\"8\"");
  REQUIRE(at != std::string::npos);
  REQUIRE(at < 8 + header);
  meta[at + 8] = '9';
  write_text(tmp.file("meta.safetensors"), meta);
  REQUIRE_THROWS_WITH(nmhash::hashing::encoder<float>(tmp.file("meta.safetensors")),
                      Contains("meta.safetensors: checksum mismatch"));
}

TEST_CASE("numeric options are finite decimals within their type, checked before any work", "[hostile]") {
  temp_dir tmp;
  const std::string q = codes_npy(tmp, "q.npy", 3, 16, 3), d = codes_npy(tmp, "d.npy", 40, 16, 4);
  const std::string search = std::string(NMHASH_SEARCH_BIN) + " --query " + q + " --db " + d + " --out " + tmp.file("r");
  for (const std::string k : {"010", "0x10", "-1", "1e2", "99999999999999999999"}) {
    const auto r = run(tmp, search + " --k " + k);
    INFO("--k " << k << ": " << r.err);
    REQUIRE(r.status != 0);
    REQUIRE_THAT(r.err, Contains("--k"));
    REQUIRE_FALSE(fs::exists(tmp.file("r_D.npy")));
  }
  REQUIRE(run(tmp, search + " --k 10").status == 0);
  const std::string train = std::string(NMHASH_TRAIN_BIN) + " --out " + tmp.file("never");
  for (const std::string opt : {"--lr nan", "--lr inf", "--weight-decay -nan", "--seed -1", "--bits 010",
                                "--bits 0x10", "--epochs 1e1", "--margin nan", "--alpha NaN"}) {
    const auto r = run(tmp, train + " " + opt);
    INFO(opt << ": " << r.err);
    REQUIRE(r.status != 0);
    REQUIRE_THAT(r.err, Contains(opt.substr(0, opt.find(' '))));
    REQUIRE_FALSE(fs::exists(tmp.file("never")));
  }
}

TEST_CASE("a closed pipe on standard output is exit 1 with a message, not a silent SIGPIPE", "[hostile]") {
  temp_dir tmp;
  const std::string idx = tmp.file("i.nmhi");
  nmhash::binary_index index(16);
  std::mt19937_64 g(5);
  index.add(ref::pack(ref::random_bits(10, 16, g), 16));
  nmhash::io::save_index(index, idx);
  // Standard output is a pipe whose reader is gone before the tool starts;
  // SIGPIPE has its default action, as from a shell.
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  ::close(fds[0]);
  const std::string err = tmp.file("stderr.txt");
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    std::signal(SIGPIPE, SIG_DFL);
    ::dup2(fds[1], 1);
    const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(e, 2);
    ::execl(NMHASH_INDEX_BIN, NMHASH_INDEX_BIN, "info", idx.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  INFO(read_bytes(err));
  REQUIRE(WIFEXITED(status));  // not killed by SIGPIPE
  REQUIRE(WEXITSTATUS(status) == 1);
  REQUIRE_THAT(read_bytes(err), Contains("standard output") && Contains("write failed"));
}

TEST_CASE("nmhash_index info refuses what the readers refuse", "[hostile]") {
  temp_dir tmp;
  const std::string whole = read_bytes(std::string(NMHASH_TEST_DATA) + "/faiss/flat48.faissindex");
  write_text(tmp.file("cut.faissindex"), whole.substr(0, 33));
  const auto r = run(tmp, std::string(NMHASH_INDEX_BIN) + " info " + tmp.file("cut.faissindex"));
  REQUIRE(r.status == 1);
  REQUIRE_THAT(r.err, Contains("cut.faissindex"));
  REQUIRE_THROWS(nmhash::io::read_faiss_index(tmp.file("cut.faissindex")));
  const auto ok = run(tmp, std::string(NMHASH_INDEX_BIN) + " info " + std::string(NMHASH_TEST_DATA) +
                               "/faiss/flat48.faissindex");
  REQUIRE(ok.status == 0);
}

TEST_CASE("an image list names each image once, however its path is spelled", "[hostile]") {
  temp_dir tmp;
  fs::create_directories(tmp.file("images"));
  write_text(tmp.file("list.txt"), "images/1.png 1 0\n./images/1.png 0 1\n");
  std::size_t classes = 0;
  REQUIRE_THROWS_WITH(nmhash::data::read_image_list(tmp.file("list.txt"), classes),
                      Contains("list.txt:2: './images/1.png' is already listed on line 1"));
  write_text(tmp.file("list2.txt"), "images/a/../1.png 1 0\nimages//1.png 0 1\n");
  classes = 0;
  REQUIRE_THROWS_WITH(nmhash::data::read_image_list(tmp.file("list2.txt"), classes), Contains("already listed"));
}

TEST_CASE("a network too large for memory is reported with its size, not as std::bad_alloc", "[hostile]") {
  const nmhash::nn::architecture huge{"custom", "flatten,fc1048576,relu,fc1048576", 1, 1, 1};
  nmhash::nn::sequential<float> net;
  REQUIRE_THROWS_WITH(nmhash::nn::build_hashing_network<float>(net, huge, 8, 1),
                      Contains("cannot allocate") && Contains("parameters") && Contains("lower the input size"));
}
