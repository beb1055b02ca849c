// JPEG through libjpeg-turbo (Debian's libjpeg62-turbo-dev, the libjpeg API), which OSS-Fuzz
// fuzzes continuously.
//
// libjpeg reports a fatal error by calling error_exit, which must not return. A C++ exception must
// not unwind through libjpeg's C frames, so ours longjmps back to the step that called into
// libjpeg: read_header, output_size and read_pixels below each hold one setjmp, keep every C++ object outside
// themselves, and return false; decode_jpeg then throws. The Decoder's destructor frees libjpeg's
// memory on every path.
#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE and size_t first
#include <jpeglib.h>

#include <string>
#include <vector>

#include "digits/decoders.hpp"
#include "digits/error.hpp"

namespace digits {

namespace {

// A progressive JPEG may hold any number of scans, and each one is a pass over all the image's
// coefficients: cap them, as djpeg's -maxscans does, so the work stays bounded by the pixels.
// jpeg_simple_progression writes 10 scans (6 for gray); encoders that tune the scans write 10–20.
constexpr int kMaxScans = 100;

struct Decoder {
  jpeg_decompress_struct info{};
  jpeg_error_mgr errors{};
  jpeg_progress_mgr progress{};
  std::jmp_buf failed{};
  char message[JMSG_LENGTH_MAX] = {};

