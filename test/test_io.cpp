#include <catch2/catch.hpp>

#include <random>

#include "nmhash/io/codes_npy.hpp"
#include "nmhash/io/idx.hpp"
#include "nmhash/io/npy.hpp"
#include "reference.hpp"
#include "temp_dir.hpp"

#include <zlib.h>

TEST_CASE("npy round trip of every supported element type", "[io]") {
  temp_dir tmp;
  const std::vector<float> f{1.5f, -2.0f, 0.0f, 3.25f, 4.0f, -5.0f};
  nmhash::io::write_npy(tmp.file("f.npy"), f.data(), {2, 3});
  const auto a = nmhash::io::read_npy(tmp.file("f.npy"));
  REQUIRE(a.kind == 'f');
  REQUIRE(a.item_size == 4);
  REQUIRE(a.shape == std::vector<std::size_t>{2, 3});
  REQUIRE(a.to_vector<float>() == f);
  const std::vector<std::int64_t> i64{-1, 5, 1LL << 40};
  nmhash::io::write_npy(tmp.file("i.npy"), i64.data(), {3});
  const auto b = nmhash::io::read_npy(tmp.file("i.npy"));
  REQUIRE(b.dtype_name() == "int64");
  REQUIRE(b.shape_string() == "(3,)");
  REQUIRE(b.to_vector<std::int64_t>() == i64);
  const std::vector<std::uint8_t> u8{1, 2, 255};
  nmhash::io::write_npy(tmp.file("u.npy"), u8.data(), {3, 1});
  REQUIRE(nmhash::io::read_npy(tmp.file("u.npy")).to_vector<int>() == std::vector<int>{1, 2, 255});
  // Data starts on a 64-byte boundary, as numpy writes it.
  REQUIRE(read_bytes(tmp.file("f.npy")).size() == 128 + 6 * 4);
}

TEST_CASE("npy errors name the file and the problem", "[io]") {
  temp_dir tmp;
  const std::string f = tmp.file("x.npy");
  write_bytes(f, "hello world, not numpy");
  REQUIRE_THROWS_WITH(nmhash::io::read_npy(f), Catch::Contains(f) && Catch::Contains("magic"));
  write_bytes(f, npy_bytes("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", std::string(16, '\0')));
  REQUIRE_THROWS_WITH(nmhash::io::read_npy(f), Catch::Contains("Fortran-order"));
  write_bytes(f, npy_bytes("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }", std::string(16, '\0')));
  REQUIRE_THROWS_WITH(nmhash::io::read_npy(f), Catch::Contains("big-endian"));
  write_bytes(f, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", std::string(15, '\0')));
  REQUIRE_THROWS_WITH(nmhash::io::read_npy(f), Catch::Contains("truncated data") && Catch::Contains("needs 16 bytes, file has 15"));
  write_bytes(f, npy_bytes("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", std::string(8, '\0')));
  REQUIRE_THROWS_WITH(nmhash::io::read_npy(f), Catch::Contains("unsupported dtype '<c8'"));
  write_bytes(f, npy_bytes("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", std::string(16, '\0')).substr(0, 30));
  REQUIRE_THROWS_WITH(nmhash::io::read_npy(f), Catch::Contains("truncated .npy header"));
  REQUIRE_THROWS_WITH(nmhash::io::read_npy(tmp.file("missing.npy")), Catch::Contains("cannot open"));
}

TEST_CASE("codes load from float, int8 and packed uint8 .npy files", "[io]") {
  temp_dir tmp;
  std::mt19937_64 g(21);
  const std::size_t n = 6, k = 20;
  const auto bits = ref::random_bits(n, k, g);
  const auto expect = ref::pack(bits, k);
  std::vector<float> f(n * k);
  std::vector<double> d(n * k);
  std::vector<std::int8_t> pm(n * k);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j < k; ++j) {
      f[i * k + j] = bits[i][j] ? 0.3f : -0.7f;
      d[i * k + j] = bits[i][j] ? 1.0 : -1.0;
      pm[i * k + j] = bits[i][j] ? 1 : -1;
    }
  nmhash::io::write_npy(tmp.file("f.npy"), f.data(), {n, k});
  nmhash::io::write_npy(tmp.file("d.npy"), d.data(), {n, k});
  nmhash::io::write_npy(tmp.file("p.npy"), pm.data(), {n, k});
  nmhash::io::save_codes_npy(tmp.file("u.npy"), expect);
  REQUIRE(nmhash::io::load_codes_npy(tmp.file("f.npy")) == expect);
  REQUIRE(nmhash::io::load_codes_npy(tmp.file("d.npy")) == expect);
  REQUIRE(nmhash::io::load_codes_npy(tmp.file("p.npy")) == expect);
  REQUIRE(nmhash::io::load_codes_npy(tmp.file("u.npy"), k) == expect);
  REQUIRE(nmhash::io::load_codes_npy(tmp.file("u.npy")).bits() == 24);
  REQUIRE_THROWS_WITH(nmhash::io::load_codes_npy(tmp.file("u.npy"), 30), Catch::Contains("need 4 bytes per row, found 3"));
  REQUIRE_THROWS_WITH(nmhash::io::load_codes_npy(tmp.file("f.npy"), 16), Catch::Contains("expected K = 16 bits, found 20"));
  pm[5] = 0;
  nmhash::io::write_npy(tmp.file("bad.npy"), pm.data(), {n, k});
  REQUIRE_THROWS_WITH(nmhash::io::load_codes_npy(tmp.file("bad.npy")), Catch::Contains("bad.npy") && Catch::Contains("expected +1 or -1"));
  const std::vector<std::int32_t> i32(n * k, 1);
  nmhash::io::write_npy(tmp.file("i32.npy"), i32.data(), {n, k});
  REQUIRE_THROWS_WITH(nmhash::io::load_codes_npy(tmp.file("i32.npy")), Catch::Contains("unsupported dtype int32 for codes"));
  nmhash::io::write_npy(tmp.file("flat.npy"), f.data(), {n * k});
  REQUIRE_THROWS_WITH(nmhash::io::load_codes_npy(tmp.file("flat.npy")), Catch::Contains("must be a 2-D array"));
}

