// The model file (safetensors): a bit-exact round trip, PyTorch's [out, in] layout on disk, and every
// malformed file rejected with a digits::Error that says what was wrong — never a crash.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "digits/error.hpp"
#include "digits/model_file.hpp"
#include "digits/network.hpp"

using namespace digits;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::string kSource = "test-model.safetensors";

// A small network with every weight and bias distinct and nonzero, so a swapped, transposed or
// dropped value changes something.
Network sample_network(std::vector<int> sizes = {12, 7, 5, 3}, Activation hidden = Activation::tanh, float input_scale = 1.0f / 255.0f) {
  Network network(std::move(sizes), hidden, input_scale);
  network.initialize(Init::xavier, 42);
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  for (Layer& any : network.layers) {
    DenseLayer& layer = std::get<DenseLayer>(any);
    for (Eigen::Index j = 0; j < layer.b.size(); ++j) layer.b(j) = normal(rng);
  }
  return network;
}

Metadata sample_metadata() {
  return {{"training.preset", "fast"}, {"training.seed", "1"}, {"accuracy.test", "97.50"}, {"created", "2025-01-01T00:00:00Z"},
          {"dataset.sha256.t10k-images-idx3-ubyte", std::string(64, 'a')}, {"note", "ünïcode ✓ and \"quotes\""}};
}

Model parse(const std::string& bytes, const std::string& source = kSource) {
  return parse_model({reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size()}, source);
}

// A file taken apart: its JSON header and its data section.
struct Parts {
  json header;
  std::string data;
};

Parts split(const std::string& bytes) {
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  return {json::parse(bytes.substr(8, n)), bytes.substr(8 + n)};
}

std::string with_header_text(const std::string& header_text, const std::string& data) {
  std::string bytes(8, '\0');
  const std::uint64_t n = header_text.size();
  std::memcpy(bytes.data(), &n, 8);
  return bytes + header_text + data;
}

std::string join(const Parts& parts) { return with_header_text(parts.header.dump(), parts.data); }

// Runs f, which must throw digits::Error; returns its message.
template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-digits exception: " << e.what();
    return {};
  }
  ADD_FAILURE() << "did not throw";
  return {};
}

std::string parse_error(const std::string& bytes) { return error_of([&] { parse(bytes); }); }

// The message of parsing the sample model after `edit` changed its header and data.
template <typename Edit>
std::string error_after(Edit edit) {
  Parts parts = split(serialize_model(sample_network(), sample_metadata()));
  edit(parts);
  return parse_error(join(parts));
}

#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << "message: " << (text) << "\nexpected to contain: " << (part)

void expect_bit_identical(const Network& a, const Network& b) {
  ASSERT_EQ(a.sizes(), b.sizes());
  EXPECT_EQ(a.hidden_activation(), b.hidden_activation());
  EXPECT_EQ(std::memcmp(&a.input_scale, &b.input_scale, sizeof(float)), 0) << a.input_scale << " vs " << b.input_scale;
  ASSERT_EQ(a.architecture(), b.architecture());
  EXPECT_EQ(a.input_shape(), b.input_shape());
  for (std::size_t i = 0; i < a.layers.size(); ++i) {
    ASSERT_EQ(a.layers[i].index(), b.layers[i].index()) << "kind of layer " << i;
    const ConstParameters x = parameters(a.layers[i]), y = parameters(b.layers[i]);
    if (!x.W) continue;
    ASSERT_EQ(x.W->size(), y.W->size());
    EXPECT_EQ(std::memcmp(x.W->data(), y.W->data(), sizeof(float) * static_cast<std::size_t>(x.W->size())), 0) << "W of layer " << i;
    EXPECT_EQ(std::memcmp(x.b->data(), y.b->data(), sizeof(float) * static_cast<std::size_t>(x.b->size())), 0) << "b of layer " << i;
  }
}

Matrix sample_pixels(int rows, int features) {
  Matrix pixels(rows, features);
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> uniform(0.0f, 255.0f);
  for (Eigen::Index i = 0; i < pixels.size(); ++i) pixels.data()[i] = uniform(rng);
  return pixels;
}

// A test of behaviour that src/ does not have yet: skipped, with the reason, unless
// DIGITS_KNOWN_BUGS=1 is set (run it that way after fixing, then remove the KNOWN_BUG line).
#define KNOWN_BUG(why)                                                        \
  do {                                                                        \
    const char* run_anyway = std::getenv("DIGITS_KNOWN_BUGS");                \
    if (!run_anyway || std::string(run_anyway) != "1") GTEST_SKIP() << why;   \
  } while (false)

class TempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("digits-model-" + std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  fs::path dir;
};

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

// ---- round trip and layout ----

using ModelFileOnDisk = TempDir;

