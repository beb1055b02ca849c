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
void check_ihdr_size(std::span<const unsigned char> bytes, const std::string& source) {
  if (bytes.size() < 24 || big_endian_u32(bytes, 8) != 13 || big_endian_u32(bytes, 12) != 0x49484452)  // "IHDR"
    throw Error(source + ": not a PNG file: it does not start with an IHDR chunk");
  check_declared_size(big_endian_u32(bytes, 16), big_endian_u32(bytes, 20), source);
}

void check(int status, const std::string& source, const char* step) {
  if (status != 0) throw Error(source + ": cannot decode the PNG (" + step + "): " + spng_strerror(status));
}

}  // namespace

Pixels decode_png(std::span<const unsigned char> bytes, const std::string& source) {
  check_ihdr_size(bytes, source);
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
  Pixels pixels{static_cast<int>(header.width), static_cast<int>(header.height), (gray ? 1 : 3) + (alpha ? 1 : 0), {}};

  // 8-bit gray, gray+alpha, RGB and RGBA are already what Pixels holds: libspng copies them out
  // as they are (SPNG_FMT_PNG), three times faster than through its conversion to RGBA.
  if (header.bit_depth == 8 && header.color_type != SPNG_COLOR_TYPE_INDEXED && !transparent_colour) {
    std::size_t size = 0;
    check(spng_decoded_image_size(png, SPNG_FMT_PNG, &size), source, "size");
    pixels.samples.resize(size);
    check(spng_decode_image(png, pixels.samples.data(), size, SPNG_FMT_PNG, 0), source, "pixels");
    return pixels;
  }

  // Everything else libspng turns into 8-bit RGBA (16-bit samples keep their high byte; a palette
  // is looked up; tRNS becomes alpha), and we keep the channels the PNG has.
  std::size_t size = 0;
  check(spng_decoded_image_size(png, SPNG_FMT_RGBA8, &size), source, "size");
  std::vector<unsigned char> rgba(size);
  check(spng_decode_image(png, rgba.data(), rgba.size(), SPNG_FMT_RGBA8, SPNG_DECODE_TRNS), source, "pixels");
  // Packed in place: pixel i moves from 4i to channels·i, never ahead of what is still to be read.
  const std::size_t count = rgba.size() / 4;
  unsigned char* out = rgba.data();
  for (std::size_t i = 0; i < count; ++i) {
    const unsigned char* p = &rgba[4 * i];
    const unsigned char r = p[0], g = p[1], b = p[2], a = p[3];
    *out++ = r;
    if (!gray) {
      *out++ = g;
      *out++ = b;
    }
    if (alpha) *out++ = a;
  }
  rgba.resize(count * static_cast<std::size_t>(pixels.channels));
  pixels.samples = std::move(rgba);
  return pixels;
}

}  // namespace digits
