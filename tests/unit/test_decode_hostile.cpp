// decode_image against hostile bytes: each finding of issue 11 (reached through stb_image before
// libspng, libjpeg-turbo and our own readers replaced it) is refused here with a clear error:
// PIC (CVE-2023-43898), HDR's endless loop (CVE-2021-42715) and its 4096² header, GIF and TGA, a
// JPEG with a corrupt Huffman table, a PNM header whose size overflows. So are declared sizes over
// the limits (before anything is decoded), decompression bombs and truncated files of each format.
// How quickly each is refused is measured in bench/ (BM_Refuse*), never timed here.
#include <gtest/gtest.h>

#include <string>
#include <typeinfo>

#include "digits/image.hpp"
#include "image_files.hpp"

using namespace digits;
using namespace digits::testing;

namespace {

#define EXPECT_CONTAINS(text, part) EXPECT_NE(std::string(text).find(part), std::string::npos) << "text: " << (text) << "\nexpected to contain: " << (part)

// The message of the error decode_image throws, checked to be exactly of type E (an Error that is
// neither UnsupportedImage nor ImageTooLarge when E is Error).
template <class E>
std::string refusal(const std::string& bytes) {
  try {
    decode(bytes);
  } catch (const Error& e) {
    EXPECT_EQ(typeid(e), typeid(E)) << e.what();
    EXPECT_CONTAINS(e.what(), "test image: ");
    return e.what();
  }
  ADD_FAILURE() << "decoded without an error";
  return "";
}

const std::string kAccepted = "it reads PNG, JPEG, BMP and PGM";

// ---- the findings of issue 11 ----

TEST(DecodeHostile, PicIsUnsupported) {
  // The 219-byte request's image: a Softimage PIC header whose channel packets make stb_image
  // dereference NULL (CVE-2023-43898).
  std::string pic("\x53\x80\xf6\x34", 4);
  pic += std::string(84, ' ') + "PICT" + std::string("\x00\x10\x00\x10\x3f\x80\x00\x00\x00\x03", 10) + std::string("\x00\x08\x02\xf0", 4);
  const std::string message = refusal<UnsupportedImage>(pic);
  EXPECT_CONTAINS(message, "a Softimage PIC image, which digits does not read");
  EXPECT_CONTAINS(message, kAccepted);
}

TEST(DecodeHostile, HdrIsUnsupported) {
  // The header of 4096×4096 that cost stb_image 1.35 s and 265 MB, and the run-length scanline
  // that sent it into an endless loop at the end of the data (CVE-2021-42715).
  const std::string header = "#?RADIANCE\nFORMAT=32-bit_rle_rgbe\n\n-Y 4096 +X 4096\n";
  EXPECT_CONTAINS(refusal<UnsupportedImage>(header + std::string(4, '\0')), "a Radiance HDR image");
  EXPECT_CONTAINS(refusal<UnsupportedImage>(header + std::string("\x02\x02\x10\x00", 4)), "a Radiance HDR image");
  EXPECT_CONTAINS(refusal<UnsupportedImage>("#?RGBE\n\n-Y 8 +X 8\n"), kAccepted);
}

TEST(DecodeHostile, GifAndTgaAreUnsupported) {
  // A 1×1 GIF89a.
  const std::string gif("GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02\x44\x01\x00;", 35);
  EXPECT_CONTAINS(refusal<UnsupportedImage>(gif), "a GIF image, which digits does not read; " + kAccepted);
  // TGA has no magic bytes: an uncompressed 1×1 true-colour header and one BGR pixel.
  const std::string tga(std::string("\x00\x00\x02", 3) + std::string(9, '\0') + std::string("\x01\x00\x01\x00\x18\x00", 6) + "\xff\xff\xff");
  EXPECT_CONTAINS(refusal<UnsupportedImage>(tga), "not an image digits reads; " + kAccepted);
  EXPECT_CONTAINS(refusal<UnsupportedImage>("hello, I am not an image\n"), "not an image digits reads");
}

TEST(DecodeHostile, JpegWithACorruptHuffmanTableIsRefused) {
  // stb_image wrote out of bounds building this table (stb issue #1289). Replace the first DHT's
  // 16 code-length counts with ones that ask for more codes than fit: two of length 1 leave no
  // code for length 2 (libjpeg checks it when the scan starts).
  std::string jpeg = Jpeg{.width = 8, .height = 8, .components = 1, .samples = std::vector<unsigned char>(64, 128)}.encode();
  const std::size_t dht = jpeg.find("\xff\xc4");
  ASSERT_NE(dht, std::string::npos);
  const std::size_t counts = dht + 5;  // marker, length (2), table class and id (1)
  for (std::size_t i = 0; i < 16; ++i) jpeg[counts + i] = 0;
  jpeg[counts] = 2, jpeg[counts + 1] = 10;  // still the table's 12 symbols, so the marker's length holds
  EXPECT_CONTAINS(refusal<Error>(jpeg), "cannot decode the JPEG: Bogus Huffman table definition");
}

TEST(DecodeHostile, PnmHeaderWhoseSizeOverflowsIsRefused) {
  // stb_image multiplied width × height × channels in 32 bits: 65536 × 65536 wraps to 0.
  EXPECT_CONTAINS(refusal<ImageTooLarge>("P5\n65536 65536\n255\n"), "65536×65536 pixels is more than digits accepts");
  EXPECT_CONTAINS(refusal<ImageTooLarge>("P5 4294967297 4294967297 255\n"), "4294967297×4294967297");
  EXPECT_CONTAINS(refusal<Error>("P2 99999999999999999999 1 255\n"), "width has more than 18 digits");
  EXPECT_CONTAINS(refusal<UnsupportedImage>("P6\n65536 65536\n255\n"), "a PPM image");
}

// ---- declared sizes: refused from the header, before decoding ----

TEST(DecodeHostile, PngDeclaring30000SquaredIsRefusedFromItsHeader) {
  // 100 KB of real compressed rows (about 3,400 black rows) behind an IHDR of 30,000×30,000.
  z_stream stream{};
  ASSERT_EQ(deflateInit(&stream, 9), Z_OK);
  const std::string row(1 + 30000, '\0');
  std::string rows(1 << 16, '\0'), idat;
  for (int flush = Z_NO_FLUSH; flush != Z_FINISH;) {
    flush = idat.size() < 100'000 ? Z_NO_FLUSH : Z_FINISH;
    stream.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(row.data()));
    stream.avail_in = static_cast<uInt>(row.size());
    do {
      stream.next_out = reinterpret_cast<Bytef*>(rows.data());
      stream.avail_out = static_cast<uInt>(rows.size());
      deflate(&stream, flush);
      idat.append(rows.data(), rows.size() - stream.avail_out);
    } while (stream.avail_out == 0);
  }
  deflateEnd(&stream);
  const std::string png = kPngSignature + png_ihdr(30000, 30000, 8, 0) + png_chunk("IDAT", idat) + png_chunk("IEND", "");
  ASSERT_GT(png.size(), 90'000u);
  EXPECT_CONTAINS(refusal<ImageTooLarge>(png), "test image: 30000×30000 pixels is more than digits accepts (at most 4096 pixels a side and 12582912 in all)");
}

TEST(DecodeHostile, EachFormatChecksSideAndPixelCount) {
  // 4096×4096: each side is allowed, the pixel count is not. 4097 × 1: the side is not.
  for (auto [width, height] : {std::pair{4096u, 4096u}, std::pair{4097u, 1u}, std::pair{1u, 70000u}}) {
    const std::string size = std::to_string(width) + "×" + std::to_string(height);
    SCOPED_TRACE(size);
    // PNG: only the header. The CRC is right, so libspng's own limit would refuse it too.
    EXPECT_CONTAINS(refusal<ImageTooLarge>(kPngSignature + png_ihdr(width, height, 8, 0)), size);
    // BMP: a header with no pixels after it.
    Bmp bmp{.width = 1, .height = 1, .bits = 24, .pixels = {0}};
    std::string header = bmp.encode().substr(0, 54);
    header.replace(18, 4, std::string{static_cast<char>(width), static_cast<char>(width >> 8), static_cast<char>(width >> 16), 0});
    header.replace(22, 4, std::string{static_cast<char>(height), static_cast<char>(height >> 8), static_cast<char>(height >> 16), 0});
    EXPECT_CONTAINS(refusal<ImageTooLarge>(header), size);
    EXPECT_CONTAINS(refusal<ImageTooLarge>("P5 " + std::to_string(width) + " " + std::to_string(height) + " 255\n"), size);
  }
  // JPEG: the frame header (SOF) holds the size; rewrite it in a real file. 16 bits a side.
  std::string jpeg = Jpeg{.width = 8, .height = 8, .components = 1, .samples = std::vector<unsigned char>(64, 99)}.encode();
  const std::size_t sof = jpeg.find("\xff\xc0");
  ASSERT_NE(sof, std::string::npos);
  jpeg.replace(sof + 5, 4, std::string("\x75\x30\x75\x30", 4));  // height, width: 30000, 30000
  EXPECT_CONTAINS(refusal<ImageTooLarge>(jpeg), "30000×30000 pixels");
}

TEST(DecodeHostile, EmptySizesAreBrokenNotTooLarge) {
  EXPECT_CONTAINS(refusal<Error>("P5 0 5 255\n"), "declares an image of 0×5 pixels");
  EXPECT_CONTAINS(refusal<Error>(kPngSignature + png_ihdr(0, 7, 8, 0)), "0×7");
  EXPECT_CONTAINS(refusal<Error>(""), "empty file");
}

// ---- bombs: little input, much work or memory ----

TEST(DecodeHostile, JpegWithMoreThan100ScansIsRefused) {
  // A valid progressive JPEG whose scans send one coefficient each: 1 DC scan for all three
  // components, then 63 AC scans per component. Each scan is a pass over all the coefficients.
  Jpeg jpeg{.width = 16, .height = 16, .components = 3, .samples = std::vector<unsigned char>(16 * 16 * 3, 200)};
  jpeg.scans.push_back({3, {0, 1, 2, 0}, 0, 0, 0, 0});
  for (int component = 0; component < 3; ++component)
    for (int k = 1; k < 64; ++k) jpeg.scans.push_back({1, {component, 0, 0, 0}, k, k, 0, 0});
  EXPECT_CONTAINS(refusal<Error>(jpeg.encode()), "cannot decode the JPEG: more than 100 progressive scans");
  // Within the cap the same kind of script decodes: DC, then the AC band in 3 scans a component.
  jpeg.scans.resize(1);
  for (int component = 0; component < 3; ++component)
    for (auto [from, to] : {std::pair{1, 5}, std::pair{6, 20}, std::pair{21, 63}}) jpeg.scans.push_back({1, {component, 0, 0, 0}, from, to, 0, 0});
  EXPECT_NEAR(decode(jpeg.encode()).at(8, 8), 200, 2);
}

TEST(DecodeHostile, PngAncillaryChunksAreCapped) {
  const std::string image = kPngSignature + png_ihdr(1, 1, 8, 0);
  const std::string pixels = png_chunk("IDAT", zlib_compress(std::string(2, '\0'))) + png_chunk("IEND", "");
  // Text of 100 KB is kept, text over the 1 MiB cap on one chunk skipped: neither stops the decoding.
  EXPECT_NO_THROW(decode(image + png_chunk("tEXt", "Comment" + std::string(1, '\0') + std::string(100'000, 'x')) + pixels));
  EXPECT_NO_THROW(decode(image + png_chunk("tEXt", "Comment" + std::string(1, '\0') + std::string(2'000'000, 'x')) + pixels));
  // Compressed text or an ICC profile that would inflate to 16 MB, and 900 chunks of 1 MB each:
  // over the 4 MiB cap on all of them.
  const std::string text_bomb = "Comment" + std::string(2, '\0') + zlib_compress(std::string(16'000'000, 'x'));
  ASSERT_LT(text_bomb.size(), 100'000u);
  EXPECT_CONTAINS(refusal<Error>(image + png_chunk("zTXt", text_bomb) + pixels), "cannot decode the PNG (chunks): reached chunk/cache limits");
  const std::string profile_bomb = "sRGB" + std::string(2, '\0') + zlib_compress(std::string(16'000'000, 'x'));
  EXPECT_CONTAINS(refusal<Error>(image + png_chunk("iCCP", profile_bomb) + pixels), "reached chunk/cache limits");
  std::string many = image;
  const std::string megabyte = png_chunk("zTXt", "Comment" + std::string(2, '\0') + zlib_compress(std::string(1'000'000, 'x')));
  for (int i = 0; i < 900; ++i) many += megabyte;
  EXPECT_CONTAINS(refusal<Error>(many + pixels), "reached chunk/cache limits");
}

// ---- truncated and corrupt files ----

TEST(DecodeHostile, TruncatedFilesAreBroken) {
  Png png{.width = 40, .height = 40, .depth = 8, .colour_type = 2, .samples = std::vector<std::uint16_t>(40 * 40 * 3, 77)};
  const std::string full_png = png.encode();
  for (std::size_t keep : {std::size_t{9}, std::size_t{30}, std::size_t{40}, full_png.size() - 20}) {
    SCOPED_TRACE(keep);
    EXPECT_CONTAINS(refusal<Error>(full_png.substr(0, keep)), "PNG");
  }
  Jpeg jpeg = Jpeg{.width = 64, .height = 48, .components = 1, .samples = std::vector<unsigned char>(64 * 48)};
  for (std::size_t i = 0; i < jpeg.samples.size(); ++i) jpeg.samples[i] = static_cast<unsigned char>(i * 7);
  for (bool progressive : {false, true}) {
    jpeg.progressive = progressive;
    const std::string full = jpeg.encode();
    for (std::size_t keep : {std::size_t{3}, std::size_t{20}, full.size() / 2, full.size() - 2}) {
      SCOPED_TRACE(std::to_string(progressive) + " " + std::to_string(keep));
      EXPECT_CONTAINS(refusal<Error>(full.substr(0, keep)), "cannot decode the JPEG");
    }
  }
  const std::string bmp = Bmp{.width = 5, .height = 5, .bits = 24, .pixels = std::vector<std::uint32_t>(25, 0x808080)}.encode();
  EXPECT_CONTAINS(refusal<Error>(bmp.substr(0, bmp.size() - 1)), "the BMP's pixel data is cut short");
  EXPECT_CONTAINS(refusal<Error>(bmp.substr(0, 30)), "the BMP file ends inside its header");
  EXPECT_CONTAINS(refusal<Error>("P5 3 3 255\n\x01\x02"), "the PGM's samples are cut short");
  // P2 declaring 4096×3072 samples in a few bytes is refused before anything is allocated.
  EXPECT_CONTAINS(refusal<Error>("P2 4096 3072 255\n1 2 3"), "cannot fit in the 5 bytes");
  EXPECT_CONTAINS(refusal<Error>("P2 2 1 255\n1 "), "ends before its samples");
}

TEST(DecodeHostile, CorruptBmpAndPgmAreBroken) {
  Bmp palette{.width = 2, .height = 1, .bits = 8, .palette = {0xffffff}, .pixels = {0, 1}};
  EXPECT_CONTAINS(refusal<Error>(palette.encode()), "uses colour 1 of a palette of 1");
  Bmp masks{.width = 1, .height = 1, .bits = 32, .compression = 3, .masks = {0x00ff00ff, 0xff00, 0xff}, .pixels = {0}};
  EXPECT_CONTAINS(refusal<Error>(masks.encode()), "colour mask 0x00ff00ff is not one run of bits");
  std::string rle = Bmp{.width = 1, .height = 1, .bits = 8, .palette = {0}, .pixels = {0}}.encode();
  rle[30] = 1;  // BI_RLE8
  EXPECT_CONTAINS(refusal<UnsupportedImage>(rle), "a compressed BMP (RLE), which digits does not read");
  std::string two_bits = Bmp{.width = 1, .height = 1, .bits = 24, .pixels = {0}}.encode();
  two_bits[28] = 2;
  EXPECT_CONTAINS(refusal<Error>(two_bits), "2 bits a pixel");
  EXPECT_CONTAINS(refusal<Error>("P5 1 1 100\n\x65"), "a sample of the PGM is 101, above its maxval 100");
  EXPECT_CONTAINS(refusal<Error>("P2 1 1 0\n0"), "maxval is 0");
  EXPECT_CONTAINS(refusal<Error>("P5x"), "not followed by whitespace");
}

}  // namespace
