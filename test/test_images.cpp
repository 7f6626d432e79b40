// The data layer on files the tests write: JPEG and PNG decoding, image
// lists and their errors, CIFAR-10's binary batches, the transforms and the
// batch loader; architecture specs, --init-from loading and the encoder.
#include <catch2/catch.hpp>

#include <fstream>
#include <thread>

#include "image_data.hpp"
#include "nmhash/data/batches.hpp"
#include "nmhash/data/cifar10.hpp"
#include "nmhash/data/image.hpp"
#include "nmhash/data/image_list.hpp"
#include "nmhash/data/open.hpp"
#include "nmhash/hashing/encoder.hpp"
#include "nmhash/hashing/nm_layer.hpp"
#include "nmhash/nn/arch.hpp"
#include "nmhash/nn/serialize.hpp"
#include "nmhash/nn/lenet.hpp"
#include "temp_dir.hpp"

namespace d = nmhash::data;

namespace {

d::image8 noise_image(std::size_t c, std::size_t h, std::size_t w, std::uint64_t seed) {
  std::mt19937_64 g(seed);
  d::image8 img;
  img.resize(c, h, w);
  for (auto& p : img.pixels) p = static_cast<std::uint8_t>(g() % 256);
  return img;
}

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

}  // namespace

TEST_CASE("PNG decodes exactly, grey and RGB", "[images]") {
  temp_dir tmp;
  for (std::size_t c : {1u, 3u}) {
    const auto img = noise_image(c, 13, 17, c);
    test_images::write_png(tmp.file("a.png"), img);
    d::image8 out;
    d::load_image(tmp.file("a.png"), out);
    REQUIRE(out.channels == c);
    REQUIRE(out.height == 13);
    REQUIRE(out.width == 17);
    REQUIRE(out.pixels == img.pixels);
  }
}

TEST_CASE("JPEG decodes grey and RGB close to the source", "[images]") {
  temp_dir tmp;
  for (std::size_t c : {1u, 3u}) {
    auto img = test_images::pattern_image({1, 1, 0}, 24, c, *std::make_unique<std::mt19937_64>(3));
    test_images::write_jpeg(tmp.file("a.jpg"), img, 100);
    d::image8 out;
    d::load_image(tmp.file("a.jpg"), out);
    REQUIRE(out.channels == c);
    REQUIRE(out.height == 24);
    REQUIRE(out.width == 24);
    double err = 0;
    for (std::size_t i = 0; i < img.pixels.size(); ++i) err += std::abs(int(img.pixels[i]) - int(out.pixels[i]));
    REQUIRE(err / static_cast<double>(img.pixels.size()) < 3.0);
  }
}

TEST_CASE("Corrupt, truncated and foreign image files are refused by name", "[images]") {
  temp_dir tmp;
  const auto img = test_images::pattern_image({1, 0, 1}, 32, 3, *std::make_unique<std::mt19937_64>(1));
  const auto jpg = test_images::jpeg_bytes(img);
  d::image8 out;
  const std::string cut(reinterpret_cast<const char*>(jpg.data()), jpg.size() / 2);
  write_bytes(tmp.file("cut.jpg"), cut);
  REQUIRE_THROWS_WITH(d::load_image(tmp.file("cut.jpg"), out), Catch::Contains("cut.jpg: corrupt JPEG"));
  test_images::write_png(tmp.file("a.png"), img);
  const std::string png = read_bytes(tmp.file("a.png"));
  write_bytes(tmp.file("cut.png"), png.substr(0, png.size() / 2));
  REQUIRE_THROWS_WITH(d::load_image(tmp.file("cut.png"), out), Catch::Contains("cut.png: corrupt PNG"));
  write_bytes(tmp.file("text.png"), "GIF89a this is not a PNG");
  REQUIRE_THROWS_WITH(d::load_image(tmp.file("text.png"), out), Catch::Contains("text.png: not a JPEG or PNG file"));
  // A PNG header declaring 2^31 x 2^31 pixels.
  std::string huge = png.substr(0, 33);
  for (int i : {16, 20}) {
    huge[i] = 0x7f;
    huge[i + 1] = huge[i + 2] = huge[i + 3] = char(0xff);
  }
  write_bytes(tmp.file("huge.png"), huge);
  REQUIRE_THROWS_WITH(d::load_image(tmp.file("huge.png"), out), Catch::Contains("huge.png"));
  REQUIRE_THROWS_WITH(d::load_image(tmp.file("missing.png"), out), Catch::Contains("missing.png: cannot open"));
}

