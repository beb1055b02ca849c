// PNG through libspng (Debian's libspng-dev), which OSS-Fuzz fuzzes continuously.
#include <spng.h>

#include <memory>

#include "digits/decoders.hpp"
#include "digits/error.hpp"
#include "digits/image.hpp"

namespace digits {

namespace {

// Ancillary chunks (text, ICC profiles, Exif…) are no use to us, but libspng reads and keeps
// them: cap one chunk and all of them together, so they cannot cost much memory. IDAT, the
// pixels, is not capped by this; its size follows from the header's size, checked first.
constexpr std::size_t kMaxChunkBytes = std::size_t{1} << 20;
constexpr std::size_t kMaxChunkCacheBytes = std::size_t{4} << 20;

struct ContextFree {
  void operator()(spng_ctx* context) const { spng_ctx_free(context); }
};

std::uint32_t big_endian_u32(std::span<const unsigned char> bytes, std::size_t at) {
  return std::uint32_t{bytes[at]} << 24 | std::uint32_t{bytes[at + 1]} << 16 | std::uint32_t{bytes[at + 2]} << 8 | std::uint32_t{bytes[at + 3]};
}

// The size from the IHDR chunk, which the PNG specification puts first, right after the 8-byte
// signature: length 13, "IHDR", width, height (big-endian). Checked before libspng runs at all,
// so a PNG declaring 30,000×30,000 pixels is refused on its first 24 bytes.
void check_ihdr_size(std::span<const unsigned char> bytes, const std::string& source, const ImageLimits& limits) {
  if (bytes.size() < 24 || big_endian_u32(bytes, 8) != 13 || big_endian_u32(bytes, 12) != 0x49484452)  // "IHDR"
    throw Error(source + ": not a PNG file: it does not start with an IHDR chunk");
  check_declared_size(big_endian_u32(bytes, 16), big_endian_u32(bytes, 20), source, limits);
}

// Adam7, the PNG interlace (PNG specification §8.2): pass p holds the pixels x = x0 + k·dx of the
// rows y = y0 + j·dy.
struct Pass {
  int x0, dx;
};
constexpr Pass kAdam7[7] = {{0, 8}, {4, 8}, {0, 4}, {2, 4}, {0, 2}, {1, 2}, {0, 1}};

void check(int status, const std::string& source, const char* step) {
  if (status != 0) throw Error(source + ": cannot decode the PNG (" + step + "): " + spng_strerror(status));
}

}  // namespace

GrayImage decode_png(std::span<const unsigned char> bytes, const std::string& source, const ImageLimits& limits) {
  check_ihdr_size(bytes, source, limits);
  // The zlib stream's Adler-32 guards against corruption in transit, not against an attacker (who
  // can compute it), and costs a fifth of the decoding time; stb_image never checked it either.
  // The chunks' CRCs are still checked.
  std::unique_ptr<spng_ctx, ContextFree> context(spng_ctx_new(SPNG_CTX_IGNORE_ADLER32));
  if (!context) throw Error(source + ": out of memory for the PNG decoder");
  spng_ctx* png = context.get();
  check(spng_set_image_limits(png, kMaxImageSide, kMaxImageSide), source, "limits");
  check(spng_set_chunk_limits(png, kMaxChunkBytes, kMaxChunkCacheBytes), source, "limits");
  check(spng_set_png_buffer(png, bytes.data(), bytes.size()), source, "input");
  spng_ihdr header{};
  check(spng_get_ihdr(png, &header), source, "header");

  const bool gray = header.color_type == SPNG_COLOR_TYPE_GRAYSCALE || header.color_type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA;
  spng_trns transparency{};
  const int trns = spng_get_trns(png, &transparency);  // a palette's alphas, or the one transparent colour
  if (trns != SPNG_ECHUNKAVAIL) check(trns, source, "chunks");  // reading up to the pixels can fail (limits, CRC…)
  const bool transparent_colour = trns == 0;
  const bool alpha = header.color_type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA || header.color_type == SPNG_COLOR_TYPE_TRUECOLOR_ALPHA || transparent_colour;

  // 8-bit gray, gray+alpha, RGB and RGBA come out as they are stored (SPNG_FMT_PNG), three times
  // faster than through libspng's conversion to RGBA. Everything else libspng turns into 8-bit
  // RGBA (16-bit samples keep their high byte; a palette is looked up; tRNS becomes alpha).
  const bool as_stored = header.bit_depth == 8 && header.color_type != SPNG_COLOR_TYPE_INDEXED && !transparent_colour;
  const int format = as_stored ? SPNG_FMT_PNG : SPNG_FMT_RGBA8;
  const int bytes_per_pixel = as_stored ? (gray ? 1 : 3) + (alpha ? 1 : 0) : 4;
  const int width = static_cast<int>(header.width), height = static_cast<int>(header.height);
  GrayReducer reducer(width, height, reduction_factor(width, height), bytes_per_pixel, !gray, alpha);

  // Row by row (libspng's progressive decoding): one scanline is held at a time, never the image.
  // An interlaced image's scanlines are its passes' rows, each holding every dx-th pixel of row_num.
  check(spng_decode_image(png, nullptr, 0, format, (as_stored ? 0 : SPNG_DECODE_TRNS) | SPNG_DECODE_PROGRESSIVE), source, "pixels");
  std::vector<unsigned char> scanline(static_cast<std::size_t>(width) * static_cast<std::size_t>(bytes_per_pixel));
  for (;;) {
    spng_row_info row{};
    int status = spng_get_row_info(png, &row);
    if (status == SPNG_EOI) break;
    check(status, source, "pixels");
    status = spng_decode_scanline(png, scanline.data(), scanline.size());
    if (status != 0 && status != SPNG_EOI) check(status, source, "pixels");
    const Pass pass = header.interlace_method ? kAdam7[row.pass] : Pass{0, 1};
    reducer.add(static_cast<int>(row.row_num), scanline.data(), pass.x0, pass.dx, (width - pass.x0 + pass.dx - 1) / pass.dx);
    if (status == SPNG_EOI) break;
  }
  return reducer.finish();
}

}  // namespace digits
