// nmhash_fuzz_seeds OUTDIR [MAX_BYTES]: writes the seed corpora of the fuzz
// harnesses, OUTDIR/{npy,idx,safetensors,model,index}/, with the library's own
// writers (valid files of every supported dtype, rank and layout) and the
// hand-made regression inputs of crafted.hpp. Files over MAX_BYTES (the
// 100000-deep JSON headers) are left out, for a fuzzer's corpus.
// Deterministic: the same files each run.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <zlib.h>

#include "nmhash/core/checked.hpp"
#include "nmhash/core/error.hpp"
#include "nmhash/hashing/model_io.hpp"
#include "nmhash/hashing/partition.hpp"
#include "nmhash/index/index_io.hpp"
#include "nmhash/io/npy.hpp"
#include "nmhash/io/safetensors.hpp"
#include "nmhash/nn/serialize.hpp"

#include "crafted.hpp"
#include "model_net.hpp"

namespace fs = std::filesystem;

namespace {

std::size_t max_bytes = static_cast<std::size_t>(-1);

void write_file(const fs::path& path, const std::string& bytes) {
  if (bytes.size() > max_bytes) return;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  nmhash::require(out.good(), path.string(), ": cannot write");
}

std::string read_whole(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// ---- npy -------------------------------------------------------------------

template <class T>
void npy(const fs::path& dir, const std::string& name, const std::vector<T>& v, const std::vector<std::size_t>& shape) {
  nmhash::io::write_npy((dir / (name + ".npy")).string(), v.data(), shape);
}

// A .npy image of format version 2.0 or 3.0 (4-byte header length).
std::string npy_v2(int major, const std::string& dict, const std::string& payload) {
  std::string h = dict;
  const std::size_t unpadded = 12 + h.size() + 1;
  h.append((64 - unpadded % 64) % 64, ' ');
  h.push_back('\n');
  std::string out("\x93NUMPY", 6);
  out.push_back(static_cast<char>(major));
  out.push_back('\0');
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>((h.size() >> (8 * i)) & 0xFF));
  return out + h + payload;
}

void npy_seeds(const fs::path& dir) {
  std::mt19937 gen(7);
  std::normal_distribution<float> normal;
  std::vector<float> f32(5 * 32);
  for (auto& x : f32) x = normal(gen);
  npy(dir, "codes_f32_5x32", f32, {5, 32});
  npy(dir, "f32_2x3", std::vector<float>{1.5f, -2.0f, 0.0f, 3.25f, 4.0f, -5.0f}, {2, 3});
  npy(dir, "f32_scalar", std::vector<float>{2.5f}, {});
  npy(dir, "f32_empty_0x4", std::vector<float>{}, {0, 4});
  npy(dir, "f32_3d_2x2x2", std::vector<float>(8, 1.0f), {2, 2, 2});
  std::vector<double> f64(3 * 8);
  for (auto& x : f64) x = normal(gen);
  npy(dir, "codes_f64_3x8", f64, {3, 8});
  npy(dir, "multihot_f64_3x4", std::vector<double>{1, 0, 0, 1, 0, 1, 1, 0, 0, 0, 0, 1}, {3, 4});
  std::vector<std::int8_t> pm1(3 * 16);
  for (std::size_t i = 0; i < pm1.size(); ++i) pm1[i] = (gen() & 1) ? 1 : -1;
  npy(dir, "codes_i8_pm1_3x16", pm1, {3, 16});
  npy(dir, "codes_u8_packed_4x2", std::vector<std::uint8_t>{0x81, 0x7e, 0xff, 0x00, 0x12, 0x34, 0x56, 0x78}, {4, 2});
  npy(dir, "labels_u8_3x1", std::vector<std::uint8_t>{1, 2, 255}, {3, 1});
  npy(dir, "labels_i64_5", std::vector<std::int64_t>{0, 3, 9, 1, (std::int64_t{1} << 40)}, {5});
  npy(dir, "labels_i32_4", std::vector<std::int32_t>{0, -1, 7, 2}, {4});
  npy(dir, "labels_i16_4", std::vector<std::int16_t>{0, 1, 2, 3}, {4});
  npy(dir, "labels_u16_3", std::vector<std::uint16_t>{0, 1, 65535}, {3});
  npy(dir, "labels_u32_3", std::vector<std::uint32_t>{0, 1, 4000000000u}, {3});
  npy(dir, "labels_u64_2", std::vector<std::uint64_t>{5, 6}, {2});
  npy(dir, "multihot_u8_2x3", std::vector<std::uint8_t>{1, 0, 1, 0, 0, 1}, {2, 3});
  const bool flags[6] = {true, false, true, false, false, true};
  nmhash::io::write_npy((dir / "multihot_b1_2x3.npy").string(), flags, {2, 3});
  write_file(dir / "v2_f32_2.npy",
             npy_v2(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", std::string(8, '\0')));
  write_file(dir / "v3_u1_2x2.npy",
             npy_v2(3, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }", std::string("\x01\x02\x03\x04", 4)));
  write_file(dir / "reordered_keys.npy",
             nmhash_fuzz::npy_image("{'shape': (2,), 'fortran_order': False, 'descr': '=i1'}", std::string("\x01\xff", 2)));
  // Rejected, for the error paths.
  write_file(dir / "bad_big_endian.npy",
             nmhash_fuzz::npy_image("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", std::string(4, '\0')));
  write_file(dir / "bad_fortran.npy",
             nmhash_fuzz::npy_image("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", std::string(16, '\0')));
  write_file(dir / "bad_truncated.npy",
             nmhash_fuzz::npy_image("{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", std::string(31, '\0')));
  write_file(dir / "bad_trailing.npy",
             nmhash_fuzz::npy_image("{'descr': '<i2', 'fortran_order': False, 'shape': (1,), }", std::string(3, '\0')));
  write_file(dir / "regression_u1_shape_overflow.npy", nmhash_fuzz::npy_u1_shape_overflow());
  write_file(dir / "regression_dim_2_63.npy", nmhash_fuzz::npy_dim_2_63());
  write_file(dir / "regression_dim_23_digits.npy", nmhash_fuzz::npy_dim_23_digits());
  write_file(dir / "regression_zero_dim_overflow.npy", nmhash_fuzz::npy_zero_dim_overflow());
}

// ---- IDX -------------------------------------------------------------------

std::string idx_image(const std::vector<std::uint32_t>& shape, std::uint8_t fill) {
  std::string out("\0\0\x08", 3);
  out.push_back(static_cast<char>(shape.size()));
  std::size_t n = 1;
  for (std::uint32_t s : shape) {
    for (int b = 3; b >= 0; --b) out.push_back(static_cast<char>((s >> (8 * b)) & 0xFF));
    n *= s;
  }
  for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<char>(static_cast<std::uint8_t>(fill + 37 * i)));
  return out;
}

// Writes `members` as consecutive gzip members of one file (gzopen's append
// mode starts a new member).
void write_gzip(const fs::path& path, const std::vector<std::string>& members) {
  fs::remove(path);
  for (const std::string& m : members) {
    gzFile g = gzopen(path.string().c_str(), "ab9");
    nmhash::require(g != nullptr, path.string(), ": gzopen failed");
    const int wrote = gzwrite(g, m.data(), static_cast<unsigned>(m.size()));
    nmhash::require(gzclose(g) == Z_OK && wrote == static_cast<int>(m.size()), path.string(), ": gzwrite failed");
  }
}

// `bytes` as a zlib stream (compress), not gzip: the parser must refuse it.
std::string zlib_stream(const std::string& bytes) {
  uLongf n = compressBound(static_cast<uLong>(bytes.size()));
  std::string out(n, '\0');
  nmhash::require(compress(reinterpret_cast<Bytef*>(out.data()), &n, reinterpret_cast<const Bytef*>(bytes.data()),
                           static_cast<uLong>(bytes.size())) == Z_OK,
                  "compress failed");
  out.resize(n);
  return out;
}

void idx_seeds(const fs::path& dir) {
  const std::string labels = idx_image({10}, 3);
  const std::string images = idx_image({3, 4, 4}, 0);
  const std::string mat = idx_image({2, 5}, 9);
  const std::string four = idx_image({2, 1, 2, 3}, 200);
  const std::string empty = idx_image({0, 28, 28}, 0);
  write_file(dir / "labels_10.idx1", labels);
  write_file(dir / "images_3x4x4.idx3", images);
  write_file(dir / "mat_2x5.idx2", mat);
  write_file(dir / "four_2x1x2x3.idx4", four);
  write_file(dir / "empty_0x28x28.idx3", empty);
  write_gzip(dir / "labels_10.idx1.gz", {labels});
  write_gzip(dir / "images_3x4x4.idx3.gz", {images});
  write_gzip(dir / "four_2x1x2x3.idx4.gz", {four});
  write_gzip(dir / "images_two_members.idx3.gz", {images.substr(0, 16), images.substr(16)});
  // Rejected, for the error paths.
  write_file(dir / "bad_zlib_not_gzip.idx3", zlib_stream(images));
  write_file(dir / "bad_truncated.idx3", images.substr(0, images.size() - 3));
  write_file(dir / "bad_trailing.idx1", labels + "xy");
  write_file(dir / "bad_type_float.idx1", std::string("\0\0\x0d\x01\0\0\0\x01\0\0\0\0", 12));
  write_gzip(dir / "bad_trailing.idx1.gz", {labels + std::string(4096, '\0')});
  const std::string gz = read_whole(dir / "images_3x4x4.idx3.gz");
  write_file(dir / "bad_truncated_gzip.idx3.gz", gz.substr(0, gz.size() - 9));
  write_file(dir / "regression_9_bytes_huge_3d.idx3", nmhash_fuzz::idx_9_bytes_huge_3d());
  write_file(dir / "regression_huge_3d_header.idx3", nmhash_fuzz::idx_huge_3d_header());
  write_gzip(dir / "regression_huge_3d_header.idx3.gz", {nmhash_fuzz::idx_huge_3d_header()});
  write_file(dir / "regression_declares_50mb.idx1", nmhash_fuzz::idx_declares_50mb());
  write_gzip(dir / "regression_declares_50mb.idx1.gz", {nmhash_fuzz::idx_declares_50mb()});
}

// ---- safetensors -----------------------------------------------------------

void safetensors_regressions(const fs::path& dir) {
  write_file(dir / "regression_float_offsets.safetensors", nmhash_fuzz::safetensors_float_offsets());
  write_file(dir / "regression_negative_shape.safetensors", nmhash_fuzz::safetensors_negative_shape());
  write_file(dir / "regression_float_shape.safetensors", nmhash_fuzz::safetensors_float_shape());
  write_file(dir / "regression_overlapping_small.safetensors", nmhash_fuzz::safetensors_overlapping(3, 8));
  write_file(dir / "regression_overlapping_64k.safetensors", nmhash_fuzz::safetensors_overlapping(790, 16384));
  write_file(dir / "regression_deep_header.safetensors", nmhash_fuzz::safetensors_deep_header(100000, true));
  write_file(dir / "regression_deep_header_open.safetensors", nmhash_fuzz::safetensors_deep_header(100000, false));
  write_file(dir / "regression_deep_shape.safetensors", nmhash_fuzz::safetensors_deep_field("shape", 100000));
  write_file(dir / "regression_deep_offsets.safetensors", nmhash_fuzz::safetensors_deep_field("data_offsets", 100000));
  // The same within the fuzzers' 64 KiB input limit, and small.
  write_file(dir / "regression_deep_shape_30k.safetensors", nmhash_fuzz::safetensors_deep_field("shape", 30000));
  write_file(dir / "regression_deep_offsets_30k.safetensors",
             nmhash_fuzz::safetensors_deep_field("data_offsets", 30000));
  write_file(dir / "regression_deep_shape_1k.safetensors", nmhash_fuzz::safetensors_deep_field("shape", 1000));
  write_file(dir / "regression_deep_offsets_1k.safetensors",
             nmhash_fuzz::safetensors_deep_field("data_offsets", 1000));
  write_file(dir / "regression_deep_header_1k.safetensors", nmhash_fuzz::safetensors_deep_header(1000, true));
}

void safetensors_seeds(const fs::path& dir) {
  namespace io = nmhash::io;
  const std::vector<float> w{1, -2, 3.5f, 0, 5, 6};
  const std::vector<double> b{0.25, -0.5};
  const float one = 1.0f;
  io::tensor_map t;
  t["w"] = io::named_tensor::from(w.data(), {2, 3});
  t["b"] = io::named_tensor::from(b.data(), {2});
  io::save_safetensors((dir / "f32_f64_meta.safetensors").string(), t, {{"bits", "32"}, {"model", "seed"}});
  io::save_safetensors((dir / "f32_f64.safetensors").string(), t);
  io::tensor_map u;
  u["scalar"] = io::named_tensor::from(&one, {});
  u["empty"] = io::named_tensor::from(w.data(), {0, 3});
  u["cube"] = io::named_tensor::from(w.data(), {1, 2, 3});
  io::save_safetensors((dir / "scalar_empty_cube.safetensors").string(), u, {{"bits", "007"}});
  io::save_safetensors((dir / "no_tensors.safetensors").string(), {}, {{"bits", "18446744073709551615"}});
  write_file(dir / "bad_shared_bytes.safetensors",
             nmhash_fuzz::safetensors_image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                            R"("b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                                            std::string("\0\0\x80\x3f", 4)));
  // Rejected, for the error paths.
  write_file(dir / "bad_dtype.safetensors",
             nmhash_fuzz::safetensors_image(R"({"w":{"dtype":"I8","shape":[1],"data_offsets":[0,1]}})", "x"));
  write_file(dir / "bad_meta_value.safetensors",
             nmhash_fuzz::safetensors_image(R"({"__metadata__":{"bits":32}})", ""));
  write_file(dir / "bad_bits_text.safetensors",
             nmhash_fuzz::safetensors_image(R"({"__metadata__":{"bits":"-3"}})", ""));
  write_file(dir / "bad_offsets_reversed.safetensors",
             nmhash_fuzz::safetensors_image(R"({"w":{"dtype":"F64","shape":[1],"data_offsets":[8,0]}})",
                                            std::string(8, '\0')));
  write_file(dir / "bad_header_length.safetensors", std::string("\xff\xff\xff\xff\xff\xff\xff\xff{}", 10));
  safetensors_regressions(dir);
}

// ---- model files -----------------------------------------------------------

void model_seeds(const fs::path& dir) {
  namespace h = nmhash::hashing;
  using nmhash::hashing::neuron_partition;
  nmhash::nn::sequential<float> net;
  nmhash_fuzz::build_model_net(net);
  net.initialize(11);
  h::save_hashing_model((dir / "identity.safetensors").string(), net, neuron_partition(6), {{"model", "seed"}});
  h::save_hashing_model((dir / "merged.safetensors").string(), net,
                        neuron_partition::from_groups(6, {{0, 4}, {1}, {2, 3}}));
  h::save_hashing_model((dir / "one_node.safetensors").string(), net,
                        neuron_partition::from_groups(6, {{0, 1, 2, 3, 4, 5}}));
  nmhash::nn::save_parameters((dir / "plain_network.safetensors").string(), net);
  // Groupings the reader must refuse.
  const auto with_node_of = [&](const std::string& name, const std::vector<double>& node_of) {
    auto tensors = nmhash::nn::parameter_tensors(net);
    tensors["nm.node_of"] = nmhash::io::named_tensor::from(node_of.data(), {node_of.size()});
    nmhash::io::save_safetensors((dir / name).string(), tensors, {{"bits", "3"}});
  };
  with_node_of("bad_node_of_nan.safetensors", {0, 1, 2, std::nan(""), 4, 5});
  with_node_of("bad_node_of_fraction.safetensors", {0, 1, 2, 2.5, 4, 5});
  with_node_of("bad_node_of_sparse.safetensors", {0, 1, 2, 5, 5, -1});
  with_node_of("bad_node_of_range.safetensors", {0, 1, 2, 3, 4, 6});
  with_node_of("bad_node_of_length.safetensors", {0, 1, 2});
  with_node_of("all_unused.safetensors", {-1, -1, -1, -1, -1, -1});
  // The first layer's weight stored as F64 and transposed.
  auto tensors = nmhash::nn::parameter_tensors(net);
  std::vector<double> w0(40, 0.5);
  tensors["0.weight"] = nmhash::io::named_tensor::from(w0.data(), {8, 5});
  nmhash::io::save_safetensors((dir / "f64_weight.safetensors").string(), tensors);
  tensors["0.weight"] = nmhash::io::named_tensor::from(w0.data(), {5, 8});
  nmhash::io::save_safetensors((dir / "bad_transposed_weight.safetensors").string(), tensors);
  safetensors_regressions(dir);
}

// ---- binary index files ----------------------------------------------------

void index_seeds(const fs::path& dir) {
  std::mt19937_64 g(21);
  for (std::size_t bits : {12, 48, 64, 130}) {
    nmhash::packed_codes c(9, bits);
    for (std::size_t i = 0; i < c.size(); ++i)
      for (std::size_t j = 0; j < bits; ++j) c.set_bit(i, j, g() & 1);
    nmhash::binary_index seq(bits), ids(bits);
    seq.add(c);
    std::vector<std::int64_t> v(c.size());
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<std::int64_t>(g() % 1000) - 500;
    ids.add_with_ids(c, v);
    const std::string k = std::to_string(bits);
    nmhash::io::save_index(seq, (dir / ("seq_" + k + ".nmhi")).string());
    nmhash::io::save_index(ids, (dir / ("ids_" + k + ".nmhi")).string());
    if (bits % 8 == 0) {
      nmhash::io::write_faiss_index(seq, (dir / ("flat_" + k + ".faissindex")).string());
      nmhash::io::write_faiss_index(ids, (dir / ("idmap_" + k + ".faissindex")).string());
    }
  }
  nmhash::io::save_index(nmhash::binary_index(64), (dir / "empty.nmhi").string());
  // Rejected, for the error paths: a damaged payload, a cut file, a huge
  // count, an IDMap of the wrong size.
  std::string b = read_whole(dir / "ids_48.nmhi");
  b[70] = static_cast<char>(b[70] ^ 0x40);
  write_file(dir / "bad_payload.nmhi", b);
  write_file(dir / "bad_cut.nmhi", read_whole(dir / "ids_64.nmhi").substr(0, 100));
  std::string f = read_whole(dir / "flat_64.faissindex");
  f[13] = '\x7f';  // ntotal's high byte
  write_file(dir / "bad_ntotal.faissindex", f);
  std::string m = read_whole(dir / "idmap_48.faissindex");
  write_file(dir / "bad_idmap_cut.faissindex", m.substr(0, m.size() - 8));
  // Regression (libFuzzer): an IndexBinaryFlat declaring 589,824 codes and
  // a matching code length in a 112-byte file made the reader allocate
  // 4.7 MB before finding the file short.
  std::string big = f.substr(0, 33);
  const std::uint64_t n = 589824, bytes = n * 8;
  std::memcpy(&big[12], &n, 8);
  std::memcpy(&big[25], &bytes, 8);
  write_file(dir / "regression_declared_codes.faissindex", big + std::string(79, '\x5a'));
}

// Image headers: a small valid grey and RGB PNG, and PNG and JPEG headers
// that declare more than their files hold or than the decode budget.
void png_chunk(std::string& out, const char* type, const std::string& data) {
  auto be32 = [&](std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
  };
  be32(static_cast<std::uint32_t>(data.size()));
  const std::size_t at = out.size();
  out += type;
  out += data;
  be32(static_cast<std::uint32_t>(::crc32(0, reinterpret_cast<const Bytef*>(out.data() + at),
                                          static_cast<uInt>(out.size() - at))));
}

std::string png_file(std::uint32_t w, std::uint32_t h, int colour_type, bool with_pixels) {
  std::string out = "\x89PNG\r\n\x1a\n";
  std::string ihdr;
  for (const std::uint32_t v : {w, h})
    for (int s = 24; s >= 0; s -= 8) ihdr.push_back(static_cast<char>((v >> s) & 0xff));
  ihdr += std::string{8, static_cast<char>(colour_type), 0, 0, 0};
  png_chunk(out, "IHDR", ihdr);
  if (with_pixels) {
    const std::size_t row = 1 + w * (colour_type == 2 ? 3 : 1);
    std::string raw(h * row, '\0');
    for (std::size_t i = 0; i < raw.size(); ++i)
      if (i % row) raw[i] = static_cast<char>(i * 37);
    uLongf n = compressBound(static_cast<uLong>(raw.size()));
    std::string z(n, '\0');
    compress2(reinterpret_cast<Bytef*>(&z[0]), &n, reinterpret_cast<const Bytef*>(raw.data()),
              static_cast<uLong>(raw.size()), 9);
    z.resize(n);
    png_chunk(out, "IDAT", z);
  } else {
    png_chunk(out, "IDAT", std::string("\x78\x9c\x03\x00\x00\x00\x00\x01", 8));
  }
  png_chunk(out, "IEND", "");
  return out;
}

void image_seeds(const fs::path& dir) {
  write_file(dir / "grey_7x5.png", png_file(7, 5, 0, true));
  write_file(dir / "rgb_16x9.png", png_file(16, 9, 2, true));
  write_file(dir / "declares_16384x16384.png", png_file(16384, 16384, 2, false));
  write_file(dir / "declares_2000x2000.png", png_file(2000, 2000, 2, false));
  write_file(dir / "declares_1x1.png", png_file(1, 1, 0, false));
  // SOI, SOF0 of 60000 x 60000 with three components, EOI.
  write_file(dir / "declares_60000x60000.jpg",
             std::string("\xff\xd8\xff\xc0\x00\x11\x08\xea\x60\xea\x60\x03\x01\x22\x00\x02\x11\x01\x03\x11\x01\xff\xd9",
                         23));
  write_file(dir / "not_an_image.txt", "hello");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) {
    std::cerr << "usage: nmhash_fuzz_seeds OUTDIR [MAX_BYTES]\n";
    return 2;
  }
  try {
    if (argc == 3) {
      std::uint64_t m = 0;
      nmhash::require(nmhash::parse_u64(argv[2], m), "nmhash_fuzz_seeds: MAX_BYTES '", argv[2],
                      "' is not an unsigned integer");
      max_bytes = static_cast<std::size_t>(m);
    }
    const fs::path out(argv[1]);
    const std::vector<std::pair<std::string, void (*)(const fs::path&)>> targets{
        {"npy", npy_seeds}, {"idx", idx_seeds}, {"safetensors", safetensors_seeds}, {"model", model_seeds},
        {"index", index_seeds}, {"image", image_seeds}};
    for (const auto& [name, write] : targets) {
      const fs::path dir = out / name;
      fs::create_directories(dir);
      write(dir);
      std::size_t n = 0;
      for (const auto& e : fs::directory_iterator(dir)) n += e.is_regular_file() ? 1 : 0;
      std::cout << name << ": " << n << " files in " << dir.string() << "\n";
    }
  } catch (const std::exception& e) {
    std::cerr << "nmhash_fuzz_seeds: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