TEST_F(ModelFileOnDisk, SaveThenLoadIsBitExactWithMetadataAndPredictions) {
  for (Activation hidden : {Activation::relu, Activation::sigmoid, Activation::tanh}) {
    const Network original = sample_network({20, 9, 6, 4}, hidden, 0.00392156886f);
    const fs::path path = dir / "model.safetensors";
    save_model(path, original, sample_metadata());
    const Model loaded = load_model(path);
    expect_bit_identical(original, loaded.network);

    for (const auto& [key, value] : sample_metadata()) {
      ASSERT_TRUE(loaded.metadata.contains(key)) << key;
      EXPECT_EQ(loaded.metadata.at(key), value) << key;
    }
    EXPECT_EQ(loaded.metadata.at("format"), "digits-mlp");
    EXPECT_EQ(loaded.metadata.at("format_version"), "1");
    EXPECT_EQ(loaded.metadata.at("architecture"), "20,9,6,4");
    EXPECT_EQ(loaded.metadata.at("hidden_activation"), std::string(activation_name(hidden)));
    EXPECT_EQ(loaded.metadata.at("output"), "softmax");
    EXPECT_TRUE(loaded.extra.empty());

    const Matrix pixels = sample_pixels(5, 20);
    const Matrix p = original.predict_proba(pixels), q = loaded.network.predict_proba(pixels);
    ASSERT_EQ(p.size(), q.size());
    EXPECT_EQ(std::memcmp(p.data(), q.data(), sizeof(float) * static_cast<std::size_t>(p.size())), 0);
    EXPECT_EQ(original.predict(pixels), loaded.network.predict(pixels));

    // Saving what was loaded gives the same bytes again.
    EXPECT_EQ(serialize_model(loaded.network, loaded.metadata), read_bytes(path));
  }
}

TEST_F(ModelFileOnDisk, MetadataAloneReadsOnlyTheHeader) {
  const fs::path path = dir / "model.safetensors";
  save_model(path, sample_network(), sample_metadata());
  const Metadata full = load_model(path).metadata;
  // Truncate the weights: the header alone is still enough for the metadata, not for a model.
  std::string bytes = read_bytes(path);
  bytes.resize(bytes.size() - 40);
  write_bytes(path, bytes);
  EXPECT_EQ(load_model_metadata(path), full);
  EXPECT_THROW(load_model(path), Error);
  // A header that is not ours is refused the same way as by load_model.
  write_bytes(path, "not a model at all");
  try {
    load_model_metadata(path);
    FAIL() << "read the metadata of a file that is not a model";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path.string()), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_model_metadata(dir / "absent.safetensors"), Error);
}

TEST_F(ModelFileOnDisk, SavingOverAFolderOrAPipeIsRefusedAndLeavesItAlone) {
  // The atomic rename would replace whatever has the name; run as root, `--out /dev/null` once
  // turned the device into a regular file. A pipe stands in for the device here.
  const Network network = sample_network({20, 9, 4}, Activation::relu, 1.0f);
  const fs::path pipe = dir / "pipe";
  ASSERT_EQ(::mkfifo(pipe.c_str(), 0600), 0);
  fs::create_directories(dir / "folder");
  for (const fs::path& path : {pipe, dir / "folder"}) {
    try {
      save_model(path, network, sample_metadata());
      ADD_FAILURE() << path << " was replaced";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("is not a regular file"), std::string::npos) << e.what();
    }
  }
  EXPECT_TRUE(fs::is_fifo(pipe));
  EXPECT_TRUE(fs::is_directory(dir / "folder"));
  // A regular file is replaced as before.
  write_bytes(dir / "old.safetensors", "old");
  save_model(dir / "old.safetensors", network, sample_metadata());
  EXPECT_EQ(load_model(dir / "old.safetensors").network.sizes(), network.sizes());
}

TEST(ModelFile, InputScaleRoundTripsForAwkwardValues) {
  for (float scale : {1.0f, 1.0f / 255.0f, 0.1f, 3.0e-7f, 1.17549435e-38f, 123456.789f}) {
    const Model loaded = parse(serialize_model(sample_network({4, 3, 2}, Activation::relu, scale), {}));
    EXPECT_EQ(std::memcmp(&loaded.network.input_scale, &scale, sizeof(float)), 0) << scale << " became " << loaded.network.input_scale;
  }
}

TEST(ModelFile, NetworkKeysOverrideTheGivenMetadata) {
  const Metadata lying = {{"format", "other"}, {"architecture", "1,2"}, {"hidden_activation", "sigmoid"}, {"input_scale", "9"}};
  const Model loaded = parse(serialize_model(sample_network(), lying));
  EXPECT_EQ(loaded.metadata.at("format"), "digits-mlp");
  EXPECT_EQ(loaded.metadata.at("architecture"), "12,7,5,3");
  EXPECT_EQ(loaded.metadata.at("hidden_activation"), "tanh");
  EXPECT_FLOAT_EQ(loaded.network.input_scale, 1.0f / 255.0f);
}

