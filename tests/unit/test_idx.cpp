// The IDX reader (LeCun's MNIST format, plain or gzipped): valid files round-trip, and every defect
// is an Error that names the file and says what was wrong.
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "digits/dataset.hpp"
#include "digits/error.hpp"

using namespace digits;
namespace fs = std::filesystem;

namespace {

// A fresh directory for one test, removed afterwards.
class IdxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir = fs::temp_directory_path() / ("digits-idx-" + std::string(info->name()) + "-" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
  }
  void TearDown() override { fs::remove_all(dir); }
  fs::path dir;
};

// Big-endian u32, as IDX headers are written.
void put_u32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

std::string image_header(std::uint32_t count, std::uint32_t rows, std::uint32_t cols, std::uint32_t magic = 0x00000803) {
  std::string bytes;
  put_u32(bytes, magic);
  put_u32(bytes, count);
  put_u32(bytes, rows);
  put_u32(bytes, cols);
  return bytes;
}

std::string label_header(std::uint32_t count, std::uint32_t magic = 0x00000801) {
  std::string bytes;
  put_u32(bytes, magic);
  put_u32(bytes, count);
  return bytes;
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_gzip(const fs::path& path, const std::string& bytes) {
  gzFile file = gzopen(path.c_str(), "wb");
  ASSERT_NE(file, nullptr) << path;
  ASSERT_EQ(gzwrite(file, bytes.data(), static_cast<unsigned>(bytes.size())), static_cast<int>(bytes.size()));
  ASSERT_EQ(gzclose(file), Z_OK);
}

// count images of rows×cols with varied pixel values (every byte value occurs) and labels 0–9.
Dataset sample_dataset(std::size_t count, int rows = 28, int cols = 28) {
  Dataset data;
  data.name = "sample";
  data.rows = rows;
  data.cols = cols;
  std::mt19937 rng(7);
  data.pixels.resize(count * static_cast<std::size_t>(rows * cols));
  for (std::size_t i = 0; i < data.pixels.size(); ++i) data.pixels[i] = static_cast<std::uint8_t>(i < 256 ? i : rng() & 0xff);
  for (std::size_t i = 0; i < count; ++i) data.labels.push_back(static_cast<std::uint8_t>((i * 7 + 3) % 10));
  return data;
}

// The raw file contents for a dataset: the pair write_idx would produce, built here independently.
std::string images_file(const Dataset& d) {
  return image_header(static_cast<std::uint32_t>(d.size()), static_cast<std::uint32_t>(d.rows), static_cast<std::uint32_t>(d.cols)) +
         std::string(d.pixels.begin(), d.pixels.end());
}
std::string labels_file(const Dataset& d) {
  return label_header(static_cast<std::uint32_t>(d.size())) + std::string(d.labels.begin(), d.labels.end());
}

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

#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << "message: " << (text) << "\nexpected to contain: " << (part)

void expect_same(const Dataset& a, const Dataset& b) {
  EXPECT_EQ(a.rows, b.rows);
  EXPECT_EQ(a.cols, b.cols);
  EXPECT_EQ(a.size(), b.size());
  EXPECT_TRUE(a.pixels == b.pixels) << "pixels differ";
  EXPECT_TRUE(a.labels == b.labels) << "labels differ";
}

}  // namespace

// ---- valid files ----

TEST_F(IdxTest, PlainFilesAreReadExactly) {
  const Dataset d = sample_dataset(12, 28, 28);
  write_bytes(dir / "images", images_file(d));
  write_bytes(dir / "labels", labels_file(d));
  const Dataset read = read_idx(dir / "images", dir / "labels", "mine");
  EXPECT_EQ(read.name, "mine");
  expect_same(read, d);
  // image(i) is the i-th block of rows·cols bytes.
  EXPECT_EQ(read.image(5)[0], d.pixels[5 * 784]);
  EXPECT_EQ(read.image(11)[783], d.pixels.back());
}

TEST_F(IdxTest, NonSquareImagesKeepTheirRowsAndColumns) {
  const Dataset d = sample_dataset(3, 5, 9);
  write_bytes(dir / "images", images_file(d));
  write_bytes(dir / "labels", labels_file(d));
  const Dataset read = read_idx(dir / "images", dir / "labels", "x");
  EXPECT_EQ(read.rows, 5);
  EXPECT_EQ(read.cols, 9);
  expect_same(read, d);
}

