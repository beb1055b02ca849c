#include "digits/dataset.hpp"

#include <zlib.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <memory>

#include "digits/error.hpp"
#include "digits/file_util.hpp"
#include "digits/sha256.hpp"

namespace digits {

namespace fs = std::filesystem;

void Dataset::append(const Dataset& other) {
  if (other.size() == 0) return;
  if (other.rows != rows || other.cols != cols)
    throw Error(other.name + ": images are " + std::to_string(other.rows) + "×" + std::to_string(other.cols) +
                " but " + name + " has " + std::to_string(rows) + "×" + std::to_string(cols));
  pixels.insert(pixels.end(), other.pixels.begin(), other.pixels.end());
  labels.insert(labels.end(), other.labels.begin(), other.labels.end());
}

namespace {

constexpr std::uint32_t kImagesMagic = 0x00000803;  // unsigned byte data, 3 dimensions
constexpr std::uint32_t kLabelsMagic = 0x00000801;  // unsigned byte data, 1 dimension
constexpr std::uint32_t kMaxCount = 10'000'000;     // far above any dataset of this kind
constexpr std::uint32_t kMaxSide = 1024;

// Reads a whole file, gunzipping it if it is gzip (zlib passes plain files through unchanged).
std::vector<std::uint8_t> read_maybe_gzipped(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw Error(path.string() + ": no such file");
  struct GzCloser {
    void operator()(gzFile f) const { gzclose(f); }
  };
  std::unique_ptr<gzFile_s, GzCloser> file(gzopen(path.c_str(), "rb"));
  if (!file) throw Error(path.string() + ": cannot open");
  // Room for the whole file at once: grown by doubling, a 47 MB file passed through 64 MB with a
  // 32 MB copy beside it. A gzip file's last 4 bytes give its size unpacked (mod 2³², RFC 1952),
  // trusted only up to 256 MiB since anyone can write them.
  std::vector<std::uint8_t> bytes;
  std::size_t expected = static_cast<std::size_t>(fs::file_size(path, ec));
  if (std::ifstream in(path, std::ios::binary); in && expected >= 18) {
    unsigned char magic[2] = {};
    in.read(reinterpret_cast<char*>(magic), 2);
    if (magic[0] == 0x1f && magic[1] == 0x8b) {
      unsigned char size[4] = {};
      in.seekg(-4, std::ios::end);
      in.read(reinterpret_cast<char*>(size), 4);
      const std::size_t unpacked = std::size_t{size[0]} | std::size_t{size[1]} << 8 | std::size_t{size[2]} << 16 | std::size_t{size[3]} << 24;
      expected = std::min<std::size_t>(unpacked, std::size_t{256} << 20);
    }
  }
  if (!ec) bytes.reserve(std::min<std::size_t>(expected, std::size_t{1} << 32));  // the most read_maybe_gzipped reads
  std::array<std::uint8_t, 1 << 16> chunk;
  for (;;) {
    const int n = gzread(file.get(), chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int code = 0;
      const char* message = gzerror(file.get(), &code);
      throw Error(path.string() + ": cannot read (" + (message ? message : "gzip error") + ")");
    }
    if (n == 0) break;
    bytes.insert(bytes.end(), chunk.begin(), chunk.begin() + n);
    if (bytes.size() > (std::size_t{1} << 32)) throw Error(path.string() + ": larger than 4 GiB, not an IDX file of images");
  }
  return bytes;
}

std::uint32_t big_endian_u32(const std::vector<std::uint8_t>& bytes, std::size_t at) {
  return (std::uint32_t{bytes[at]} << 24) | (std::uint32_t{bytes[at + 1]} << 16) |
         (std::uint32_t{bytes[at + 2]} << 8) | std::uint32_t{bytes[at + 3]};
}

std::string hex32(std::uint32_t v) {
  char text[11];
  std::snprintf(text, sizeof text, "0x%08x", v);
  return text;
}

void check_length(const fs::path& path, std::size_t actual, std::size_t header, std::size_t expected,
                  const std::string& what) {
  if (actual < header) throw Error(path.string() + ": truncated header (" + std::to_string(actual) + " bytes)");
  if (actual != expected)
    throw Error(path.string() + ": the header says " + what + " (" + std::to_string(expected) + " bytes in all) but the file has " +
                std::to_string(actual) + " bytes" + (actual < expected ? " (truncated?)" : " (trailing data)"));
}

}  // namespace

Dataset read_idx(const fs::path& images_path, const fs::path& labels_path, std::string name, std::uint8_t max_label) {
  Dataset data;
  data.name = std::move(name);

  std::vector<std::uint8_t> images = read_maybe_gzipped(images_path);
  if (images.size() < 16) throw Error(images_path.string() + ": truncated header (" + std::to_string(images.size()) + " bytes; an IDX image file starts with 16)");
  if (const std::uint32_t magic = big_endian_u32(images, 0); magic != kImagesMagic)
    throw Error(images_path.string() + ": magic number " + hex32(magic) + ", expected " + hex32(kImagesMagic) +
                " for an IDX file of images" + (magic == kLabelsMagic ? " (this is a label file)" : ""));
  const std::uint32_t count = big_endian_u32(images, 4);
  const std::uint32_t rows = big_endian_u32(images, 8);
  const std::uint32_t cols = big_endian_u32(images, 12);
  if (count == 0 || count > kMaxCount) throw Error(images_path.string() + ": implausible image count " + std::to_string(count));
  if (rows == 0 || cols == 0 || rows > kMaxSide || cols > kMaxSide)
    throw Error(images_path.string() + ": implausible image size " + std::to_string(rows) + "×" + std::to_string(cols));
  const std::size_t image_bytes = std::size_t{count} * rows * cols;
  check_length(images_path, images.size(), 16, 16 + image_bytes,
               std::to_string(count) + " images of " + std::to_string(rows) + "×" + std::to_string(cols));

  const std::vector<std::uint8_t> labels = read_maybe_gzipped(labels_path);
  if (labels.size() < 8) throw Error(labels_path.string() + ": truncated header (" + std::to_string(labels.size()) + " bytes; an IDX label file starts with 8)");
  if (const std::uint32_t magic = big_endian_u32(labels, 0); magic != kLabelsMagic)
    throw Error(labels_path.string() + ": magic number " + hex32(magic) + ", expected " + hex32(kLabelsMagic) +
                " for an IDX file of labels" + (magic == kImagesMagic ? " (this is an image file)" : ""));
  const std::uint32_t label_count = big_endian_u32(labels, 4);
  check_length(labels_path, labels.size(), 8, 8 + std::size_t{label_count}, std::to_string(label_count) + " labels");
  if (label_count != count)
    throw Error(labels_path.string() + ": " + std::to_string(label_count) + " labels but " + images_path.filename().string() +
                " has " + std::to_string(count) + " images");

  for (std::size_t i = 0; i < label_count; ++i) {
    if (labels[8 + i] > max_label)
      throw Error(labels_path.string() + ": label " + std::to_string(labels[8 + i]) + " at index " + std::to_string(i) +
                  (max_label > 9 ? " is neither a digit 0–9 nor 10 (not a digit)" : " is not a digit 0–9"));
  }
  data.rows = static_cast<int>(rows);
  data.cols = static_cast<int>(cols);
  images.erase(images.begin(), images.begin() + 16);  // the header: the pixels are the rest, moved not copied
  data.pixels = std::move(images);
  data.labels.assign(labels.begin() + 8, labels.end());
  return data;
}

void write_idx(const Dataset& data, const fs::path& images_path, const fs::path& labels_path) {
  auto u32 = [](std::string& out, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
  };
  std::string images, labels;
  u32(images, kImagesMagic);
  u32(images, static_cast<std::uint32_t>(data.size()));
  u32(images, static_cast<std::uint32_t>(data.rows));
  u32(images, static_cast<std::uint32_t>(data.cols));
  images.append(data.pixels.begin(), data.pixels.end());
  u32(labels, kLabelsMagic);
  u32(labels, static_cast<std::uint32_t>(data.size()));
  labels.append(data.labels.begin(), data.labels.end());
  write_file_atomically(images_path, images);
  write_file_atomically(labels_path, labels);
}

namespace {

// One of the files of an MNIST-layout directory, plain or gzipped, under MNIST's names.
fs::path find_idx_file(const fs::path& dir, const std::string& stem) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(dir.string() + ": no such data directory");
  for (const std::string& candidate : {stem, stem + ".gz"}) {
    if (fs::is_regular_file(dir / candidate, ec)) return dir / candidate;
  }
  throw Error(dir.string() + ": missing " + stem + " (or " + stem + ".gz); get MNIST with scripts/fetch-mnist");
}

}  // namespace