TEST(ModelFile, ExtraOptimizerTensorsRoundTrip) {
  const std::vector<NamedTensor> extra = {{"optimizer.fc1.weight.m", {7, 12}, std::vector<float>(84, 0.25f)},
                                          {"optimizer.fc1.bias.m", {7}, {1, 2, 3, 4, 5, 6, 7}}};
  const Model loaded = parse(serialize_model(sample_network(), {}, extra));
  ASSERT_EQ(loaded.extra.size(), 2u);
  for (const NamedTensor& want : extra) {
    const auto it = std::find_if(loaded.extra.begin(), loaded.extra.end(), [&](const NamedTensor& t) { return t.name == want.name; });
    ASSERT_NE(it, loaded.extra.end()) << want.name;
    EXPECT_EQ(it->shape, want.shape);
    EXPECT_EQ(it->values, want.values);
  }
}

TEST(ModelFile, ExtraTensorsMustBeNamedOptimizer) {
  const std::string message = error_of([] { serialize_model(sample_network(), {}, {{"fc9.weight", {1}, {1.0f}}}); });
  EXPECT_CONTAINS(message, "fc9.weight");
  EXPECT_CONTAINS(message, "optimizer.");
}

TEST(ModelFile, LayoutIsLittleEndianHeaderLengthThenAlignedJsonThenData) {
  const Network network = sample_network();
  const std::string bytes = serialize_model(network, sample_metadata());
  std::uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(i)]);  // little-endian by hand
  ASSERT_LE(8 + n, bytes.size());
  EXPECT_EQ((8 + n) % 8, 0u) << "data should start 8-byte aligned";
  EXPECT_EQ(bytes[8], '{');
  const json header = json::parse(bytes.substr(8, n));
  EXPECT_TRUE(header.at("__metadata__").is_object());
  // Exactly the network's tensors, contiguous from 0 to the end of the file.
  std::size_t parameters = 0;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    EXPECT_EQ(entry.at("dtype"), "F32") << name;
    const std::uint64_t begin = entry.at("data_offsets")[0], end = entry.at("data_offsets")[1];
    std::uint64_t count = 1;
    for (const json& d : entry.at("shape")) count *= d.get<std::uint64_t>();
    EXPECT_EQ(end - begin, 4 * count) << name;
    parameters += count;
  }
  EXPECT_EQ(header.size(), 1 + 2 * network.layers.size());
  EXPECT_EQ(parameters, network.parameter_count());
  EXPECT_EQ(bytes.size(), 8 + n + 4 * parameters);
}

TEST(ModelFile, WeightsAreStoredOutByInLikeTorchLinear) {
  const Network network = sample_network();
  const std::string bytes = serialize_model(network, {});
  const Parts parts = split(bytes);
  for (std::size_t l = 0; l < network.layers.size(); ++l) {
    const DenseLayer& layer = std::get<DenseLayer>(network.layers[l]);
    const std::string prefix = "fc" + std::to_string(l + 1);
    const json& weight = parts.header.at(prefix + ".weight");
    ASSERT_EQ(weight.at("shape"), json({layer.out(), layer.in()})) << prefix;
    const std::size_t begin = weight.at("data_offsets")[0];
    // Raw little-endian float32 at row o, column i of the [out, in] tensor.
    auto stored = [&](std::size_t at) {
      std::uint32_t u = 0;
      for (int k = 3; k >= 0; --k) u = (u << 8) | static_cast<unsigned char>(parts.data[at + static_cast<std::size_t>(k)]);
      float v;
      std::memcpy(&v, &u, 4);
      return v;
    };
    for (int o = 0; o < layer.out(); ++o) {
      for (int i = 0; i < layer.in(); ++i)
        ASSERT_EQ(stored(begin + 4 * (static_cast<std::size_t>(o) * static_cast<std::size_t>(layer.in()) + static_cast<std::size_t>(i))), layer.W(i, o))
            << prefix << ".weight[" << o << "][" << i << "]";
    }
    const json& bias = parts.header.at(prefix + ".bias");
    ASSERT_EQ(bias.at("shape"), json({layer.out()}));
    const std::size_t bias_begin = bias.at("data_offsets")[0];
    for (int o = 0; o < layer.out(); ++o) EXPECT_EQ(stored(bias_begin + 4 * static_cast<std::size_t>(o)), layer.b(o)) << prefix << ".bias[" << o << "]";
  }
}

TEST(ModelFile, ATransposedWeightTensorIsRejectedNotMisread) {
  // A file written [in, out] (the in-memory convention) instead of [out, in].
  const std::string message = error_after([](Parts& p) { p.header["fc1.weight"]["shape"] = {12, 7}; });
  EXPECT_CONTAINS(message, "fc1.weight has shape [12,7] but the architecture needs [7,12]");
}

// ---- malformed files ----