TEST_CASE("Grey feeds RGB by repetition and RGB feeds grey by ITU-R 601-2 luma", "[images]") {
  d::image8 rgb;
  rgb.resize(3, 1, 2);
  rgb.pixels = {255, 0, 0, 10, 200, 30};
  d::image8 grey, back;
  d::convert_channels(rgb, 1, grey);
  REQUIRE(grey.pixels == std::vector<std::uint8_t>{76, 124});  // (299*255 + 500)/1000, (2990 + 117400 + 3420 + 500)/1000
  d::convert_channels(grey, 3, back);
  REQUIRE(back.pixels == std::vector<std::uint8_t>{76, 76, 76, 124, 124, 124});
}

TEST_CASE("Image lists: labels, classes and the T'/V division", "[images][lists]") {
  temp_dir tmp;
  test_images::synthetic_options o;
  test_images::write_synthetic_list_dataset(tmp.file("single"), o);
  const auto s = d::image_list_dataset(tmp.file("single"));
  REQUIRE(s.train.size() == 48);
  REQUIRE(s.database.size() == 60);
  REQUIRE(s.query.size() == 24);
  REQUIRE(s.validation.size() == 1);  // every 25th of 48
  REQUIRE(s.train_nm.size() == 47);
  REQUIRE_FALSE(s.pool->labels().is_multi());
  REQUIRE(s.pool->num_classes() == 3);
  REQUIRE(s.pool->labels().ids()[4] == 1);
  o.multi = true;
  o.classes = 4;
  test_images::write_synthetic_list_dataset(tmp.file("multi"), o);
  const auto m = d::image_list_dataset(tmp.file("multi"));
  REQUIRE(m.pool->labels().is_multi());
  REQUIRE(m.pool->labels().num_labels() == 4);
  d::image8 img;
  m.pool->decode(m.query.back(), img);
  REQUIRE(img.channels == 3);
  REQUIRE(img.height == 20);
  REQUIRE_NOTHROW(static_cast<const d::image_list_source&>(*m.pool).verify());
  // Through the data set names of the tools.
  REQUIRE(d::open_dataset("list:" + tmp.file("multi")).pool->size() == 132);
  REQUIRE_THROWS_WITH(d::open_dataset("lists:" + tmp.file("multi")), Catch::Contains("expected fmnist-dpsh"));
}

TEST_CASE("Bad image lists name the list file and line", "[images][lists]") {
  temp_dir tmp;
  test_images::synthetic_options o;
  o.train = 4;
  o.database = 4;
  o.test = 2;
  const std::string dir = tmp.file("ds");
  test_images::write_synthetic_list_dataset(dir, o);
  const std::string good = read_bytes(dir + "/train.txt");
  auto expect = [&](const std::string& train_txt, const std::string& what) {
    write_text(dir + "/train.txt", train_txt);
    REQUIRE_THROWS_WITH(d::image_list_dataset(dir), Catch::Contains(what));
  };
  expect(good + "images/0.png 0 1\n", "train.txt:5: 2 labels, expected 3 as on " + dir + "/train.txt:1");
  expect(good + "images/0.png 0 2 0\n", "train.txt:5: label 2 is '2', expected 0 or 1");
  expect(good + "images/0.png\n", "train.txt:5: 'images/0.png' has no label vector");
  expect("\n\n", "train.txt: the list holds no image");
  expect(good + "images/0.png 1 0 0\n", "train.txt:5: 'images/0.png' is already listed on line 1");
  expect(good + "images/none.png 1 0 0\n", "train.txt:5: image 'images/none.png' not found");
  // Label vectors must agree across files too.
  write_text(dir + "/train.txt", good);
  const std::string db = read_bytes(dir + "/database.txt");
  write_text(dir + "/database.txt", db + "images/0.png 1 0 0 0\n");
  REQUIRE_THROWS_WITH(d::image_list_dataset(dir), Catch::Contains("database.txt:5: 4 labels, expected 3 as on"));
  write_text(dir + "/database.txt", db);
  // A corrupt image is reported with its list line when decoded.
  write_bytes(dir + "/images/1.jpg", "\xff\xd8\xff garbage");
  const auto s = d::image_list_dataset(dir);
  REQUIRE_THROWS_WITH(static_cast<const d::image_list_source&>(*s.pool).verify(),
                      Catch::Contains("train.txt:2: ") && Catch::Contains("1.jpg"));
}