TEST_F(IdxTest, GzipFilesAreReadByContentWhateverTheirName) {
  const Dataset d = sample_dataset(20);
  write_gzip(dir / "images.gz", images_file(d));
  write_gzip(dir / "labels-without-suffix", labels_file(d));
  // The compressed file really is compressed (not passed through), or this test proves nothing.
  ASSERT_EQ(read_bytes(dir / "images.gz").substr(0, 2), std::string("\x1f\x8b"));
  expect_same(read_idx(dir / "images.gz", dir / "labels-without-suffix", "gz"), d);
}

TEST_F(IdxTest, WriteIdxWritesTheStandardBytesAndReadsBack) {
  const Dataset d = sample_dataset(7);
  write_idx(d, dir / "i", dir / "l");
  EXPECT_EQ(read_bytes(dir / "i"), images_file(d));
  EXPECT_EQ(read_bytes(dir / "l"), labels_file(d));
  expect_same(read_idx(dir / "i", dir / "l", "again"), d);
}

TEST_F(IdxTest, LoadTrainTestReadsTheFourFilesPlainOrGzippedWithTheirChecksums) {
  const Dataset train = sample_dataset(30), test = sample_dataset(10);
  write_idx(train, dir / "train-images-idx3-ubyte", dir / "train-labels-idx1-ubyte");
  write_gzip(dir / "t10k-images-idx3-ubyte.gz", images_file(test));
  write_gzip(dir / "t10k-labels-idx1-ubyte.gz", labels_file(test));
  const TrainTestData data = load_train_test(dir);
  expect_same(data.train, train);
  expect_same(data.test, test);
  ASSERT_EQ(data.sha256.size(), 4u);
  for (const char* file : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}) {
    ASSERT_TRUE(data.sha256.contains(file)) << file;
    EXPECT_EQ(data.sha256.at(file).size(), 64u) << file;
    EXPECT_EQ(data.sha256.at(file).find_first_not_of("0123456789abcdef"), std::string::npos) << file;
  }
  EXPECT_NE(data.sha256.at("train-images-idx3-ubyte"), data.sha256.at("train-labels-idx1-ubyte"));
}

TEST_F(IdxTest, ChecksumsAreTheSha256OfTheFilesAsStored) {
  // One 1×1 image of value 7 with label 3; digests from `sha256sum` of these exact bytes.
  const std::string images = image_header(1, 1, 1) + std::string(1, '\x07'), labels = label_header(1) + std::string(1, '\x03');
  write_bytes(dir / "train-images-idx3-ubyte", images);
  write_bytes(dir / "train-labels-idx1-ubyte", labels);
  write_bytes(dir / "t10k-images-idx3-ubyte", images);
  write_gzip(dir / "t10k-labels-idx1-ubyte.gz", labels);
  const TrainTestData data = load_train_test(dir);
  EXPECT_EQ(data.sha256.at("train-images-idx3-ubyte"), "ec3e57dbf3cf55a23695325c212b7c2509e701910a80f23d8b6d837231d71644");
  EXPECT_EQ(data.sha256.at("train-labels-idx1-ubyte"), "1e023d46f646a9594224597ffeb38a1e2137e06d2eebb1f6ca8a772dd766deab");
  EXPECT_EQ(data.sha256.at("t10k-images-idx3-ubyte"), "ec3e57dbf3cf55a23695325c212b7c2509e701910a80f23d8b6d837231d71644");
  // The gzipped copy of the same labels is hashed as stored (compressed), not after gunzipping.
  EXPECT_NE(data.sha256.at("t10k-labels-idx1-ubyte.gz"), "1e023d46f646a9594224597ffeb38a1e2137e06d2eebb1f6ca8a772dd766deab");
  EXPECT_EQ(data.test.labels, std::vector<std::uint8_t>{3});
}

// ---- every defect: an Error naming the file and what was wrong ----