TEST(ModelFileRejects, AnEmptyFile) {
  const std::string message = parse_error("");
  EXPECT_CONTAINS(message, kSource);
  EXPECT_CONTAINS(message, "too short to be a model file (0 bytes)");
}

TEST(ModelFileRejects, FewerThanEightBytes) {
  EXPECT_CONTAINS(parse_error(std::string("\x10\0\0\0\0", 5)), "too short to be a model file (5 bytes)");
}

TEST(ModelFileRejects, AHeaderLengthLargerThanTheFile) {
  const std::string bytes = serialize_model(sample_network(), {});
  std::string lying = bytes;
  const std::uint64_t n = bytes.size();  // 8 more than there is
  std::memcpy(lying.data(), &n, 8);
  const std::string message = parse_error(lying);
  EXPECT_CONTAINS(message, kSource);
  EXPECT_CONTAINS(message, "header length " + std::to_string(n) + " does not fit a file of " + std::to_string(bytes.size()) + " bytes");
}

TEST(ModelFileRejects, AHugeOrZeroHeaderLength) {
  for (std::uint64_t n : {std::uint64_t{0}, std::uint64_t{1} << 40, ~std::uint64_t{0}, ~std::uint64_t{0} - 7}) {
    std::string bytes = serialize_model(sample_network(), {});
    std::memcpy(bytes.data(), &n, 8);
    EXPECT_CONTAINS(parse_error(bytes), "header length " + std::to_string(n) + " does not fit");
  }
}

TEST(ModelFileRejects, AHeaderThatIsNotJson) {
  const std::string message = parse_error(with_header_text("{\"__metadata__\": {\"format\": ", ""));
  EXPECT_CONTAINS(message, kSource);
  EXPECT_CONTAINS(message, "the header is not valid JSON");
}