TEST_CASE("CIFAR-10 binary batches: pixel layout, labels and the DPSH split", "[images][cifar]") {
  temp_dir tmp;
  // Image i of the pool has label i % 10 and pixel (y, x) of plane c equal
  // to (i + 3 c + y + x) % 256.
  test_images::write_cifar10_batches(tmp.path.string(), [](std::size_t i, std::size_t c, std::size_t p) {
    return (i + 3 * c + p / 32 + p % 32) % 256;
  });
  auto record = [](std::size_t label) {  // a record of label `label`, pixels 0
    std::string r(d::cifar10_record, '\0');
    r[0] = static_cast<char>(label);
    return r;
  };
  const auto s = d::cifar10_dpsh(tmp.path.string());
  REQUIRE(s.pool->size() == 60000);
  REQUIRE(s.query.size() == 1000);
  REQUIRE(s.query.front() == 50000);
  REQUIRE(s.train.size() == 5000);
  REQUIRE(s.database.size() == 59000);
  REQUIRE(s.validation.size() == 200);
  d::image8 img;
  s.pool->decode(12345, img);
  REQUIRE(img.channels == 3);
  REQUIRE(img.at(2, 5, 1) == (12345 + 3 + 2 + 5) % 256);
  REQUIRE(s.pool->labels().ids()[12345] == 5);
  // A truncated batch and a label outside 0..9.
  write_bytes(tmp.file("test_batch.bin"), record(0).substr(0, 100));
  REQUIRE_THROWS_WITH(d::cifar10_dpsh(tmp.path.string()),
                      Catch::Contains("test_batch.bin: 100 bytes is not a whole number of CIFAR-10 records"));
  std::string bad = record(0);
  bad[0] = 10;
  write_bytes(tmp.file("test_batch.bin"), bad);
  REQUIRE_THROWS_WITH(d::cifar10_dpsh(tmp.path.string()), Catch::Contains("record 0 has label 10"));
}

TEST_CASE("The fmnist transform through the batch loader equals gather_images bit for bit", "[images][loader]") {
  d::image_pool pool;
  std::mt19937_64 g(4);
  for (int i = 0; i < 40; ++i) {
    pool.labels.push_back(i % 10);
    for (int p = 0; p < 28 * 28; ++p) pool.pixels.push_back(static_cast<std::uint8_t>(g() % 256));
  }
  auto src = std::make_shared<d::memory_source>(d::image_shape{1, 28, 28}, pool.pixels,
                                                nmhash::labels::single(pool.labels), 10);
  const d::batch_loader<float> loader(src, d::fmnist_transform());
  const std::vector<std::size_t> ids = {3, 17, 0, 39, 8};
  nmhash::tensor<float> a, b;
  d::gather_images(pool, ids, 1, 4, a);
  loader.load(ids, 1, 4, b, true, 7, 3);  // no augmentation in this transform
  REQUIRE(a.shape() == b.shape());
  REQUIRE(std::equal(a.data(), a.data() + a.size(), b.data()));
}

