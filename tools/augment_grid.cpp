// augment_grid: shows what data augmentation does. Writes a PNG with one MNIST training digit per
// row: the original in the first column, then augmented copies, each enlarged (nearest neighbour)
// so the pixels are visible. With --time it measures microseconds per image over the training set,
// and with --check it counts augmented digits that touch the frame's outer pixels. See
// docs/augmentation.md, whose picture this makes:
//
//   build/release/augment_grid data/mnist docs/images/augmentation.png
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "digits/augment.hpp"
#include "digits/dataset.hpp"
#include "digits/error.hpp"
#include "digits/image.hpp"
#include "digits/random.hpp"

namespace fs = std::filesystem;
using namespace digits;

namespace {

constexpr float kGap = 70;  // the gray between cells, so black cells stand apart

// The index of the n-th (from 0) training image of a class.
std::size_t nth_of_class(const Dataset& data, int label, int n) {
  for (std::size_t i = 0; i < data.size(); ++i)
    if (data.labels[i] == label && n-- == 0) return i;
  throw Error(data.name + " has too few images of class " + std::to_string(label));
}

// Row r: the (r / 10)-th training image of class r % 10, then `samples` augmented copies of it.
GrayImage grid(const Dataset& train, const AugmentSettings& settings, int digits_shown, int samples, int upscale,
               std::uint64_t seed) {
  const int cell = train.rows * upscale, gap = 2 * upscale, first_gap = 6 * upscale;
  const int width = first_gap + cell + first_gap + samples * (cell + gap) - gap + first_gap;
  const int height = first_gap + digits_shown * (cell + gap) - gap + first_gap;
  GrayImage picture{width, height, std::vector<float>(static_cast<std::size_t>(width) * static_cast<std::size_t>(height), kGap)};
  auto paint = [&](std::span<const std::uint8_t> pixels, int left, int top) {
    for (int y = 0; y < cell; ++y)
      for (int x = 0; x < cell; ++x)
        picture.pixels[static_cast<std::size_t>(top + y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(left + x)] =
            pixels[static_cast<std::size_t>((y / upscale) * train.cols + x / upscale)];
  };
  std::vector<std::uint8_t> augmented(static_cast<std::size_t>(train.features()));
  for (int row = 0; row < digits_shown; ++row) {
    const std::size_t index = nth_of_class(train, row % 10, row / 10);
    const int top = first_gap + row * (cell + gap);
    paint(train.image(index), first_gap, top);
    for (int k = 0; k < samples; ++k) {
      Rng rng(augment_seed(seed, static_cast<std::size_t>(row * samples + k)));
      augment(train.image(index), train.rows, train.cols, settings, rng, std::span<std::uint8_t>(augmented));
      paint(augmented, first_gap + cell + first_gap + k * (cell + gap), top);
    }
  }
  return picture;
}

// Microseconds per image for augment (uint8 → uint8) and augment_batch (batches of 128 into a
// float matrix), over the whole training set, and gather_batch's as the floor.
void time_it(const Dataset& train, const AugmentSettings& settings, std::uint64_t seed) {
  using clock = std::chrono::steady_clock;
  auto micro_per_image = [&](clock::time_point start) {
    return std::chrono::duration<double, std::micro>(clock::now() - start).count() / static_cast<double>(train.size());
  };
  std::vector<std::uint8_t> out(static_cast<std::size_t>(train.features()));
  std::size_t checksum = 0;
  Rng rng(seed);
  auto start = clock::now();
  for (std::size_t i = 0; i < train.size(); ++i) {
    augment(train.image(i), train.rows, train.cols, settings, rng, std::span<std::uint8_t>(out));
    checksum += out[static_cast<std::size_t>(train.features() / 2)];
  }
  const double single = micro_per_image(start);

  std::vector<std::size_t> order(train.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  Matrix X;
  std::vector<std::uint8_t> labels;
  const std::size_t batch = 128;
  start = clock::now();
  for (std::size_t first = 0; first < order.size(); first += batch) {
    const std::size_t count = std::min(batch, order.size() - first);
    augment_batch(train, std::span<const std::size_t>(order).subspan(first, count), settings, seed, 1.0f / 255, X, labels, first);
    checksum += static_cast<std::size_t>(X(0, 400) * 255);
  }
  const double batched = micro_per_image(start);

  start = clock::now();
  for (std::size_t first = 0; first < order.size(); first += batch) {
    const std::size_t count = std::min(batch, order.size() - first);
    gather_batch(train, std::span<const std::size_t>(order).subspan(first, count), 1.0f / 255, X, labels);
    checksum += static_cast<std::size_t>(X(0, 400) * 255);
  }
  const double gathered = micro_per_image(start);
  std::printf("%-60s augment %.2f µs/image, augment_batch %.2f µs/image (gather_batch alone %.2f)  [%zu]\n",
              describe(settings).c_str(), single, batched, gathered, checksum % 10);
}

// Over `rounds` passes of the training set: how many augmented digits have ink (≥ 1 after
// rounding) on the outer 1-pixel frame though the original has none, and the ink mass ratio.
void check(const Dataset& train, const AugmentSettings& settings, std::uint64_t seed, int rounds) {
  std::vector<std::uint8_t> out(static_cast<std::size_t>(train.features()));
  std::vector<double> ratios;
  std::size_t touching = 0, images = 0;
  auto on_frame = [&](std::span<const std::uint8_t> pixels) {
    for (int y = 0; y < train.rows; ++y)
      for (int x = 0; x < train.cols; ++x)
        if ((y == 0 || x == 0 || y == train.rows - 1 || x == train.cols - 1) && pixels[static_cast<std::size_t>(y * train.cols + x)] > 0) return true;
    return false;
  };
  for (int round = 0; round < rounds; ++round) {
    for (std::size_t i = 0; i < train.size(); ++i) {
      Rng rng(augment_seed(seed + static_cast<std::uint64_t>(round), i));
      augment(train.image(i), train.rows, train.cols, settings, rng, std::span<std::uint8_t>(out));
      ++images;
      if (on_frame(out) && !on_frame(train.image(i))) ++touching;
      const double before = std::accumulate(train.image(i).begin(), train.image(i).end(), 0.0);
      ratios.push_back(std::accumulate(out.begin(), out.end(), 0.0) / before);
    }
  }
  std::sort(ratios.begin(), ratios.end());
  auto at = [&](double q) { return ratios[static_cast<std::size_t>(q * static_cast<double>(ratios.size() - 1))]; };
  std::printf("%-60s %zu images: %zu touch the frame; ink mass ratio min %.2f, 1%% %.2f, median %.2f, 99%% %.2f, max %.2f\n",
              describe(settings).c_str(), images, touching, ratios.front(), at(0.01), at(0.5), at(0.99), ratios.back());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Writes a PNG grid of MNIST digits and augmented copies of them (docs/augmentation.md)"};
  fs::path data_dir, output;
  std::string spec = "default";
  int digits_shown = 10, samples = 8, upscale = 3, rounds = 1;
  std::uint64_t seed = 1;
  bool timing = false, checking = false;
  app.add_option("data", data_dir, "MNIST folder (train-images-idx3-ubyte, …)")->required();
  app.add_option("output", output, "PNG to write (none: write nothing)");
  app.add_option("--augment", spec, "none, default, or e.g. shift=2,rotate=10,scale=0.1,shear=0.1,elastic=34:4,thickness=0.3")->capture_default_str();
  app.add_option("--digits", digits_shown, "rows: training digits shown, 0 1 2 … 9 0 1 …")->capture_default_str()->check(CLI::Range(1, 40));
  app.add_option("--samples", samples, "augmented copies per digit")->capture_default_str()->check(CLI::Range(1, 20));
  app.add_option("--upscale", upscale, "pixels per MNIST pixel")->capture_default_str()->check(CLI::Range(1, 10));
  app.add_option("--seed", seed, "augmentation seed")->capture_default_str();
  app.add_flag("--time", timing, "measure µs per image over the training set");
  app.add_flag("--check", checking, "count augmented digits touching the frame over the training set");
  app.add_option("--rounds", rounds, "passes over the training set for --check")->capture_default_str()->check(CLI::Range(1, 100));
  CLI11_PARSE(app, argc, argv);

  try {
    const AugmentSettings settings = parse_augment(spec);
    const TrainTestData data = load_train_test(data_dir);
    if (!output.empty()) {
      write_png(output, grid(data.train, settings, digits_shown, samples, upscale, seed));
      std::printf("wrote %s: %d digits × %d augmented copies, --augment %s, seed %llu\n", output.string().c_str(),
                  digits_shown, samples, describe(settings).c_str(), static_cast<unsigned long long>(seed));
    }
    if (timing) time_it(data.train, settings, seed);
    if (checking) check(data.train, settings, seed, rounds);
  } catch (const Error& e) {
    std::fprintf(stderr, "augment_grid: %s\n", e.what());
    return 1;
  }
  return 0;
}