TEST(ModelFileRejects, AnotherFileTypeEntirely) {
  // A PNG's signature read as a header length is absurd.
  EXPECT_CONTAINS(parse_error(std::string("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16)), "not a safetensors file, or truncated");
}

TEST(ModelFileRejects, JsonThatIsNotAnObject) {
  EXPECT_CONTAINS(parse_error(with_header_text("[1, 2, 3]", "")), "the header is not a JSON object");
  EXPECT_CONTAINS(parse_error(with_header_text("\"text\"  ", "")), "the header is not a JSON object");
}

TEST(ModelFileRejects, AHeaderWithoutMetadata) {
  EXPECT_CONTAINS(error_after([](Parts& p) { p.header.erase("__metadata__"); }), "no __metadata__ object");
  EXPECT_CONTAINS(error_after([](Parts& p) { p.header["__metadata__"] = json::array(); }), "no __metadata__ object");
}

TEST(ModelFileRejects, MetadataValuesThatAreNotStrings) {
  EXPECT_CONTAINS(error_after([](Parts& p) { p.header["__metadata__"]["training.seed"] = 1; }), "metadata 'training.seed' is not a string");
}

TEST(ModelFileRejects, EachMissingRequiredMetadataKey) {
  for (const char* key : {"format", "format_version", "architecture", "hidden_activation", "output", "input_scale"}) {
    const std::string message = error_after([&](Parts& p) { p.header["__metadata__"].erase(key); });
    EXPECT_CONTAINS(message, std::string("the metadata has no '") + key + "'");
  }
}

TEST(ModelFileRejects, AnotherFormat) {
  EXPECT_CONTAINS(error_after([](Parts& p) { p.header["__metadata__"]["format"] = "pt"; }), "format 'pt', expected 'digits-mlp'");
}

TEST(ModelFileRejects, AnotherFormatVersion) {
  for (const char* version : {"3", "0", "1.0", ""}) {
    const std::string message = error_after([&](Parts& p) { p.header["__metadata__"]["format_version"] = version; });
    EXPECT_CONTAINS(message, std::string("format version ") + version + ", this program reads versions 1 and 2");
  }
}

TEST(ModelFileRejects, BadArchitectureStrings) {
  for (const char* architecture : {"12,abc,5,3", "12,-7,5,3", "12,0,5,3", "12,7.5,5,3", "", "12", "12;7;5;3", "12,99999999999999999999,3", "12,70000,3", "12, 7,5,3", " 12,7,5,3", "12,7,5,3,", "12,,5,3"}) {
    const std::string message = error_after([&](Parts& p) { p.header["__metadata__"]["architecture"] = architecture; });
    EXPECT_CONTAINS(message, std::string("architecture '") + architecture + "'");
  }
}

TEST(ModelFileRejects, AnArchitectureThatDisagreesWithTheTensors) {
  const std::string message = error_after([](Parts& p) { p.header["__metadata__"]["architecture"] = "12,8,5,3"; });
  EXPECT_CONTAINS(message, "fc1.weight has shape [7,12] but the architecture needs [8,12]");
}

TEST(ModelFileRejects, AnUnknownActivation) {
  const std::string message = error_after([](Parts& p) { p.header["__metadata__"]["hidden_activation"] = "swish"; });
  EXPECT_CONTAINS(message, kSource);
  EXPECT_CONTAINS(message, "unknown activation 'swish'");
}

TEST(ModelFileRejects, AnOutputOtherThanSoftmax) {
  EXPECT_CONTAINS(error_after([](Parts& p) { p.header["__metadata__"]["output"] = "sigmoid"; }), "output 'sigmoid', expected softmax");
}

TEST(ModelFileRejects, AnInputScaleThatIsNotAPositiveNumber) {
  for (const char* scale : {"abc", "0", "-0.5", "nan", "inf", "1e99", ""}) {
    const std::string message = error_after([&](Parts& p) { p.header["__metadata__"]["input_scale"] = scale; });
    EXPECT_CONTAINS(message, std::string("input_scale '") + scale + "' is not a positive number");
  }
}

TEST(ModelFileRejects, AnotherDtype) {
  const std::string message = error_after([](Parts& p) { p.header["fc2.weight"]["dtype"] = "F64"; });
  EXPECT_CONTAINS(message, kSource);
  EXPECT_CONTAINS(message, "tensor fc2.weight has dtype \"F64\", expected \"F32\" or \"F16\"");
}

TEST(ModelFileRejects, AWrongShape) {
  EXPECT_CONTAINS(error_after([](Parts& p) { p.header["fc3.bias"]["shape"] = {4}; }), "tensor fc3.bias has shape [4] but the architecture needs [3]");
  EXPECT_CONTAINS(error_after([](Parts& p) { p.header["fc3.bias"]["shape"] = {1, 3}; }), "tensor fc3.bias has shape [1,3]");
  EXPECT_CONTAINS(error_after([](Parts& p) { p.header["fc3.bias"]["shape"] = "3"; }), "tensor fc3.bias has shape \"3\"");
}

TEST(ModelFileRejects, AnEntryLackingAField) {
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    const std::string message = error_after([&](Parts& p) { p.header["fc1.bias"].erase(field); });
    EXPECT_CONTAINS(message, "tensor fc1.bias lacks dtype, shape or data_offsets");
  }
  EXPECT_CONTAINS(error_after([](Parts& p) { p.header["fc1.bias"] = 5; }), "tensor fc1.bias lacks dtype, shape or data_offsets");
}

TEST(ModelFileRejects, MalformedOffsets) {
  for (const json& offsets : {json({-4, 0}), json({0}), json({0, 28, 56}), json("0,28"), json({0.0, 28.0}), json({"0", "28"})}) {
    const std::string message = error_after([&](Parts& p) { p.header["fc1.bias"]["data_offsets"] = offsets; });
    EXPECT_CONTAINS(message, "tensor fc1.bias has malformed data_offsets");
  }
}

TEST(ModelFileRejects, OffsetsBeyondTheData) {
  const std::string message = error_after([](Parts& p) {
    const std::uint64_t size = p.data.size();
    p.header["fc3.bias"]["data_offsets"] = {size - 8, size + 4};
  });
  EXPECT_CONTAINS(message, "tensor fc3.bias lies at bytes");
  EXPECT_CONTAINS(message, "(truncated?)");
}

TEST(ModelFileRejects, OffsetsThatRunBackwards) {
  const std::string message = error_after([](Parts& p) {
    const std::uint64_t begin = p.header["fc1.bias"]["data_offsets"][0], end = p.header["fc1.bias"]["data_offsets"][1];
    p.header["fc1.bias"]["data_offsets"] = {end, begin};
  });
  EXPECT_CONTAINS(message, "tensor fc1.bias lies at bytes");
}

TEST(ModelFileRejects, OffsetsInconsistentWithTheShape) {
  const std::string message = error_after([](Parts& p) {
    const std::uint64_t begin = p.header["fc1.bias"]["data_offsets"][0], end = p.header["fc1.bias"]["data_offsets"][1];
    p.header["fc1.bias"]["data_offsets"] = {begin, end - 4};
  });
  EXPECT_CONTAINS(message, "tensor fc1.bias spans 24 bytes, its shape needs 28");
}

TEST(ModelFileRejects, TwoTensorsSharingTheSameBytes) {
  // fc1.bias and fc2.bias both hold 4 floats. Pointing fc2.bias at fc1.bias's bytes keeps every
  // size consistent and the sizes still add up to the data section, yet 16 bytes are read twice
  // and 16 never: safetensors requires the tensors to tile the data section exactly.
  Parts parts = split(serialize_model(sample_network({12, 4, 4, 3}), {}));
  parts.header["fc2.bias"]["data_offsets"] = parts.header["fc1.bias"]["data_offsets"];
  const std::string message = parse_error(join(parts));
  EXPECT_CONTAINS(message, "fc2.bias");
}

TEST(ModelFileRejects, AMissingTensor) {
  const std::string message = error_after([](Parts& p) { p.header.erase("fc2.bias"); });
  EXPECT_CONTAINS(message, kSource);
  EXPECT_CONTAINS(message, "tensor fc2.bias is missing");
}

TEST(ModelFileRejects, AnExtraTensor) {
  const std::string message = error_after([](Parts& p) {
    const std::uint64_t size = p.data.size();
    p.header["embedding.weight"] = {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {size, size + 4}}};
    p.data.append(4, '\0');
  });
  EXPECT_CONTAINS(message, "unexpected tensor 'embedding.weight' for architecture 12,7,5,3");
}

TEST(ModelFileRejects, AnExtraLayer) {
  const std::string message = error_after([](Parts& p) {
    const std::uint64_t size = p.data.size();
    p.header["fc4.bias"] = {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {size, size + 4}}};
    p.data.append(4, '\0');
  });
  EXPECT_CONTAINS(message, "more tensors than the architecture 12,7,5,3 has layers");
}