TEST_CASE("Random crop and flip are functions of (seed, epoch, image), whatever the threads", "[images][loader]") {
  std::vector<std::uint8_t> px;
  for (int i = 0; i < 6; ++i)
    for (int p = 0; p < 12 * 12 * 3; ++p) px.push_back(static_cast<std::uint8_t>((p * 7 + i * 13) % 256));
  auto src = std::make_shared<d::memory_source>(d::image_shape{3, 12, 12}, px,
                                                nmhash::labels::single({0, 1, 0, 1, 0, 1}), 2);
  d::transform_options t;
  t.channels = 3;
  t.height = t.width = 8;
  t.random_crop = t.flip = true;
  const std::vector<std::size_t> ids = {0, 1, 2, 3, 4, 5};
  nmhash::tensor<float> one, many, other_epoch, eval;
  d::batch_loader<float>(src, t, nmhash::threads{1}).load(ids, 0, 6, one, true, 9, 2);
  d::batch_loader<float>(src, t, nmhash::threads{2}).load(ids, 0, 6, many, true, 9, 2);
  REQUIRE(std::equal(one.data(), one.data() + one.size(), many.data()));
  d::batch_loader<float>(src, t).load(ids, 0, 6, other_epoch, true, 9, 3);
  REQUIRE_FALSE(std::equal(one.data(), one.data() + one.size(), other_epoch.data()));
  // Evaluation: the centre crop, no flip.
  d::batch_loader<float>(src, t).load(ids, 0, 1, eval);
  d::image8 img;
  src->decode(0, img);
  for (std::size_t y = 0; y < 8; ++y)
    for (std::size_t x = 0; x < 8; ++x) REQUIRE(eval[(0 * 8 + y) * 8 + x] == static_cast<float>(img.at(y + 2, x + 2, 0)) / 255.0f);
}

TEST_CASE("Resizing keeps a flat image flat and averages when shrinking", "[images][loader]") {
  d::image8 flat, out;
  flat.resize(3, 30, 40);
  std::fill(flat.pixels.begin(), flat.pixels.end(), std::uint8_t{93});
  d::resize_shorter_edge(flat, 12, out);
  REQUIRE(out.height == 12);
  REQUIRE(out.width == 16);
  for (auto p : out.pixels) REQUIRE(p == 93);
  d::image8 checker;
  checker.resize(1, 16, 16);
  for (std::size_t y = 0; y < 16; ++y)
    for (std::size_t x = 0; x < 16; ++x) checker.pixels[y * 16 + x] = (x + y) % 2 ? 200 : 0;
  d::resize_image(checker, 4, 4, out);
  for (auto p : out.pixels) REQUIRE(std::abs(int(p) - 100) <= 2);
}