TEST_F(IdxTest, WrongMagicInTheImageFileIsNamed) {
  const Dataset d = sample_dataset(2);
  write_bytes(dir / "images", image_header(2, 28, 28, 0x00000802) + std::string(d.pixels.begin(), d.pixels.end()));
  write_bytes(dir / "labels", labels_file(d));
  const std::string message = error_of([&] { read_idx(dir / "images", dir / "labels", "x"); });
  EXPECT_CONTAINS(message, (dir / "images").string());
  EXPECT_CONTAINS(message, "magic number 0x00000802");
  EXPECT_CONTAINS(message, "expected 0x00000803");
}

TEST_F(IdxTest, ImagesAndLabelsSwappedAreRecognised) {
  const Dataset d = sample_dataset(20);  // a label file of 28 bytes: longer than an image header
  write_idx(d, dir / "images", dir / "labels");
  const std::string message = error_of([&] { read_idx(dir / "labels", dir / "images", "x"); });
  EXPECT_CONTAINS(message, (dir / "labels").string());
  EXPECT_CONTAINS(message, "this is a label file");
}

TEST_F(IdxTest, AnImageFileGivenAsLabelsIsRecognised) {
  const Dataset d = sample_dataset(2);
  write_idx(d, dir / "images", dir / "labels");
  const std::string message = error_of([&] { read_idx(dir / "images", dir / "images", "x"); });
  EXPECT_CONTAINS(message, "magic number 0x00000803, expected 0x00000801");
  EXPECT_CONTAINS(message, "this is an image file");
}

TEST_F(IdxTest, TruncatedImageHeaderIsReported) {
  const Dataset d = sample_dataset(2);
  write_bytes(dir / "images", image_header(2, 28, 28).substr(0, 11));
  write_bytes(dir / "labels", labels_file(d));
  const std::string message = error_of([&] { read_idx(dir / "images", dir / "labels", "x"); });
  EXPECT_CONTAINS(message, (dir / "images").string());
  EXPECT_CONTAINS(message, "truncated header (11 bytes");
}

TEST_F(IdxTest, TruncatedLabelHeaderIsReported) {
  const Dataset d = sample_dataset(2);
  write_bytes(dir / "images", images_file(d));
  write_bytes(dir / "labels", label_header(2).substr(0, 5));
  const std::string message = error_of([&] { read_idx(dir / "images", dir / "labels", "x"); });
  EXPECT_CONTAINS(message, (dir / "labels").string());
  EXPECT_CONTAINS(message, "truncated header (5 bytes");
}

TEST_F(IdxTest, EmptyFileIsATruncatedHeader) {
  write_bytes(dir / "images", "");
  write_bytes(dir / "labels", "");
  const std::string message = error_of([&] { read_idx(dir / "images", dir / "labels", "x"); });
  EXPECT_CONTAINS(message, (dir / "images").string());
  EXPECT_CONTAINS(message, "truncated header (0 bytes");
}

TEST_F(IdxTest, TruncatedImageDataIsReportedWithBothLengths) {
  const Dataset d = sample_dataset(3);
  write_bytes(dir / "images", images_file(d).substr(0, 16 + 2 * 784 + 100));
  write_bytes(dir / "labels", labels_file(d));
  const std::string message = error_of([&] { read_idx(dir / "images", dir / "labels", "x"); });
  EXPECT_CONTAINS(message, (dir / "images").string());
  EXPECT_CONTAINS(message, "3 images of 28×28");
  EXPECT_CONTAINS(message, std::to_string(16 + 3 * 784) + " bytes in all");
  EXPECT_CONTAINS(message, std::to_string(16 + 2 * 784 + 100) + " bytes");
  EXPECT_CONTAINS(message, "truncated");
}

TEST_F(IdxTest, TruncatedLabelDataIsReported) {
  const Dataset d = sample_dataset(5);
  write_bytes(dir / "images", images_file(d));
  write_bytes(dir / "labels", labels_file(d).substr(0, 8 + 3));
  const std::string message = error_of([&] { read_idx(dir / "images", dir / "labels", "x"); });
  EXPECT_CONTAINS(message, (dir / "labels").string());
  EXPECT_CONTAINS(message, "5 labels");
  EXPECT_CONTAINS(message, "truncated");
}