TEST_CASE("labels load as class ids or multi-hot matrices", "[io]") {
  temp_dir tmp;
  const std::vector<std::int64_t> ids{3, 1, 4};
  nmhash::io::write_npy(tmp.file("ids.npy"), ids.data(), {3});
  const auto l = nmhash::io::load_labels_npy(tmp.file("ids.npy"));
  REQUIRE_FALSE(l.is_multi());
  REQUIRE(std::vector<std::int32_t>(l.ids(), l.ids() + 3) == std::vector<std::int32_t>{3, 1, 4});
  const std::vector<float> hot{1, 0, 1, 0, 1, 0};
  nmhash::io::write_npy(tmp.file("hot.npy"), hot.data(), {2, 3});
  const auto m = nmhash::io::load_labels_npy(tmp.file("hot.npy"));
  REQUIRE(m.is_multi());
  REQUIRE(m.num_labels() == 3);
  REQUIRE(m.sets()[0] == 0b101);
  REQUIRE(m.sets()[1] == 0b010);
  const std::vector<float> bad{1, 0.5f};
  nmhash::io::write_npy(tmp.file("bad.npy"), bad.data(), {1, 2});
  REQUIRE_THROWS_WITH(nmhash::io::load_labels_npy(tmp.file("bad.npy")), Catch::Contains("must be 0 or 1, found 0.5"));
  const std::vector<float> fl{1.0f, 2.0f};
  nmhash::io::write_npy(tmp.file("fl.npy"), fl.data(), {2});
  REQUIRE_THROWS_WITH(nmhash::io::load_labels_npy(tmp.file("fl.npy")), Catch::Contains("must be integers, found float32"));
}