TEST(ModelFileRejects, TrailingDataAfterTheTensors) {
  const std::string message = error_after([](Parts& p) { p.data.append(16, '\0'); });
  EXPECT_CONTAINS(message, "the data section has");
  EXPECT_CONTAINS(message, "but the tensors use");
}

TEST(ModelFileRejects, NanOrInfiniteWeights) {
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()}) {
    for (const char* tensor : {"fc1.weight", "fc3.bias"}) {
      const std::string message = error_after([&](Parts& p) {
        const std::size_t end = p.header[tensor]["data_offsets"][1];
        std::memcpy(p.data.data() + end - 4, &bad, 4);  // its last value
      });
      EXPECT_CONTAINS(message, std::string("tensor ") + tensor + " holds a NaN or infinite value");
    }
  }
}

TEST(ModelFileRejects, ATruncatedFileAtEveryTwentiethOfItsLength) {
  const std::string bytes = serialize_model(sample_network({30, 16, 10}, Activation::relu, 1.0f), sample_metadata());
  for (int k = 0; k < 20; ++k) {
    const std::size_t length = bytes.size() * static_cast<std::size_t>(k) / 20;
    const std::string message = parse_error(bytes.substr(0, length));
    EXPECT_CONTAINS(message, kSource) << "cut at " << length << " of " << bytes.size();
  }
  // One byte short: the last tensor no longer fits.
  EXPECT_CONTAINS(parse_error(bytes.substr(0, bytes.size() - 1)), "(truncated?)");
}

TEST_F(ModelFileOnDisk, LoadModelNamesTheFile) {
  const std::string missing = error_of([&] { load_model(dir / "absent.safetensors"); });
  EXPECT_CONTAINS(missing, (dir / "absent.safetensors").string());
  EXPECT_CONTAINS(missing, "no such model file");

  const std::string directory = error_of([&] { load_model(dir); });
  EXPECT_CONTAINS(directory, "no such model file");

  const std::string bytes = serialize_model(sample_network(), {});
  write_bytes(dir / "cut.safetensors", bytes.substr(0, bytes.size() / 2));
  const std::string cut = error_of([&] { load_model(dir / "cut.safetensors"); });
  EXPECT_CONTAINS(cut, (dir / "cut.safetensors").string());
  EXPECT_CONTAINS(cut, "truncated");
}

TEST_F(ModelFileOnDisk, SaveReplacesAnExistingFileWholly) {
  const fs::path path = dir / "m.safetensors";
  write_bytes(path, std::string(100000, 'x'));  // longer than the model: no tail may survive
  save_model(path, sample_network(), {});
  EXPECT_EQ(read_bytes(path), serialize_model(sample_network(), {}));
  for (const auto& entry : fs::directory_iterator(dir)) EXPECT_EQ(entry.path().filename(), "m.safetensors") << "a temporary file was left behind";
}

TEST(ModelFileRejects, RandomByteFlipsInTheHeaderLoadOrThrowDigitsError) {
  const std::string bytes = serialize_model(sample_network(), sample_metadata());
  std::uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  std::mt19937 rng(2024);
  int loaded = 0, rejected = 0;
  for (int trial = 0; trial < 400; ++trial) {
    std::string mutated = bytes;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int f = 0; f < flips; ++f) {
      // Mostly the JSON, sometimes the length field.
      const std::size_t at = trial % 10 == 0 ? rng() % 8 : 8 + rng() % n;
      mutated[at] = static_cast<char>(trial % 2 ? mutated[at] ^ (1 << (rng() % 8)) : static_cast<char>(rng() & 0xff));
    }
    try {
      parse(mutated);
      ++loaded;
    } catch (const Error& e) {
      ++rejected;
      EXPECT_CONTAINS(e.what(), kSource) << "trial " << trial;
    } catch (const std::exception& e) {
      ADD_FAILURE() << "trial " << trial << " threw a non-digits exception: " << e.what();
    }
  }
  // Most flips break something: a fuzzer that never got an error would be testing nothing.
  EXPECT_GT(rejected, 200);
  RecordProperty("loaded", loaded);
}