TEST_F(IdxTest, TruncatedGzipStreamIsAnError) {
  const Dataset d = sample_dataset(50);
  write_gzip(dir / "images.gz", images_file(d));
  const std::string whole = read_bytes(dir / "images.gz");
  write_bytes(dir / "images.gz", whole.substr(0, whole.size() / 2));
  write_bytes(dir / "labels", labels_file(d));
  const std::string message = error_of([&] { read_idx(dir / "images.gz", dir / "labels", "x"); });
  EXPECT_CONTAINS(message, (dir / "images.gz").string());
}

TEST_F(IdxTest, TrailingDataInTheImageFileIsReported) {
  const Dataset d = sample_dataset(2);
  write_bytes(dir / "images", images_file(d) + "extra");
  write_bytes(dir / "labels", labels_file(d));
  const std::string message = error_of([&] { read_idx(dir / "images", dir / "labels", "x"); });
  EXPECT_CONTAINS(message, (dir / "images").string());
  EXPECT_CONTAINS(message, "trailing data");
}

TEST_F(IdxTest, TrailingDataInTheLabelFileIsReported) {
  const Dataset d = sample_dataset(2);
  write_bytes(dir / "images", images_file(d));
  write_bytes(dir / "labels", labels_file(d) + std::string(1, '\x01'));
  const std::string message = error_of([&] { read_idx(dir / "images", dir / "labels", "x"); });
  EXPECT_CONTAINS(message, (dir / "labels").string());
  EXPECT_CONTAINS(message, "trailing data");
}

TEST_F(IdxTest, CountMismatchBetweenImagesAndLabelsNamesBoth) {
  const Dataset d = sample_dataset(10);
  Dataset fewer = d;
  fewer.labels.pop_back();
  write_bytes(dir / "images", images_file(d));
  write_bytes(dir / "labels", labels_file(fewer));
  const std::string message = error_of([&] { read_idx(dir / "images", dir / "labels", "x"); });
  EXPECT_CONTAINS(message, (dir / "labels").string());
  EXPECT_CONTAINS(message, "9 labels but images has 10 images");
}

TEST_F(IdxTest, LabelAboveNineIsReportedWithItsIndex) {
  Dataset d = sample_dataset(6);
  d.labels[4] = 10;
  write_bytes(dir / "images", images_file(d));
  write_bytes(dir / "labels", labels_file(d));
  const std::string message = error_of([&] { read_idx(dir / "images", dir / "labels", "x"); });
  EXPECT_CONTAINS(message, (dir / "labels").string());
  EXPECT_CONTAINS(message, "label 10 at index 4");
}

TEST_F(IdxTest, LabelByte255IsRejected) {
  Dataset d = sample_dataset(3);
  d.labels[0] = 255;
  write_bytes(dir / "images", images_file(d));
  write_bytes(dir / "labels", labels_file(d));
  EXPECT_CONTAINS(error_of([&] { read_idx(dir / "images", dir / "labels", "x"); }), "label 255 at index 0");
}

TEST_F(IdxTest, ZeroImagesIsRejected) {
  write_bytes(dir / "images", image_header(0, 28, 28));
  write_bytes(dir / "labels", label_header(0));
  const std::string message = error_of([&] { read_idx(dir / "images", dir / "labels", "x"); });
  EXPECT_CONTAINS(message, (dir / "images").string());
  EXPECT_CONTAINS(message, "image count 0");
}

TEST_F(IdxTest, AbsurdCountIsRejectedBeforeAnyAllocation) {
  write_bytes(dir / "images", image_header(0xffffffffu, 28, 28));
  write_bytes(dir / "labels", label_header(0xffffffffu));
  const std::string message = error_of([&] { read_idx(dir / "images", dir / "labels", "x"); });
  EXPECT_CONTAINS(message, "image count 4294967295");
}

TEST_F(IdxTest, AbsurdOrZeroDimensionsAreRejected) {
  struct Case {
    std::uint32_t rows, cols;
    std::string shown;
  };
  for (const Case& c : {Case{0, 28, "0×28"}, Case{28, 0, "28×0"}, Case{100000, 28, "100000×28"}, Case{28, 0x80000000u, "28×2147483648"}}) {
    write_bytes(dir / "images", image_header(1, c.rows, c.cols) + std::string(784, '\0'));
    write_bytes(dir / "labels", label_header(1) + std::string(1, '\0'));
    const std::string message = error_of([&] { read_idx(dir / "images", dir / "labels", "x"); });
    EXPECT_CONTAINS(message, (dir / "images").string());
    EXPECT_CONTAINS(message, "image size " + c.shown);
  }
}

