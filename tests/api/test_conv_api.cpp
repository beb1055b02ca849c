// The API with a convolutional model: what POST /api/predict sends for the page's "Inside the
// network" panel (each conv and pooling layer's maps as bytes), what GET /api/model says of the
// layers and the first convolution's kernels, and the Open Inference Protocol's metadata. The
// endpoints' functions are called directly (server/api.hpp), on a small network with He-initialized
// weights: the maps of an untrained network are as real as a trained one's.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <span>

#include "digits/preprocess.hpp"
#include "http_support.hpp"
#include "server/api.hpp"

namespace digits {
namespace {

using json = nlohmann::json;
using namespace api_testing;

server::ServedModel conv_model(const std::string& layers) {
  Network network(parse_layer_specs(layers), Shape{1, 28, 28}, Activation::relu, 1.0f / 255);
  network.initialize(Init::he, 1);
  return {Model{std::move(network), {}, {}}, "a test conv model"};
}

const server::ServedModel& small_cnn() {
  static const server::ServedModel served = conv_model("conv5x5x8,pool2,conv3x3x4,pool2,fc16,10");
  return served;
}

json predict(const server::ServedModel& served, int digit) {
  return server::predict_drawing(served, json{{"image", png_data_url(drawing(digit))}}.dump());
}

std::vector<std::uint8_t> bytes_of(const json& layer) {
  const std::string text = decode_base64(layer["maps"].get<std::string>());
  return {text.begin(), text.end()};
}

// What the network computes for the drawing as the server preprocesses it.
std::vector<Matrix> library_activations(const Network& network, int digit) {
  const std::string png = encode_png(drawing(digit));
  const Preprocessed input = preprocess(decode_image(std::span(reinterpret_cast<const unsigned char*>(png.data()), png.size()), "test"));
  return network.activations(Eigen::Map<const Matrix>(input.pixels.data(), 1, 784));
}

TEST(ConvApi, PredictSendsEveryMapLayerAsGreyPictures) {
  const Network& network = small_cnn().model.network;
  const json seven = predict(small_cnn(), 7);
  const json one = predict(small_cnn(), 1);
  const std::vector<Matrix> expected = library_activations(network, 7);
  const json& layers = seven["activations"];
  ASSERT_TRUE(layers.is_array()) << seven;
  // conv1, pool1, conv2, pool2, fc1, fc2: flatten (layer 5) repeats pool2 and is left out.
  ASSERT_EQ(layers.size(), 6u);
  const std::vector<std::pair<std::string, std::string>> kinds = {{"conv1", "conv2d"}, {"pool1", "maxpool2"}, {"conv2", "conv2d"},
                                                                  {"pool2", "maxpool2"}, {"fc1", "dense"},    {"fc2", "dense"}};
  const std::vector<json> shapes = {{8, 24, 24}, {8, 12, 12}, {4, 10, 10}, {4, 5, 5}};
  const std::vector<std::size_t> library_index = {0, 1, 2, 3, 5, 6};
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const json& layer = layers[i];
    EXPECT_EQ(layer["name"], kinds[i].first);
    EXPECT_EQ(layer["kind"], kinds[i].second);
    const Matrix& A = expected[library_index[i]];
    if (i >= 4) {  // dense: numbers, as for a dense model
      EXPECT_FALSE(layer.contains("maps"));
      ASSERT_EQ(layer["values"].size(), static_cast<std::size_t>(A.size()));
      continue;
    }
    EXPECT_EQ(layer["shape"], shapes[i]) << layer["name"];
    EXPECT_FALSE(layer.contains("values")) << "a map layer's values go as bytes";
    ASSERT_TRUE(layer["maps"].is_string()) << "the maps of " << layer["name"] << " are missing";
    const std::vector<std::uint8_t> bytes = bytes_of(layer);
    ASSERT_EQ(bytes.size(), static_cast<std::size_t>(A.size())) << layer["name"];
    // Byte b stands for low + b/255·(high − low): within half a step of the library's value.
    const float low = layer["low"], high = layer["high"];
    EXPECT_EQ(low, 0.0f) << "ReLU and its pooling are never negative";
    EXPECT_FLOAT_EQ(high, A.maxCoeff());
    const float step = (high - low) / 255;
    for (Eigen::Index k = 0; k < A.size(); ++k) ASSERT_NEAR(low + bytes[static_cast<std::size_t>(k)] * step, A.data()[k], 0.51f * step) << layer["name"] << " value " << k;
    // Every channel is a picture of its own: the first two differ, and something is lit.
    const auto channel = static_cast<std::ptrdiff_t>(layer["shape"][1].get<int>() * layer["shape"][2].get<int>());
    EXPECT_FALSE(std::equal(bytes.begin(), bytes.begin() + channel, bytes.begin() + channel)) << layer["name"];
    EXPECT_GT(*std::max_element(bytes.begin(), bytes.end()), 200) << layer["name"];
    // Another drawing, other maps.
    EXPECT_NE(layer["maps"], one["activations"][i]["maps"]) << layer["name"];
  }
  EXPECT_EQ(layers.back()["values"], seven["probabilities"]);
}

TEST(ConvApi, AnswerTextIsNlohmannsDumpToTheByte) {
  // answers::text writes plain ASCII strings (the maps' base64) itself and leaves the rest to
  // nlohmann: the bytes must be dump()'s, for a real answer and for every kind of value.
  const json seven = predict(small_cnn(), 7);
  constexpr auto replace = json::error_handler_t::replace;
  EXPECT_EQ(answers::text(seven), seven.dump(-1, ' ', false, replace));
  const json odd = {{"quote \" and \\ backslash", {"tab\there", "line\nbreak", "\x01", "caf\xc3\xa9", "bad \xff byte", "", "~\x7f"}},
                    {"numbers", {1, -2.5, 1e-30, 3.4028235e38, 0.1f}},
                    {"nested", {json::array(), json::object(), {{"a", nullptr}, {"b", true}}, {1, "two", {3}}}},
                    {"ünïcode key", "plain"}};
  EXPECT_EQ(answers::text(odd), odd.dump(-1, ' ', false, replace));
  EXPECT_EQ(answers::text(json("just a string")), "\"just a string\"");
  EXPECT_EQ(answers::text(json(42)), "42");
}

TEST(ConvApi, MapsPastTheBudgetAreSentAsShapesOnly) {
  // 32·28·28 = 25,088 bytes, then 64·28·28 = 50,176: together past kMaxMapBytes (65,536).
  const server::ServedModel served = conv_model("conv3x3x32same,conv3x3x64same,pool2,fc10");
  const json layers = predict(served, 3)["activations"];
  ASSERT_EQ(layers.size(), 4u);
  EXPECT_TRUE(layers[0]["maps"].is_string());
  EXPECT_TRUE(layers[1]["maps"].is_null()) << "the second convolution is past the budget";
  EXPECT_EQ(layers[1]["shape"], json({64, 28, 28}));
  std::size_t sent = 0;
  for (const json& layer : layers)
    if (layer.contains("maps") && layer["maps"].is_string()) sent += bytes_of(layer).size();
  EXPECT_LE(sent, answers::kMaxMapBytes);
  EXPECT_EQ(sent, 25088u + 64u * 14 * 14);  // the pooled maps still fit after the skipped layer
}

TEST(ConvApi, ModelDescribesEveryLayerAndTheFirstKernels) {
  const Network& network = small_cnn().model.network;
  const json model = server::model_info(small_cnn(), {});
  EXPECT_EQ(model["architecture"], "conv5x5x8,pool2,conv3x3x4,pool2,flatten,fc16,fc10");
  const json& layers = model["network"];
  ASSERT_EQ(layers.size(), 7u);
  EXPECT_EQ(layers[0], json({{"name", "conv1"}, {"kind", "conv2d"}, {"spec", "conv5x5x8"}, {"output", {8, 24, 24}}, {"function", "relu"}, {"parameters", 8 * 25 + 8}}));
  EXPECT_EQ(layers[1]["output"], json({8, 12, 12}));
  EXPECT_EQ(layers[1]["function"], "max");
  EXPECT_EQ(layers[4], json({{"name", "flatten"}, {"kind", "flatten"}, {"spec", "flatten"}, {"output", {100}}, {"function", "none"}, {"parameters", 0}}));
  EXPECT_EQ(layers[6]["function"], "softmax");
  std::size_t parameters = 0;
  for (const json& layer : layers) parameters += layer["parameters"].get<std::size_t>();
  EXPECT_EQ(parameters, network.parameter_count());

  // The kernels in PyTorch's order [out, in, kh, kw]: kernel o, row y, column x is W(y·5 + x, o).
  const json& kernels = model["kernels"];
  EXPECT_EQ(kernels["layer"], "conv1");
  EXPECT_EQ(kernels["count"], 8);
  ASSERT_EQ(kernels["shape"], json({8, 1, 5, 5}));
  ASSERT_EQ(kernels["values"].size(), 200u);
  const auto& W = std::get<Conv2dLayer>(network.layers[0]).W;
  for (int o = 0; o < 8; ++o)
    for (int k = 0; k < 25; ++k) ASSERT_EQ(kernels["values"][static_cast<std::size_t>(o * 25 + k)].get<float>(), W(k, o));

  // A dense model has no kernels to show.
  EXPECT_TRUE(server::model_info(dense_model(), {})["kernels"].is_null());
}

TEST(ConvApi, V2MetadataGivesTheShapesAndTheLayers) {
  const json metadata = server::v2_model_metadata(small_cnn());
  EXPECT_EQ(metadata["name"], "digits");
  EXPECT_EQ(metadata["versions"], json({"0"}));
  EXPECT_EQ(metadata["inputs"], json({{{"name", "input"}, {"datatype", "UINT8"}, {"shape", {-1, 28, 28}}}}));
  EXPECT_EQ(metadata["outputs"], json({{{"name", "probabilities"}, {"datatype", "FP32"}, {"shape", {-1, 10}}}}));
  const json& parameters = metadata["parameters"];
  EXPECT_EQ(parameters["source"], "a test conv model");
  EXPECT_EQ(parameters["also_accepts"], "FP32 [-1,784] of raw 0-255 pixel values");
  EXPECT_EQ(parameters["architecture"], "conv5x5x8,pool2,conv3x3x4,pool2,flatten,fc16,fc10");
  EXPECT_EQ(parameters["layers"],
            "conv1 conv5x5x8 relu → 8×24×24; pool1 pool2 max → 8×12×12; conv2 conv3x3x4 relu → 4×10×10; pool2 max → 4×5×5; "
            "flatten → 100; fc1 fc16 relu → 16; fc2 fc10 softmax → 10");
  EXPECT_EQ(parameters["parameter_count"], small_cnn().model.network.parameter_count());
  for (const auto& [name, value] : parameters.items()) EXPECT_TRUE(value.is_string() || value.is_number()) << name << ": the protocol's parameters are strings, numbers or booleans";

  // A model of another number of classes says so.
  EXPECT_EQ(server::v2_model_metadata(conv_model("conv3x3x4,pool2,fc3"))["outputs"][0]["shape"], json({-1, 3}));
}

// Batch norm: GET /api/model and the v2 metadata list it as a layer of its own; the page's panel
// draws it with the layer before it, whose entry holds the batch norm's (activated) output.
TEST(ConvApi, BatchNormIsListedAndShownWithTheLayerBeforeIt) {
  server::ServedModel served = conv_model("conv5x5x8,bn,pool2,fc16,bn,10");
  for (Layer& layer : served.model.network.layers)
    if (auto* bn = std::get_if<BatchNormLayer>(&layer)) bn->running_mean.setConstant(0.05f), bn->beta.setConstant(0.1f);
  const Network& network = served.model.network;
  const json model = server::model_info(served, {});
  EXPECT_EQ(model["architecture"], "conv5x5x8,bn,pool2,flatten,fc16,bn,fc10");
  const json& layers = model["network"];
  ASSERT_EQ(layers.size(), 7u);
  EXPECT_EQ(layers[0]["function"], "identity");  // its sums go to bn1, which applies relu
  EXPECT_EQ(layers[1], json({{"name", "bn1"}, {"kind", "batchnorm"}, {"spec", "bn"}, {"output", {8, 24, 24}}, {"function", "relu"}, {"parameters", 16}}));
  EXPECT_EQ(layers[5], json({{"name", "bn2"}, {"kind", "batchnorm"}, {"spec", "bn"}, {"output", {16}}, {"function", "relu"}, {"parameters", 32}}));
  std::size_t parameters = 0;
  for (const json& layer : layers) parameters += layer["parameters"].get<std::size_t>();
  EXPECT_EQ(parameters, network.parameter_count());
  EXPECT_NE(server::v2_model_metadata(served)["parameters"]["layers"].get<std::string>().find("bn1 bn relu → 8×24×24"), std::string::npos);

  const json seven = predict(served, 7);
  const json& shown = seven["activations"];
  ASSERT_EQ(shown.size(), 4u) << shown;  // conv1 with bn1, pool1, fc1 with bn2, fc2
  const std::vector<Matrix> expected = library_activations(network, 7);
  EXPECT_EQ(shown[0]["name"], "conv1");
  EXPECT_EQ(shown[0]["batch_norm"], "bn1");
  EXPECT_EQ(shown[0]["function"], "relu");
  EXPECT_EQ(shown[0]["shape"], json({8, 24, 24}));
  EXPECT_FLOAT_EQ(shown[0]["high"].get<float>(), expected[1].maxCoeff());  // bn1's output, not conv1's sums
  EXPECT_EQ(shown[1]["name"], "pool1");
  EXPECT_EQ(shown[2]["name"], "fc1");
  EXPECT_EQ(shown[2]["batch_norm"], "bn2");
  ASSERT_EQ(shown[2]["values"].size(), 16u);
  for (std::size_t j = 0; j < 16; ++j) EXPECT_FLOAT_EQ(shown[2]["values"][j].get<float>(), expected[5](0, static_cast<Eigen::Index>(j)));
  EXPECT_EQ(shown[3]["function"], "softmax");
  EXPECT_FALSE(shown[3].contains("batch_norm"));
}

TEST(ConvApi, AtMost64KernelsAreSent) {
  const json kernels = server::model_info(conv_model("conv3x3x100,pool2,fc10"), {})["kernels"];
  EXPECT_EQ(kernels["count"], 100);
  EXPECT_EQ(kernels["shape"], json({answers::kMaxKernelsShown, 1, 3, 3}));
  EXPECT_EQ(kernels["values"].size(), static_cast<std::size_t>(answers::kMaxKernelsShown) * 9);
}

}  // namespace
}  // namespace digits