TEST(ModelFileRejects, AnOptimizerTensorWhoseShapeOverflowsTheByteCount) {
  // 2^32 × 2^32 floats: the product wraps to 0 in 64 bits, so empty offsets would "fit".
  const std::string message = error_after([](Parts& p) {
    const std::uint64_t size = p.data.size();
    p.header["optimizer.fc1.weight.m"] = {{"dtype", "F32"}, {"shape", {std::uint64_t{1} << 32, std::uint64_t{1} << 32}}, {"data_offsets", {size, size}}};
  });
  EXPECT_CONTAINS(message, "optimizer.fc1.weight.m");
}

TEST(ModelFileRejects, AnEmptyOptimizerTensorLoadsOrIsRefusedWithoutUndefinedBehaviour) {
  Parts parts = split(serialize_model(sample_network(), {}));
  const std::uint64_t size = parts.data.size();
  parts.header["optimizer.fc1.bias.m"] = {{"dtype", "F32"}, {"shape", {0}}, {"data_offsets", {size, size}}};
  try {
    const Model model = parse(join(parts));
    ASSERT_EQ(model.extra.size(), 1u);
    EXPECT_TRUE(model.extra[0].values.empty());
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "optimizer.fc1.bias.m");
  }
}

// A tiny file must not make the loader allocate gigabytes: the architecture is checked against
// the data it brings before any network is built. Run in a child process whose address space is
// capped, so a regression fails this test instead of exhausting the machine's memory.
TEST(ModelFileRejects, AHugeArchitectureInATinyFileWithoutAllocatingIt) {
#ifdef __SANITIZE_ADDRESS__
  GTEST_SKIP() << "AddressSanitizer reserves terabytes of address space: a cap on it cannot be used";
#endif
  Parts parts = split(serialize_model(sample_network(), {}));
  parts.header["__metadata__"]["architecture"] = "12,65536,65536,65536,3";
  const std::string bytes = join(parts);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const rlimit cap{std::size_t{1} << 30, std::size_t{1} << 30};  // 1 GiB; the network would need 32 GiB
    setrlimit(RLIMIT_AS, &cap);
    try {
      parse(bytes);
      _exit(3);
    } catch (const Error& e) {
      _exit(std::string(e.what()).find(kSource) != std::string::npos ? 0 : 4);
    } catch (const std::bad_alloc&) {
      _exit(5);
    } catch (...) {
      _exit(6);
    }
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status)) << "the child died of signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0) << "3: loaded, 4: Error without the file name, 5: std::bad_alloc, 6: another exception";
}

// ---- F16 storage ----