TEST_CASE("IDX reader reads gzip files and reports corruption", "[io]") {
  temp_dir tmp;
  auto write_gz = [](const std::string& path, const std::string& bytes) {
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(f);
  };
  const std::string header("\0\0\x08\x02\0\0\0\x02\0\0\0\x03", 12);
  write_gz(tmp.file("ok.gz"), header + "abcdef");
  const auto a = nmhash::io::read_idx(tmp.file("ok.gz"), 2);
  REQUIRE(a.shape == std::vector<std::size_t>{2, 3});
  REQUIRE(std::string(a.data.begin(), a.data.end()) == "abcdef");
  REQUIRE_THROWS_WITH(nmhash::io::read_idx(tmp.file("ok.gz"), 3), Catch::Contains("expected 3 dimensions, found 2"));
  write_gz(tmp.file("short.gz"), header + "abc");
  REQUIRE_THROWS_WITH(nmhash::io::read_idx(tmp.file("short.gz")), Catch::Contains("truncated IDX payload"));
  write_gz(tmp.file("long.gz"), header + "abcdefg");
  REQUIRE_THROWS_WITH(nmhash::io::read_idx(tmp.file("long.gz")), Catch::Contains("unexpected data after"));
  const std::string raw = read_bytes(tmp.file("ok.gz"));
  write_bytes(tmp.file("cut.gz"), raw.substr(0, raw.size() / 2));
  REQUIRE_THROWS_AS(nmhash::io::read_idx(tmp.file("cut.gz")), nmhash::error);
}

#include "nmhash/io/safetensors.hpp"

TEST_CASE("safetensors round trip and error reports", "[io]") {
  temp_dir tmp;
  const std::string f = tmp.file("w.safetensors");
  const std::vector<float> w{1.5f, -2.0f, 3.0f, 0.25f, 8.0f, -1.0f};
  const std::vector<double> b{0.5, -0.125};
  nmhash::io::tensor_map m;
  m["fc.weight"] = nmhash::io::named_tensor::from(w.data(), {2, 3});
  m["fc.bias"] = nmhash::io::named_tensor::from(b.data(), {2});
  nmhash::io::save_safetensors(f, m, {{"format", "pt"}});
  const auto r = nmhash::io::load_safetensors(f);
  REQUIRE(r.metadata.at("format") == "pt");
  std::vector<double> w2(6);
  r.at("fc.weight", {2, 3}, f).copy_to(w2.data(), 6);
  for (std::size_t i = 0; i < 6; ++i) REQUIRE(w2[i] == w[i]);
  std::vector<float> b2(2);
  r.at("fc.bias", {2}, f).copy_to(b2.data(), 2);
  REQUIRE(b2[1] == -0.125f);
  REQUIRE_THROWS_WITH(r.at("fc.weight", {3, 2}, f), Catch::Contains("has shape [2,3], expected [3,2]"));
  REQUIRE_THROWS_WITH(r.at("conv.weight", {1}, f), Catch::Contains("no tensor named 'conv.weight'"));
  // The layout: 8-byte length, JSON header padded to 8 bytes, then data.
  const std::string raw = read_bytes(f);
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = n << 8 | static_cast<unsigned char>(raw[static_cast<std::size_t>(i)]);
  REQUIRE(n % 8 == 0);
  REQUIRE(raw.size() == 8 + n + 6 * 4 + 2 * 8);
  write_bytes(f, raw.substr(0, raw.size() - 5));
  REQUIRE_THROWS_WITH(nmhash::io::load_safetensors(f), Catch::Contains("truncated file"));
  write_bytes(f, raw.substr(0, 8) + std::string(n, '{'));
  REQUIRE_THROWS_WITH(nmhash::io::load_safetensors(f), Catch::Contains("malformed safetensors header"));
  write_bytes(f, "abc");
  REQUIRE_THROWS_WITH(nmhash::io::load_safetensors(f), Catch::Contains("not a safetensors file"));
}

#include "fuzz/crafted.hpp"

namespace {

// Matches an nmhash::error whose message satisfies a string matcher.
template <class M>
class error_message : public Catch::MatcherBase<nmhash::error> {
 public:
  explicit error_message(M m) : m_(std::move(m)) {}
  bool match(const nmhash::error& e) const override { return m_.match(e.what()); }
  std::string describe() const override { return "has a message that " + m_.toString(); }

 private:
  M m_;
};

template <class M>
error_message<M> message_that(M m) {
  return error_message<M>(std::move(m));
}

}  // namespace

