// Test helper for the Python reader's check (compare.py): makes the files and prints the exact
// 28×28 inputs the program feeds its network, so Python can be given the same numbers.
//
//   dump_input --make DIR     writes drawn digits (DIR/*.png) and models (DIR/*.safetensors): the
//                             built-in model, random ones of each activation and input scale,
//                             random conv networks, with batch norm, and in every form of
//                             `architecture` the loader reads (an explicit s1, no flatten);
//                             prints each file's path on a line
//   dump_input FILE…          prints a JSON array: per image, preprocess(read_image(FILE)) —
//                             784 raw 0–255 values, printed with 9 digits so float32 is exact
#include <cstdio>
#include <exception>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "../support/strokes.hpp"
#include "digits/builtin_model.hpp"
#include "digits/file_util.hpp"
#include "digits/image.hpp"
#include "digits/model_file.hpp"
#include "digits/preprocess.hpp"

namespace fs = std::filesystem;
using namespace digits;

namespace {

// The model file's bytes with its metadata's architecture written as `text`: a form the loader
// reads as well as the one the program writes.
std::string with_architecture(const std::string& bytes, const std::string& text) {
  std::uint64_t size = 0;
  std::memcpy(&size, bytes.data(), 8);
  nlohmann::json header = nlohmann::json::parse(bytes.substr(8, size));
  header["__metadata__"]["architecture"] = text;
  const std::string header_text = header.dump();
  std::string file(8, '\0');
  const std::uint64_t new_size = header_text.size();
  std::memcpy(file.data(), &new_size, 8);
  return file + header_text + bytes.substr(8 + size);
}

void make(const fs::path& dir) {
  fs::create_directories(dir);
  // Digits in both polarities, off centre, on canvases of different shapes.
  int n = 0;
  for (int digit : {0, 1, 2, 3, 4, 7}) {
    testing::Placement p;
    p.canvas_width = 200 + 40 * (n % 3);
    p.canvas_height = 300 - 30 * (n % 2);
    p.left = 20 + 10 * n;
    p.top = 30;
    p.pen = 10 + 3 * n;
    p.dark_on_light = n % 2 == 1;
    const fs::path path = dir / ("digit" + std::to_string(digit) + ".png");
    write_png(path, testing::draw(testing::digit_strokes(digit), p));
    std::printf("%s\n", path.c_str());
    ++n;
  }

  const std::span<const unsigned char> builtin = builtin_model_bytes();
  write_file_atomically(dir / "builtin.safetensors", {reinterpret_cast<const char*>(builtin.data()), builtin.size()});
  std::printf("%s\n", (dir / "builtin.safetensors").c_str());

  // Random networks: every activation, both input scales, one and two hidden layers; the biases
  // random too, so a swapped or dropped tensor changes the probabilities.
  struct Recipe {
    const char* name;
    std::vector<int> sizes;
    Activation hidden;
    Init init;
    float input_scale;
  };
  for (const Recipe& r : {Recipe{"relu", {784, 64, 32, 10}, Activation::relu, Init::he, 1.0f / 255.0f},
                          Recipe{"sigmoid", {784, 40, 10}, Activation::sigmoid, Init::xavier, 1.0f},
                          Recipe{"tanh", {784, 48, 24, 10}, Activation::tanh, Init::xavier, 1.0f / 255.0f}}) {
    Network network(r.sizes, r.hidden, r.input_scale);
    network.initialize(r.init, 5);
    std::mt19937 rng(9);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (Layer& any : network.layers) {
      DenseLayer& layer = std::get<DenseLayer>(any);
      for (Eigen::Index j = 0; j < layer.b.size(); ++j) layer.b(j) = normal(rng);
      if (&any == &network.layers.back()) layer.W *= 4.0f;  // logits spread a few units apart
    }
    const fs::path path = dir / (std::string(r.name) + ".safetensors");
    save_model(path, network, {{"note", "random weights for the Python reader's test"}});
    std::printf("%s\n", path.c_str());
  }

  // Random conv networks (format version 2): "same" padding, stride 2, pooling, several channels.
  struct Layered {
    const char* name;
    const char* layers;
    Activation hidden;
    Init init;
  };
  for (const Layered& r : {Layered{"cnn-relu", "conv5x5x6,pool2,conv3x3x8s2same,fc16,10", Activation::relu, Init::he},
                           Layered{"cnn-tanh", "conv3x3x4same,conv3x3x5s2,pool2,10", Activation::tanh, Init::xavier},
                           Layered{"cnn-bn", "conv5x5x6,bn,pool2,conv3x3x8s2same,bn,fc16,bn,10", Activation::relu, Init::he}}) {
    Network network(parse_layer_specs(r.layers), {1, 28, 28}, r.hidden, 1.0f / 255.0f);
    network.initialize(r.init, 6);
    std::mt19937 rng(10);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    for (Layer& layer : network.layers) {
      const Parameters p = parameters(layer);
      if (!p.W) continue;
      for (Eigen::Index j = 0; j < p.b->size(); ++j) (*p.b)(j) = 0.3f * normal(rng);
      // Logits spread a few units apart (batch norm keeps its network's values near unit scale).
      if (&layer == &network.layers.back()) *p.W *= std::string(r.name) == "cnn-bn" ? 2.0f : 12.0f;
      if (auto* bn = std::get_if<BatchNormLayer>(&layer)) {  // statistics away from 0 and 1, so each is used
        for (int c = 0; c < bn->channels(); ++c) {
          bn->gamma(0, c) = 1.0f + 0.3f * normal(rng);
          bn->running_mean(c) = 0.2f * normal(rng);
          bn->running_var(c) = 0.5f + std::abs(normal(rng));
        }
        bn->batches_tracked = 7;
      }
    }
    const fs::path path = dir / (std::string(r.name) + ".safetensors");
    save_model(path, network, {{"note", "random weights for the Python reader's test"}});
    std::printf("%s\n", path.c_str());
    // The same weights stored as F16 (docs/model-format.md): the reader widens them as the program does.
    const fs::path f16 = dir / (std::string(r.name) + "-f16.safetensors");
    save_model(f16, network, {{"note", "random weights, F16"}}, {}, Storage::f16);
    std::printf("%s\n", f16.c_str());
  }
  // Forms the loader reads but the program does not write: an explicit stride 1, and a dense layer
  // straight after a map, without "flatten".
  {
    Network network(parse_layer_specs("conv5x5x6,pool2,conv3x3x8,fc16,10"), {1, 28, 28}, Activation::relu, 1.0f / 255.0f);
    network.initialize(Init::he, 7);
    std::get<DenseLayer>(network.layers.back()).W *= 12.0f;
    const fs::path path = dir / "cnn-s1-no-flatten.safetensors";
    write_file_atomically(path, with_architecture(serialize_model(network, {}), "conv5x5x6s1,pool2,conv3x3x8s1,fc16,10"));
    std::printf("%s\n", path.c_str());
  }
  const Model builtin_model = parse_model(builtin, "built-in model");
  save_model(dir / "builtin-f16.safetensors", builtin_model.network, builtin_model.metadata, {}, Storage::f16);
  std::printf("%s\n", (dir / "builtin-f16.safetensors").c_str());
}

void dump(const std::vector<std::string>& files) {
  std::printf("[");
  for (std::size_t f = 0; f < files.size(); ++f) {
    const Preprocessed input = preprocess(read_image(files[f]));
    std::printf("%s\n[", f ? "," : "");
    for (std::size_t i = 0; i < input.pixels.size(); ++i) std::printf("%s%.9g", i ? "," : "", static_cast<double>(input.pixels[i]));
    std::printf("]");
  }
  std::printf("]\n");
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc == 3 && std::string(argv[1]) == "--make") {
      make(argv[2]);
      return 0;
    }
    if (argc >= 2 && argv[1][0] != '-') {
      dump({argv + 1, argv + argc});
      return 0;
    }
    std::fprintf(stderr, "usage: dump_input --make DIR | dump_input IMAGE…\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "dump_input: %s\n", e.what());
    return 1;
  }
}