TEST_CASE("Architecture specs: the lenet preset is build_lenet, bad specs name the layer", "[arch]") {
  nmhash::nn::sequential<float> a, b;
  nmhash::nn::build_lenet<float>(a, 24, 4);
  nmhash::nn::build_hashing_network<float>(b, *nmhash::nn::find_architecture("lenet"), 24, 4);
  a.initialize(3);
  b.initialize(3);
  REQUIRE(a.parameters().size() == b.parameters().size());
  REQUIRE(std::equal(a.parameters().begin(), a.parameters().end(), b.parameters().begin()));
  nmhash::nn::sequential<float> cnnf;
  nmhash::nn::build_hashing_network<float>(cnnf, *nmhash::nn::find_architecture("cnnf"), 48, 1);
  REQUIRE(cnnf.output_shape()[1] == 48);
  REQUIRE(cnnf.at(16).parameter_layout().front().second == std::vector<std::size_t>{4096, 6400});
  nmhash::nn::sequential<float> cifar;
  nmhash::nn::build_hashing_network<float>(cifar, *nmhash::nn::find_architecture("cifar"), 12, 2);
  REQUIRE(cifar.output_shape()[1] == 12);
  auto fails = [](const std::string& layers, std::size_t hw, const std::string& what) {
    nmhash::nn::sequential<float> n;
    REQUIRE_THROWS_WITH(nmhash::nn::build_hashing_network<float>(n, {"custom", layers, 3, hw, hw}, 8, 1),
                        Catch::Contains(what));
  };
  fails("conv3-8,relu,fc10", 8, "layer 2 'fc10': a fully connected layer needs a flatten before it");
  fails("conv9-8,flatten", 8, "layer 0 'conv9-8': kernel 9 on a 8 x 8 input");
  fails("conv3x-8,flatten", 8, "layer 'conv3x-8': expected conv<K>[s<S>][p<P>]-<OUT>");
  fails("pool2,flatten", 8, "expected one of conv, bn, relu, maxpool, avgpool, res, bottle, lrn, dropout, flatten, fc");
  fails("maxpool3p2,flatten", 8, "maxpool<K>[s<S>][p<P>] with P at most K / 2");
  fails("conv3-8nx,flatten", 8, "layer 'conv3-8nx': expected conv<K>[s<S>][p<P>]-<OUT>[nb]");
  fails("a=conv3-8,a=relu,flatten", 8, "layer 1 'a=relu': the name 'a' is taken by an earlier layer");
  fails("x y=conv3-8,flatten", 8, "a name is letters, digits, '_' and inner '.'");
  fails("flatten,res8", 8, "layer 1 'res8' follows a flatten");
  // Named layers name their tensors (and the hashing layer "hash"), as
  // torchvision's ResNets do.
  nmhash::nn::sequential<float> r18;
  nmhash::nn::build_hashing_network<float>(r18, {"r", nmhash::nn::find_architecture("resnet18")->layers, 3, 64, 64}, 16, 1);
  REQUIRE(r18.output_shape()[1] == 16);
  const auto names = nmhash::nn::parameter_tensors(r18);
  for (const char* name : {"conv1.weight", "bn1.running_var", "layer1.0.conv1.weight", "layer2.0.downsample.0.weight",
                           "layer4.1.bn2.bias", "hash.weight", "hash.bias"}) {
    INFO(name);
    REQUIRE(names.count(name) == 1);
  }
  REQUIRE(names.count("conv1.bias") == 0);
  REQUIRE(names.count("layer1.0.downsample.0.weight") == 0);
  // 11,176,512 parameters (torchvision's resnet18 without its classifier)
  // and the 512 x 16 hashing layer.
  REQUIRE(r18.parameters().size() == 11176512 + 512 * 16 + 16);
  const auto plan = nmhash::nn::plan_hashing_network({"r", nmhash::nn::find_architecture("resnet18")->layers, 3, 64, 64}, 16);
  REQUIRE(plan.parameters.size() == names.size());
  for (const auto& [name, shape] : plan.parameters) REQUIRE(names.at(name).shape == shape);
  fails("dropout1.5,flatten", 8, "dropout<P> with 0 <= P < 1");
  fails("conv3-8,relu", 8, "the backbone must end flat");
}

TEST_CASE("load_matching_parameters loads matching tensors and reports the rest", "[arch]") {
  nmhash::nn::sequential<float> src, dst;
  nmhash::nn::build_hashing_network<float>(src, {"custom", "conv3-4,relu,flatten,fc16,relu", 3, 8, 8}, 12, 1);
  nmhash::nn::build_hashing_network<float>(dst, {"custom", "conv3-4,relu,flatten,fc16,relu", 3, 8, 8}, 20, 1);
  src.initialize(1);
  dst.initialize(2);
  auto tensors = nmhash::nn::parameter_tensors(src);
  const float extra[2] = {1, 2};
  tensors.emplace("classifier.weight", nmhash::io::named_tensor::from(extra, {2}));
  nmhash::io::safetensors_file f;
  f.tensors = std::move(tensors);
  const auto r = nmhash::nn::load_matching_parameters(f, dst);
  auto loaded = r.loaded;
  std::sort(loaded.begin(), loaded.end());
  REQUIRE(loaded == std::vector<std::string>{"0.bias", "0.weight", "3.bias", "3.weight"});
  REQUIRE(r.skipped.size() == 3);
  const auto has = [&](const std::string& what) {
    return std::any_of(r.skipped.begin(), r.skipped.end(), [&](const std::string& s) { return s.find(what) != std::string::npos; });
  };
  REQUIRE(has("5.bias: shape [12] in the file, [20] in the network"));
  REQUIRE(has("5.weight: shape [12,16] in the file, [20,16] in the network"));
  REQUIRE(has("classifier.weight: the network has no such parameter"));
  REQUIRE(std::equal(dst.parameters().begin(), dst.parameters().begin() + 4 * 27 + 4, src.parameters().begin()));
}

