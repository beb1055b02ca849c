// Labelled images in memory, read from IDX files (LeCun's MNIST format, plain or gzipped).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "digits/tensor.hpp"

namespace digits {

// Images stay uint8 (47 MB for MNIST's training set, a quarter of float32) and become floats one
// batch at a time.
struct Dataset {
  std::string name;                  // for messages: "MNIST train", "feedback", …
  int rows = 28, cols = 28;
  std::vector<std::uint8_t> pixels;  // size() images of rows·cols bytes, row-major, 0 = background
  std::vector<std::uint8_t> labels;  // size() labels in 0–9

  std::size_t size() const { return labels.size(); }
  int features() const { return rows * cols; }
  std::span<const std::uint8_t> image(std::size_t i) const {
    return {pixels.data() + i * static_cast<std::size_t>(features()), static_cast<std::size_t>(features())};
  }
  // Appends another dataset's images (same image size), as the ancestor's improve_train did.
  void append(const Dataset& other);
};

// Reads an IDX image file and its label file (plain, or gzip by content, whatever the name says).
// Checks the magic numbers (0x00000803 images, 0x00000801 labels), the dimensions, that each file's
// length is what its header says, that both hold the same count, and that labels are 0–9 (0–10
// with max_label = kNotADigit, for files that may hold "not a digit": the feedback export).
// Every failure throws Error naming the file and what was wrong.
Dataset read_idx(const std::filesystem::path& images_path, const std::filesystem::path& labels_path,
                 std::string name, std::uint8_t max_label = 9);

// Writes an IDX pair (plain, uncompressed), atomically.
void write_idx(const Dataset& data, const std::filesystem::path& images_path, const std::filesystem::path& labels_path);

struct TrainTestData {
  Dataset train, test;
  std::map<std::string, std::string> sha256;  // file name → hex SHA-256 of the file as read
};

// Loads the four files of MNIST (or anything in its layout, such as Fashion-MNIST) from dir:
// train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte,
// each optionally ending in .gz.
TrainTestData load_train_test(const std::filesystem::path& dir);
// Only the training pair of such a directory, unhashed: for the server's learner, which replays and
// validates on training digits and never reads the test set.
Dataset load_training_set(const std::filesystem::path& dir);

// Copies the chosen images into X (indices.size() × features) as floats times scale, and their labels.
void gather_batch(const Dataset& data, std::span<const std::size_t> indices, float scale, Matrix& X,
                  std::vector<std::uint8_t>& labels);

}  // namespace digits