TEST_F(IdxTest, MissingImageFileIsNamed) {
  const Dataset d = sample_dataset(1);
  write_bytes(dir / "labels", labels_file(d));
  const std::string message = error_of([&] { read_idx(dir / "nothing-here", dir / "labels", "x"); });
  EXPECT_CONTAINS(message, (dir / "nothing-here").string());
  EXPECT_CONTAINS(message, "no such file");
}

TEST_F(IdxTest, MissingLabelFileIsNamed) {
  const Dataset d = sample_dataset(1);
  write_bytes(dir / "images", images_file(d));
  const std::string message = error_of([&] { read_idx(dir / "images", dir / "no-labels", "x"); });
  EXPECT_CONTAINS(message, (dir / "no-labels").string());
  EXPECT_CONTAINS(message, "no such file");
}

TEST_F(IdxTest, ADirectoryGivenAsAFileIsNoSuchFile) {
  const Dataset d = sample_dataset(1);
  write_bytes(dir / "labels", labels_file(d));
  EXPECT_CONTAINS(error_of([&] { read_idx(dir, dir / "labels", "x"); }), "no such file");
}

TEST_F(IdxTest, LoadTrainTestNamesEachMissingFile) {
  const std::vector<std::string> names = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
  const Dataset d = sample_dataset(2);
  for (const std::string& missing : names) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (const std::string& name : names) {
      if (name == missing) continue;
      write_bytes(dir / name, name.find("images") != std::string::npos ? images_file(d) : labels_file(d));
    }
    const std::string message = error_of([&] { load_train_test(dir); });
    EXPECT_CONTAINS(message, dir.string());
    EXPECT_CONTAINS(message, "missing " + missing);
  }
}

TEST_F(IdxTest, LoadTrainingSetReadsOnlyTheTrainingPair) {
  const Dataset train = sample_dataset(30);
  write_gzip(dir / "train-images-idx3-ubyte.gz", images_file(train));
  write_gzip(dir / "train-labels-idx1-ubyte.gz", labels_file(train));
  expect_same(load_training_set(dir), train);  // no test files needed
  EXPECT_CONTAINS(error_of([&] { load_training_set(dir / "absent"); }), "no such data directory");
  fs::remove(dir / "train-labels-idx1-ubyte.gz");
  EXPECT_CONTAINS(error_of([&] { load_training_set(dir); }), "missing train-labels-idx1-ubyte");
}

TEST_F(IdxTest, LoadTrainTestOnAMissingDirectorySaysSo) {
  const std::string message = error_of([&] { load_train_test(dir / "absent"); });
  EXPECT_CONTAINS(message, (dir / "absent").string());
  EXPECT_CONTAINS(message, "no such data directory");
}

TEST_F(IdxTest, LoadTrainTestPassesOnTheDefectOfOneFile) {
  const Dataset d = sample_dataset(4);
  write_idx(d, dir / "train-images-idx3-ubyte", dir / "train-labels-idx1-ubyte");
  write_idx(d, dir / "t10k-images-idx3-ubyte", dir / "t10k-labels-idx1-ubyte");
  Dataset bad = d;
  bad.labels[2] = 42;
  write_bytes(dir / "t10k-labels-idx1-ubyte", labels_file(bad));
  const std::string message = error_of([&] { load_train_test(dir); });
  EXPECT_CONTAINS(message, (dir / "t10k-labels-idx1-ubyte").string());
  EXPECT_CONTAINS(message, "label 42 at index 2");
}

TEST_F(IdxTest, LoadTrainTestRejectsTrainAndTestOfDifferentImageSizes) {
  write_idx(sample_dataset(2, 28, 28), dir / "train-images-idx3-ubyte", dir / "train-labels-idx1-ubyte");
  write_idx(sample_dataset(2, 20, 20), dir / "t10k-images-idx3-ubyte", dir / "t10k-labels-idx1-ubyte");
  const std::string message = error_of([&] { load_train_test(dir); });
  EXPECT_CONTAINS(message, dir.string());
  EXPECT_CONTAINS(message, "differ in size");
}