TEST_CASE("The encoder restores batch-norm statistics in every network it makes, from several threads", "[encoder]") {
  temp_dir tmp;
  const nmhash::nn::architecture arch{"custom", "conv3p1-6,bn,relu,maxpool2,flatten,fc24,bn,relu", 3, 12, 12};
  nmhash::nn::sequential<float> net;
  nmhash::nn::build_hashing_network<float>(net, arch, 10, 1);
  net.initialize(6);
  // Statistics far from the defaults, so that defaults would change codes.
  for (std::size_t i = 0; i < net.size(); ++i)
    for (const auto& [name, buf] : net.at(i).buffers())
      for (std::size_t c = 0; c < buf->size(); ++c) (*buf)[c] = name == "running_mean" ? 0.3f * float(c % 3) : 2.0f + float(c % 5);
  nmhash::hashing::model_description md;
  md.arch = arch;
  md.b_in = 10;
  md.transform.channels = 3;
  md.transform.height = md.transform.width = 12;
  md.transform.mean = {0.5f, 0.5f, 0.5f};
  md.transform.stddev = {0.25f, 0.25f, 0.25f};
  {
    nmhash::io::atomic_file f(tmp.file("model.safetensors"));
    nmhash::hashing::write_model(f, net, nmhash::hashing::neuron_partition(10), md);
    f.commit();
  }
  nmhash::hashing::encoder<float> enc(tmp.file("model.safetensors"));
  std::vector<d::image8> images;
  for (int i = 0; i < 16; ++i) images.push_back(noise_image(3, 12, 12, 200 + i));
  nmhash::tensor<float> x(nmhash::shape4{16, 3, 12, 12});
  d::image8 work[2];
  for (int i = 0; i < 16; ++i) d::transform_image(images[i], md.transform, false, 0, x.data() + i * 432, work, "");
  const auto expect = nmhash::pack_signs(net.forward(x, false).data(), 16, 10);
  nmhash::packed_codes c1, c2;
  std::thread t1([&] { c1 = enc.encode(images); }), t2([&] { c2 = enc.encode(images); });
  t1.join();
  t2.join();
  for (const auto* c : {&c1, &c2}) REQUIRE(std::equal(c->data(), c->data() + 16 * c->words_per_code(), expect.data()));
}