TEST_CASE("npy regression: shapes whose byte size overflows or whose dimension does not fit", "[io][fuzz]") {
  using Catch::Matchers::Contains;
  temp_dir tmp;
  const std::string a = tmp.file("u1_overflow.npy");
  write_bytes(a, nmhash_fuzz::npy_u1_shape_overflow());
  REQUIRE(read_bytes(a).size() == 128);
  REQUIRE_THROWS_MATCHES(nmhash::io::read_npy(a), nmhash::error,
                         message_that(Contains(a) && Contains("header field 'shape'") &&
                                      Contains("(288230376151711744, 512)") && Contains("overflows")));
  const std::string b = tmp.file("dim_2_63.npy");
  write_bytes(b, nmhash_fuzz::npy_dim_2_63());
  REQUIRE_THROWS_MATCHES(nmhash::io::read_npy(b), nmhash::error,
                         message_that(Contains(b) && Contains("header field 'shape'") &&
                                      Contains("9223372036854775808") && Contains("overflows")));
  const std::string c = tmp.file("dim_23_digits.npy");
  write_bytes(c, nmhash_fuzz::npy_dim_23_digits());
  REQUIRE_THROWS_MATCHES(nmhash::io::read_npy(c), nmhash::error,
                         message_that(Contains(c) && Contains("header field 'shape'") &&
                                      Contains("12345678901234567890123 does not fit in 64 bits")));
  const std::string d = tmp.file("zero_dim_overflow.npy");
  write_bytes(d, nmhash_fuzz::npy_zero_dim_overflow());
  REQUIRE_THROWS_MATCHES(nmhash::io::read_npy(d), nmhash::error,
                         message_that(Contains(d) && Contains("header field 'shape'") &&
                                      Contains("(0, 761517117441711744, 76151711744, 512)") && Contains("overflows")));
}

TEST_CASE("IDX regression: a 9-byte file declaring a huge 3-D payload", "[io][fuzz]") {
  using Catch::Matchers::Contains;
  temp_dir tmp;
  const std::string f = tmp.file("huge.idx3");
  write_bytes(f, nmhash_fuzz::idx_9_bytes_huge_3d());
  REQUIRE(read_bytes(f).size() == 9);
  REQUIRE_THROWS_MATCHES(nmhash::io::read_idx(f), nmhash::error,
                         message_that(Contains(f) && Contains("truncated IDX dimensions (3 declared")));
  write_bytes(f, nmhash_fuzz::idx_huge_3d_header());
  REQUIRE_THROWS_MATCHES(nmhash::io::read_idx(f), nmhash::error,
                         message_that(Contains(f) && Contains("IDX dimension 0 makes the payload larger")));
  gzFile g = gzopen(f.c_str(), "wb");
  const std::string header = nmhash_fuzz::idx_huge_3d_header();
  gzwrite(g, header.data(), static_cast<unsigned>(header.size()));
  gzclose(g);
  REQUIRE_THROWS_MATCHES(nmhash::io::read_idx(f), nmhash::error,
                         message_that(Contains(f) && Contains("IDX dimension 0 makes the payload larger")));
}

TEST_CASE("IDX regression: gzip streams declaring more than they hold, or inflating past 1 MiB", "[io][fuzz]") {
  using Catch::Matchers::Contains;
  temp_dir tmp;
  auto write_gz = [](const std::string& path, const std::string& bytes) {
    gzFile g = gzopen(path.c_str(), "wb1");
    gzwrite(g, bytes.data(), static_cast<unsigned>(bytes.size()));
    gzclose(g);
  };
  // 29 bytes of gzip declaring a 50331732-byte payload: refused without
  // allocating for the declared size.
  const std::string f = tmp.file("declares.idx1.gz");
  write_gz(f, nmhash_fuzz::idx_declares_50mb());
  REQUIRE_THROWS_MATCHES(nmhash::io::read_idx(f), nmhash::error,
                         message_that(Contains(f) && Contains("truncated")));
  write_bytes(f, nmhash_fuzz::idx_declares_50mb());
  REQUIRE_THROWS_MATCHES(nmhash::io::read_idx(f), nmhash::error,
                         message_that(Contains(f) && Contains("truncated IDX payload (expected 50331732 bytes, got 0)")));
  // 3 x 1024 x 1024 bytes, inflated in growing steps up to 1 MiB.
  std::string idx("\0\0\x08\x03\0\0\0\x03\0\0\x04\0\0\0\x04\0", 16);
  for (std::size_t i = 0; i < (std::size_t{3} << 20); ++i) idx.push_back(static_cast<char>((i * 7) ^ (i >> 12)));
  const std::string big = tmp.file("big.idx3.gz");
  write_gz(big, idx);
  const auto a = nmhash::io::read_idx(big, 3);
  REQUIRE(a.shape == std::vector<std::size_t>{3, 1024, 1024});
  REQUIRE(std::string(a.data.begin(), a.data.end()) == idx.substr(16));
  write_gz(big, idx + "x");
  REQUIRE_THROWS_MATCHES(nmhash::io::read_idx(big), nmhash::error,
                         message_that(Contains(big) && Contains("unexpected data after the IDX payload")));
}

