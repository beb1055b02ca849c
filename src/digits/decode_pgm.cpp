// PGM, Netpbm's gray map: our own reader, of both kinds. The header is "P5" (binary) or "P2"
// (plain text), then width, height and the largest sample value (maxval, 1–65535) as decimal
// numbers, separated by whitespace, with '#' comments to the end of a line allowed between them,
// and one whitespace byte. Then width × height samples: for P5 one byte each if maxval < 256, else
// two bytes, big-endian; for P2 decimal numbers separated by whitespace. Samples are scaled from
// 0–maxval to 0–255. The specification: netpbm.sourceforge.net/doc/pgm.html. fuzz/ fuzzes it
// through decode_image.
#include <cstdint>
#include <string>
#include <vector>

#include "digits/decoders.hpp"
#include "digits/error.hpp"

namespace digits {

namespace {

bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

constexpr int kMaxDigits = 18;  // any header number with more digits is absurd; 18 digits fit in 64 bits

class Reader {
 public:
  Reader(std::span<const unsigned char> bytes, const std::string& source) : bytes_(bytes), source_(source) {}

  std::size_t position() const { return at_; }

  // A decimal number after whitespace and (in the header) comments.
  std::uint64_t number(const char* what, bool comments) {
    while (at_ < bytes_.size() && (is_space(bytes_[at_]) || (comments && bytes_[at_] == '#'))) {
      if (bytes_[at_] == '#')
        while (at_ < bytes_.size() && bytes_[at_] != '\n' && bytes_[at_] != '\r') ++at_;
      else
        ++at_;
    }
    if (at_ == bytes_.size()) throw Error(source_ + ": the PGM file ends before its " + what);
    if (!is_digit(bytes_[at_])) throw Error(source_ + ": the PGM's " + what + " is not a number");
    std::uint64_t value = 0;
    for (int digits = 0; at_ < bytes_.size() && is_digit(bytes_[at_]); ++at_, ++digits) {
      if (digits == kMaxDigits) throw Error(source_ + ": the PGM's " + what + " has more than " + std::to_string(kMaxDigits) + " digits");
      value = value * 10 + (bytes_[at_] - '0');
    }
    return value;
  }

  // The one whitespace byte between the header and binary samples.
  void separator() {
    if (at_ == bytes_.size() || !is_space(bytes_[at_])) throw Error(source_ + ": the PGM's header does not end in whitespace");
    ++at_;
  }

 private:
  std::span<const unsigned char> bytes_;
  const std::string& source_;
  std::size_t at_ = 2;  // after "P5" or "P2"
};

}  // namespace

GrayImage decode_pgm(std::span<const unsigned char> bytes, const std::string& source, const ImageLimits& limits) {
  const bool plain = bytes[1] == '2';
  Reader reader(bytes, source);
  if (bytes.size() < 3 || !is_space(bytes[2])) throw Error(source + ": not a PGM file: \"P" + (plain ? "2" : "5") + "\" is not followed by whitespace");
  const std::uint64_t width = reader.number("width", true), height = reader.number("height", true);
  check_declared_size(width, height, source, limits);
  const std::uint64_t maxval = reader.number("maxval", true);
  if (maxval == 0 || maxval > 65535) throw Error(source + ": the PGM's maxval is " + std::to_string(maxval) + " (it must be 1–65535)");
  reader.separator();

  // The samples must all be there before we allocate for them: for P2, each takes at least one
  // digit and one whitespace byte (but the last).
  const std::size_t count = width * height, left = bytes.size() - reader.position();
  const std::size_t sample_bytes = maxval < 256 ? 1 : 2;
  if (plain ? count > left / 2 + 1 : count > left / sample_bytes)
    throw Error(source + ": the PGM's samples are cut short: " + std::to_string(width) + "×" + std::to_string(height) + " samples cannot fit in the " +
                std::to_string(left) + " bytes after its header");

  const int w = static_cast<int>(width), h = static_cast<int>(height);
  GrayReducer reducer(w, h, reduction_factor(w, h), 1, false, false);
  std::vector<unsigned char> row(width);
  const unsigned char* data = bytes.data() + reader.position();
  for (std::size_t y = 0, i = 0; y < height; ++y) {
    for (std::size_t x = 0; x < width; ++x, ++i) {
      std::uint64_t value = 0;
      if (plain)
        value = reader.number("samples", false);
      else
        value = sample_bytes == 1 ? data[i] : static_cast<std::uint64_t>(data[2 * i] << 8 | data[2 * i + 1]);
      if (value > maxval) throw Error(source + ": a sample of the PGM is " + std::to_string(value) + ", above its maxval " + std::to_string(maxval));
      row[x] = static_cast<unsigned char>((value * 255 + maxval / 2) / maxval);
    }
    reducer.add_row(static_cast<int>(y), row.data());
  }
  return reducer.finish();
}

}  // namespace digits