// Known encodings (IEEE 754 binary16), rounding to nearest with ties to even, the subnormals, and
// the largest value; numpy's astype(float16) gives the same (tests/python checks the reader).
TEST(ModelFileF16, ConvertsKnownValues) {
  EXPECT_EQ(float_to_f16(0.0f), 0x0000);
  EXPECT_EQ(float_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(float_to_f16(1.0f), 0x3c00);
  EXPECT_EQ(float_to_f16(-2.0f), 0xc000);
  EXPECT_EQ(float_to_f16(0.1f), 0x2e66);           // 0.0999755859375, the nearest
  EXPECT_EQ(float_to_f16(65504.0f), 0x7bff);       // the largest
  EXPECT_EQ(float_to_f16(65519.0f), 0x7bff);       // still rounds down to it
  EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -14)), 0x0400);  // the smallest normal
  EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -24)), 0x0001);  // the smallest subnormal
  EXPECT_EQ(float_to_f16(std::ldexp(1.0f, -25)), 0x0000);  // half of it: a tie, to even (0)
  EXPECT_EQ(float_to_f16(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 × 2^−24: a tie, to even (2)
  EXPECT_EQ(float_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // halfway between 1 and the next: to even
  EXPECT_EQ(float_to_f16(1.0f + std::ldexp(3.0f, -11)), 0x3c02);  // halfway between 0x3c01 and 0x3c02: to even
  EXPECT_EQ(float_to_f16(2047.5f), 0x6800);        // rounds up into the next exponent: 2048
  EXPECT_FLOAT_EQ(f16_to_float(0x2e66), 0.0999755859375f);
  EXPECT_EQ(f16_to_float(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16_to_float(0x8400), -std::ldexp(1.0f, -14));
  EXPECT_NE(error_of([] { float_to_f16(65520.0f); }).find("65504"), std::string::npos);
  EXPECT_FALSE(error_of([] { float_to_f16(std::numeric_limits<float>::infinity()); }).empty());
  EXPECT_FALSE(error_of([] { float_to_f16(std::numeric_limits<float>::quiet_NaN()); }).empty());
}

// Every finite F16 value survives F16 → float32 → F16, and float32 values between two F16 values
// go to the nearer one.
TEST(ModelFileF16, EveryValueRoundTrips) {
  for (std::uint32_t bits = 0; bits < 0x10000; ++bits) {
    const auto half = static_cast<std::uint16_t>(bits);
    if ((half & 0x7c00) == 0x7c00) continue;  // infinity and NaN
    ASSERT_EQ(float_to_f16(f16_to_float(half)), half) << std::hex << bits;
  }
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uniform(-3.0f, 3.0f);
  for (int i = 0; i < 100000; ++i) {
    const float x = uniform(rng);
    const std::uint16_t h = float_to_f16(x);
    const float at = f16_to_float(h);
    const float below = f16_to_float(static_cast<std::uint16_t>(h - 1)), above = f16_to_float(static_cast<std::uint16_t>(h + 1));
    ASSERT_LE(std::abs(x - at), std::abs(x - below)) << x;
    ASSERT_LE(std::abs(x - at), std::abs(x - above)) << x;
  }
}

// An F16 file: the network's tensors say "F16" and take 2 bytes a value; it loads to the rounded
// weights, and writing it again as F16 gives the same bytes.
TEST(ModelFileF16, SavesAndLoadsHalfTheBytes) {
  const Network original = sample_network();
  const std::string f32 = serialize_model(original, sample_metadata());
  const std::string f16 = serialize_model(original, sample_metadata(), {}, Storage::f16);
  const Parts parts = split(f16);
  EXPECT_EQ(parts.header["fc1.weight"]["dtype"], "F16");
  EXPECT_EQ(parts.header["fc3.bias"]["dtype"], "F16");
  EXPECT_EQ(parts.data.size() * 2, split(f32).data.size());
  const Model loaded = parse(f16);
  for (std::size_t i = 0; i < loaded.network.layers.size(); ++i) {
    const ConstParameters from = parameters(original.layers[i]), to = parameters(loaded.network.layers[i]);
    for (Eigen::Index k = 0; k < from.W->size(); ++k) ASSERT_EQ(to.W->data()[k], f16_to_float(float_to_f16(from.W->data()[k])));
    for (Eigen::Index k = 0; k < from.b->size(); ++k) ASSERT_EQ(to.b->data()[k], f16_to_float(float_to_f16(from.b->data()[k])));
  }
  EXPECT_EQ(serialize_model(loaded.network, loaded.metadata, {}, Storage::f16), f16);
  EXPECT_EQ(loaded.metadata.at("note"), sample_metadata().at("note"));
}

// A checkpoint's optimizer state stays F32 in an F16 file, and an F16 optimizer tensor is refused.
TEST(ModelFileF16, OptimizerStateStaysF32) {
  const std::vector<NamedTensor> extra = {{"optimizer.fc1.bias.m", {7}, {1, 2, 3, 4, 5, 6, 7.5f}}};
  const std::string bytes = serialize_model(sample_network(), {}, extra, Storage::f16);
  Parts parts = split(bytes);
  EXPECT_EQ(parts.header["optimizer.fc1.bias.m"]["dtype"], "F32");
  EXPECT_EQ(parse(bytes).extra.at(0).values, extra[0].values);
  parts.header["optimizer.fc1.bias.m"]["dtype"] = "F16";
  EXPECT_NE(parse_error(join(parts)).find("expected \"F32\""), std::string::npos);
}

// The checks hold for F16 too: the byte count follows the dtype, and an F16 infinity is refused.
TEST(ModelFileF16, RejectsWhatF32Rejects) {
  const std::string bytes = serialize_model(sample_network(), {}, {}, Storage::f16);
  Parts parts = split(bytes);
  parts.header["fc3.bias"]["dtype"] = "F32";  // 3 values need 12 bytes; the tensor spans 6
  EXPECT_NE(parse_error(join(parts)).find("spans 6 bytes, its shape needs 12"), std::string::npos);
  parts = split(bytes);
  const std::uint64_t begin = parts.header["fc1.weight"]["data_offsets"][0];
  parts.data[begin] = '\x00', parts.data[begin + 1] = '\x7c';  // +infinity
  EXPECT_NE(parse_error(join(parts)).find("NaN or infinite"), std::string::npos);
  parts = split(bytes);
  parts.header["fc1.weight"]["dtype"] = "BF16";
  EXPECT_NE(parse_error(join(parts)).find("expected \"F32\" or \"F16\""), std::string::npos);
  Network large = sample_network();
  std::get<DenseLayer>(large.layers[0]).W(0, 0) = 70000.0f;
  EXPECT_NE(error_of([&] { serialize_model(large, {}, {}, Storage::f16); }).find("fc1.weight cannot be stored as F16"), std::string::npos);
}