Dataset load_training_set(const fs::path& dir) {
  return read_idx(find_idx_file(dir, "train-images-idx3-ubyte"), find_idx_file(dir, "train-labels-idx1-ubyte"), "train");
}

TrainTestData load_train_test(const fs::path& dir) {
  auto find = [&](const std::string& stem) { return find_idx_file(dir, stem); };
  const fs::path train_images = find("train-images-idx3-ubyte"), train_labels = find("train-labels-idx1-ubyte");
  const fs::path test_images = find("t10k-images-idx3-ubyte"), test_labels = find("t10k-labels-idx1-ubyte");

  TrainTestData result;
  result.train = read_idx(train_images, train_labels, "train");
  result.test = read_idx(test_images, test_labels, "test");
  if (result.train.rows != result.test.rows || result.train.cols != result.test.cols)
    throw Error(dir.string() + ": training and test images differ in size");
  for (const fs::path& p : {train_images, train_labels, test_images, test_labels})
    result.sha256[p.filename().string()] = sha256_file_hex(p);
  return result;
}

void gather_batch(const Dataset& data, std::span<const std::size_t> indices, float scale, Matrix& X,
                  std::vector<std::uint8_t>& labels) {
  const auto features = static_cast<Eigen::Index>(data.features());
  X.resize(static_cast<Eigen::Index>(indices.size()), features);
  labels.resize(indices.size());
  // The rows come from random places in a 47 MB array, so each is a cache miss: ask for a few
  // rows ahead while converting this one, and the misses overlap instead of queueing.
  constexpr std::size_t kAhead = 4;
  const std::size_t row_bytes = static_cast<std::size_t>(features);
  auto prefetch_row = [&](std::size_t r) {
    const std::uint8_t* start = data.pixels.data() + indices[r] * row_bytes;
    for (std::size_t offset = 0; offset < row_bytes; offset += 64) __builtin_prefetch(start + offset);
  };
  for (std::size_t r = 0; r < std::min(kAhead, indices.size()); ++r) prefetch_row(r);
  for (std::size_t r = 0; r < indices.size(); ++r) {
    if (r + kAhead < indices.size()) prefetch_row(r + kAhead);
    // __restrict: a uint8_t may alias anything, and without the promise the compiler converts one
    // pixel at a time (a fifth of a seed training step) instead of sixteen.
    const std::uint8_t* __restrict source = data.pixels.data() + indices[r] * static_cast<std::size_t>(features);
    float* __restrict row = X.data() + static_cast<Eigen::Index>(r) * features;
    for (Eigen::Index c = 0; c < features; ++c) row[c] = static_cast<float>(source[c]) * scale;
    labels[r] = data.labels[indices[r]];
  }
}

}  // namespace digits