TEST_CASE("safetensors regression: numbers of the wrong JSON type in shape and data_offsets", "[io][fuzz]") {
  using Catch::Matchers::Contains;
  temp_dir tmp;
  const std::string f = tmp.file("bad.safetensors");
  write_bytes(f, nmhash_fuzz::safetensors_float_offsets());
  REQUIRE_THROWS_MATCHES(nmhash::io::load_safetensors(f), nmhash::error,
                         message_that(Contains(f) && Contains("tensor 'w'") && Contains("field 'data_offsets'") &&
                                      Contains("9.18e+21")));
  write_bytes(f, nmhash_fuzz::safetensors_negative_shape());
  REQUIRE_THROWS_MATCHES(nmhash::io::load_safetensors(f), nmhash::error,
                         message_that(Contains(f) && Contains("tensor 'w'") && Contains("field 'shape' holds -1")));
  write_bytes(f, nmhash_fuzz::safetensors_float_shape());
  REQUIRE_THROWS_MATCHES(nmhash::io::load_safetensors(f), nmhash::error,
                         message_that(Contains(f) && Contains("tensor 'w'") && Contains("field 'shape' holds 2.5")));
}

TEST_CASE("safetensors regression: tensors sharing bytes", "[io][fuzz]") {
  using Catch::Matchers::Contains;
  temp_dir tmp;
  const std::string f = tmp.file("overlap.safetensors");
  write_bytes(f, nmhash_fuzz::safetensors_overlapping(3, 8));
  REQUIRE_THROWS_MATCHES(nmhash::io::load_safetensors(f), nmhash::error,
                         message_that(Contains(f) && Contains("tensor '1': data_offsets [0, 8] overlap those of tensor '0'")));
  write_bytes(f, nmhash_fuzz::safetensors_overlapping(790, 16384));
  REQUIRE(read_bytes(f).size() <= 65536);
  REQUIRE_THROWS_MATCHES(nmhash::io::load_safetensors(f), nmhash::error,
                         message_that(Contains(f) && Contains("data_offsets [0, 16384] overlap")));
  // Back to back, and empty tensors anywhere, are fine.
  write_bytes(f, nmhash_fuzz::safetensors_image(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                                R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},)"
                                                R"("c":{"dtype":"F64","shape":[0],"data_offsets":[2,2]}})",
                                                std::string(8, '\0')));
  REQUIRE(nmhash::io::load_safetensors(f).tensors.size() == 3);
}

TEST_CASE("safetensors regression: JSON nested 100000 deep", "[io][fuzz]") {
  using Catch::Matchers::Contains;
  temp_dir tmp;
  const std::string f = tmp.file("deep.safetensors");
  write_bytes(f, nmhash_fuzz::safetensors_deep_header(100000, true));
  REQUIRE_THROWS_MATCHES(nmhash::io::load_safetensors(f), nmhash::error,
                         message_that(Contains(f) && Contains("header is not a JSON object")));
  write_bytes(f, nmhash_fuzz::safetensors_deep_header(100000, false));
  REQUIRE_THROWS_MATCHES(nmhash::io::load_safetensors(f), nmhash::error,
                         message_that(Contains(f) && Contains("malformed safetensors header")));
  // Reported by type: dumping the value would recurse 100000 deep.
  write_bytes(f, nmhash_fuzz::safetensors_deep_field("shape", 100000));
  REQUIRE_THROWS_MATCHES(nmhash::io::load_safetensors(f), nmhash::error,
                         message_that(Contains(f) && Contains("tensor 'w'") &&
                                      Contains("field 'shape' holds a nested JSON array")));
  write_bytes(f, nmhash_fuzz::safetensors_deep_field("data_offsets", 100000));
  REQUIRE_THROWS_MATCHES(nmhash::io::load_safetensors(f), nmhash::error,
                         message_that(Contains(f) && Contains("tensor 'w'") &&
                                      Contains("field 'data_offsets' is a nested JSON array")));
}