TEST_CASE("The encoder rebuilds a model from its file and encodes like the network, from several threads",
          "[encoder]") {
  temp_dir tmp;
  const nmhash::nn::architecture arch{"custom", "conv3p1-6,relu,maxpool2,flatten,fc24,relu", 3, 12, 12};
  nmhash::nn::sequential<float> net;
  nmhash::nn::build_hashing_network<float>(net, arch, 10, 1);
  net.initialize(5);
  // Nodes {0, 3, 7} {1} {2, 9} {4, 5} {6} {8}.
  const auto grouping =
      nmhash::hashing::neuron_partition::from_groups(10, {{0, 3, 7}, {1}, {2, 9}, {4, 5}, {6}, {8}});
  nmhash::hashing::model_description md;
  md.arch = arch;
  md.b_in = 10;
  md.transform.channels = 3;
  md.transform.height = md.transform.width = 12;
  md.transform.mean = {0.5f, 0.4f, 0.3f};
  md.transform.stddev = {0.2f, 0.25f, 0.3f};
  {
    nmhash::io::atomic_file f(tmp.file("model.safetensors"));
    nmhash::hashing::write_model(f, net, grouping, md);
    f.commit();
  }
  nmhash::hashing::encoder<float> enc(tmp.file("model.safetensors"));
  REQUIRE(enc.bits() == 6);
  std::vector<d::image8> images;
  for (int i = 0; i < 20; ++i) images.push_back(noise_image(3, 12, 12, 100 + i));
  const auto codes = enc.encode(images);
  // The reference: transform, forward, sign, majority vote.
  nmhash::tensor<float> x(nmhash::shape4{20, 3, 12, 12});
  d::image8 work[2];
  for (int i = 0; i < 20; ++i) d::transform_image(images[i], md.transform, false, 0, x.data() + i * 432, work, "");
  const auto& y = net.forward(x, false);
  const auto expect = nmhash::merge_majority(nmhash::pack_signs(y.data(), 20, 10), grouping.groups());
  REQUIRE(codes.size() == 20);
  for (std::size_t i = 0; i < 20; ++i)
    for (std::size_t k = 0; k < 6; ++k) REQUIRE(codes.bit(i, k) == expect.bit(i, k));
  nmhash::packed_codes c1, c2;
  std::thread t1([&] { c1 = enc.encode(images); }), t2([&] { c2 = enc.encode(images); });
  t1.join();
  t2.join();
  REQUIRE(std::equal(c1.data(), c1.data() + 20 * c1.words_per_code(), codes.data()));
  REQUIRE(std::equal(c2.data(), c2.data() + 20 * c2.words_per_code(), codes.data()));
  // With the summed_output tie rule the file says so and the encoder follows
  // it: the nodes {2, 9} and {4, 5} tie on some images.
  md.tie = nmhash::hashing::vote_tie::summed_output;
  {
    nmhash::io::atomic_file f(tmp.file("model-sum.safetensors"));
    nmhash::hashing::write_model(f, net, grouping, md);
    f.commit();
  }
  nmhash::hashing::encoder<float> enc_sum(tmp.file("model-sum.safetensors"));
  REQUIRE(enc_sum.description().tie == nmhash::hashing::vote_tie::summed_output);
  REQUIRE(enc.description().tie == nmhash::hashing::vote_tie::first_child);
  const auto codes_sum = enc_sum.encode(images);
  nmhash::hashing::nm_layer<float> nm(grouping);
  nm.set_tie(nmhash::hashing::vote_tie::summed_output);
  nmhash::tensor<float> y_copy(y.shape());
  std::copy(y.data(), y.data() + y.size(), y_copy.data());
  const auto expect_sum = nm.encode(y_copy);
  std::size_t differ = 0;
  for (std::size_t i = 0; i < 20; ++i)
    for (std::size_t k = 0; k < 6; ++k) {
      REQUIRE(codes_sum.bit(i, k) == expect_sum.bit(i, k));
      differ += codes_sum.bit(i, k) != codes.bit(i, k);
    }
  REQUIRE(differ > 0);
  {
    auto f = nmhash::io::load_safetensors(tmp.file("model-sum.safetensors"));
    f.metadata["vote_tie"] = "coin";
    nmhash::io::save_safetensors(tmp.file("model-bad.safetensors"), f.tensors, f.metadata);
  }
  REQUIRE_THROWS_WITH(nmhash::hashing::encoder<float>(tmp.file("model-bad.safetensors")),
                      Catch::Contains("metadata field 'vote_tie' is 'coin'"));
  // A weights file without the model metadata is not a model.
  nmhash::nn::save_parameters(tmp.file("weights.safetensors"), net);
  REQUIRE_THROWS_WITH(nmhash::hashing::encoder<float>(tmp.file("weights.safetensors")),
                      Catch::Contains("metadata field 'format' is missing"));
}