  Decoder() = default;
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;
  ~Decoder() { jpeg_destroy_decompress(&info); }  // safe before jpeg_create_decompress: info.mem is null
};

Decoder& decoder_of(j_common_ptr info) { return *static_cast<Decoder*>(info->client_data); }

void fail(j_common_ptr info) {
  Decoder& decoder = decoder_of(info);
  (*info->err->format_message)(info, decoder.message);
  std::longjmp(decoder.failed, 1);
}

// Warnings are libjpeg patching over corrupt data (a bad Huffman code, a truncated scan: it fills
// in gray). Like djpeg -strict, we refuse the file instead. Trace messages are dropped: the
// library never prints.
void on_message(j_common_ptr info, int level) {
  if (level < 0) fail(info);
}
void print_nothing(j_common_ptr) {}

void count_scans(j_common_ptr info) {
  if (!info->is_decompressor) return;
  if (reinterpret_cast<j_decompress_ptr>(info)->input_scan_number <= kMaxScans) return;
  Decoder& decoder = decoder_of(info);
  std::snprintf(decoder.message, sizeof decoder.message, "more than %d progressive scans", kMaxScans);
  std::longjmp(decoder.failed, 1);
}

bool read_header(Decoder& decoder, std::span<const unsigned char> bytes) {
  if (setjmp(decoder.failed)) return false;
  jpeg_create_decompress(&decoder.info);  // keeps err and client_data, zeroes the rest
  decoder.info.progress = &decoder.progress;
  jpeg_mem_src(&decoder.info, bytes.data(), static_cast<unsigned long>(bytes.size()));
  jpeg_read_header(&decoder.info, TRUE);
  return true;
}

// The output size once out_color_space and the scale are set.
bool output_size(Decoder& decoder) {
  if (setjmp(decoder.failed)) return false;
  jpeg_calc_output_dimensions(&decoder.info);
  return true;
}

// Decodes row by row into the reducer, which expects `width` pixels a row of `channels` bytes:
// width × height is the output size output_size found. A CMYK file's rows (4 bytes a pixel) are
// made RGB in `rgb` first.
bool read_pixels(Decoder& decoder, GrayReducer& reducer, int width, int height, int channels, std::vector<unsigned char>& row, std::vector<unsigned char>& rgb) {
  if (setjmp(decoder.failed)) return false;
  jpeg_decompress_struct& info = decoder.info;
  jpeg_start_decompress(&info);  // a progressive file's scans are all read here
  const bool cmyk = info.out_color_space == JCS_CMYK;
  if (static_cast<int>(info.output_width) != width || static_cast<int>(info.output_height) != height || info.output_components != (cmyk ? 4 : channels)) {
    std::snprintf(decoder.message, sizeof decoder.message, "libjpeg's output is not what its header declared");
    return false;
  }
  while (info.output_scanline < info.output_height) {
    const int y = static_cast<int>(info.output_scanline);
    JSAMPROW rows[1] = {row.data()};
    if (jpeg_read_scanlines(&info, rows, 1) != 1) {
      std::snprintf(decoder.message, sizeof decoder.message, "the data ends early");
      return false;
    }
    if (!cmyk) {
      reducer.add_row(y, row.data());
      continue;
    }
    // R = (255 − C)(255 − K)/255, and so on. Adobe's files (every CMYK JPEG we know of) store
    // 255 − ink, and there R = C·K/255.
    const auto ink = [&](unsigned char stored) { return info.saw_Adobe_marker ? 255 - stored : stored; };
    unsigned char* out = rgb.data();
    for (int x = 0; x < width; ++x) {
      const unsigned char* p = &row[4 * static_cast<std::size_t>(x)];
      for (int c = 0; c < 3; ++c) *out++ = static_cast<unsigned char>((255 - ink(p[c])) * (255 - ink(p[3])) / 255);
    }
    reducer.add_row(y, rgb.data());
  }
  return true;
}

}  // namespace

GrayImage decode_jpeg(std::span<const unsigned char> bytes, const std::string& source, const ImageLimits& limits) {
  Decoder decoder;
  decoder.info.err = jpeg_std_error(&decoder.errors);
  decoder.errors.error_exit = fail;
  decoder.errors.emit_message = on_message;
  decoder.errors.output_message = print_nothing;
  decoder.info.client_data = &decoder;
  decoder.progress.progress_monitor = count_scans;
  auto refuse = [&] { return Error(source + ": cannot decode the JPEG: " + decoder.message); };

  if (!read_header(decoder, bytes)) throw refuse();
  jpeg_decompress_struct& info = decoder.info;
  check_declared_size(info.image_width, info.image_height, source, limits);
  int channels = 0;
  switch (info.jpeg_color_space) {
    case JCS_GRAYSCALE:
      info.out_color_space = JCS_GRAYSCALE, channels = 1;
      break;
    case JCS_YCbCr:
    case JCS_RGB:
      info.out_color_space = JCS_RGB, channels = 3;
      break;
    case JCS_CMYK:
    case JCS_YCCK:
      info.out_color_space = JCS_CMYK, channels = 3;  // made RGB row by row
      break;
    default:
      throw Error(source + ": a JPEG of " + std::to_string(info.num_components) + " components in a colour space digits does not know");
  }
  // A large image is decoded at 1/2, 1/4 or 1/8 scale: libjpeg-turbo's scaled inverse DCT makes
  // each output pixel from its block's low frequencies (at 1/8, the DC coefficient alone: the
  // block's mean), so most of the IDCT, upsampling and colour work is skipped. The largest power
  // of two up to the reduction factor (image.hpp); the reducer takes the rest.
  const int factor = reduction_factor(static_cast<int>(info.image_width), static_cast<int>(info.image_height));
  info.scale_num = 1;
  info.scale_denom = factor >= 8 ? 8 : factor >= 4 ? 4 : factor >= 2 ? 2 : 1;
  if (!output_size(decoder)) throw refuse();
  const int width = static_cast<int>(info.output_width), height = static_cast<int>(info.output_height);
  GrayReducer reducer(width, height, reduction_factor(width, height), channels, channels == 3, false);
  std::vector<unsigned char> row(static_cast<std::size_t>(width) * (info.out_color_space == JCS_CMYK ? 4 : static_cast<std::size_t>(channels)));
  std::vector<unsigned char> rgb(info.out_color_space == JCS_CMYK ? 3 * static_cast<std::size_t>(width) : 0);
  if (!read_pixels(decoder, reducer, width, height, channels, row, rgb)) throw refuse();
  return reducer.finish();
}

}  // namespace digits
