// The CPU time of the most expensive requests the server accepts (issue 19, F4), one row per kind:
// every image format and mode at the pixel cap (or at the 4 MiB body limit, whichever comes first),
// raw JSON pixels at the body limit, v2 infer batches at the batch cap, and judgements with
// images. Each body goes through the functions the server runs for it (src/server/api.hpp:
// predict_drawing, judge_drawing, v2_infer), so parsing, base64, decoding, preprocessing and
// inference are all counted; only the HTTP framing is not. The time is the process's CPU time
// (every thread's), the median of --repeat runs. docs/security.md, "What one request costs",
// quotes these rows.
//
// Run: build/release/bench/bench_request_costs [--repeat 5] [--filter png] [--model FILE]
//      [--max-image-pixels N]   (the server's cap, `digits serve --max-image-pixels`; images are
//                                made at that size, 4:3; the library's own cap is 12582912)
//      [--max-image-bytes N]    (the server's cap on an image file; JPEGs are made as large as
//                                it allows, with the most entropy-coded data)
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "digits/base64.hpp"
#include "digits/builtin_model.hpp"
#include "digits/error.hpp"
#include "digits/image.hpp"
#include "digits/model_file.hpp"
#include "digits/random.hpp"
#include "image_files.hpp"  // tests/unit: PNG, BMP written byte by byte, JPEG through libjpeg
#include "server/api.hpp"
#include "server/http_server.hpp"

using namespace digits;
using json = nlohmann::json;

namespace {

constexpr std::size_t kBodyLimit = server::HttpLimits{}.max_body_bytes;

double cpu_seconds() {
  timespec now{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
  return static_cast<double>(now.tv_sec) + static_cast<double>(now.tv_nsec) * 1e-9;
}

// A drawing of a 7 as a page would send it, at any size: a stroke one twentieth of the shorter side
// thick, white (255) on black, the digit filling most of the frame. `noise` adds ±noise of
// pseudo-random grain to every pixel, so that a JPEG carries as much data as the body allows.
std::vector<float> seven(int width, int height, int noise, std::uint64_t seed = 1) {
  std::vector<float> pixels(static_cast<std::size_t>(width) * static_cast<std::size_t>(height));
  const float s = static_cast<float>(std::min(width, height)), thick = s / 20;
  const float x0 = width / 2.0f - 0.3f * s, x1 = width / 2.0f + 0.3f * s, y0 = height / 2.0f - 0.4f * s, y1 = height / 2.0f + 0.4f * s;
  const float xm = width / 2.0f - 0.05f * s;
  auto near = [&](float x, float y, float ax, float ay, float bx, float by) {
    const float dx = bx - ax, dy = by - ay;
    const float t = std::clamp(((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy), 0.0f, 1.0f);
    return std::hypot(x - ax - t * dx, y - ay - t * dy) < thick;
  };
  Rng rng(seed);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x) {
      float v = near(static_cast<float>(x), static_cast<float>(y), x0, y0, x1, y0) || near(static_cast<float>(x), static_cast<float>(y), x1, y0, xm, y1) ? 255.0f : 0.0f;
      if (noise > 0) v = std::clamp(v + static_cast<float>(static_cast<int>(rng.below(static_cast<std::uint64_t>(2 * noise + 1))) - noise), 0.0f, 255.0f);
      pixels[static_cast<std::size_t>(y) * static_cast<std::size_t>(width) + static_cast<std::size_t>(x)] = v;
    }
  return pixels;
}

std::string data_url(const std::string& file, const char* mime) { return std::string("data:") + mime + ";base64," + encode_base64(file); }

// A PNG of the drawing in any colour type and depth: gray values copied to every colour channel,
// alpha opaque; a palette image indexes a gray ramp.
std::string png_of(int width, int height, int depth, int colour_type, bool interlaced) {
  testing::Png png{.width = width, .height = height, .depth = depth, .colour_type = colour_type, .interlaced = interlaced};
  const std::vector<float> gray = seven(width, height, 0);
  const int channels = png.channels(), max = (1 << depth) - 1;
  png.samples.reserve(gray.size() * static_cast<std::size_t>(channels));
  if (colour_type == 3)
    for (int i = 0; i < 256; ++i) png.plte += {static_cast<char>(i), static_cast<char>(i), static_cast<char>(i)};
  for (float v : gray) {
    const auto sample = static_cast<std::uint16_t>(std::lround(v / 255.0f * static_cast<float>(max)));
    const bool alpha = colour_type == 4 || colour_type == 6;
    for (int c = 0; c < channels; ++c) png.samples.push_back(alpha && c == channels - 1 ? static_cast<std::uint16_t>(max) : sample);
  }
  return png.encode();
}

// A JPEG of the drawing under heavy grain, at the highest quality that fits the body as base64:
// the most entropy-coded data, so the most Huffman decoding, a request can carry.
std::string jpeg_of(int width, int height, int components, bool progressive, bool hundred_scans, std::size_t max_bytes) {
  testing::Jpeg jpeg{.width = width, .height = height, .components = components, .quality = 100, .progressive = progressive};
  // Each channel its own grain, so that chroma carries data too.
  std::vector<std::vector<float>> channels;
  for (int c = 0; c < components; ++c) channels.push_back(seven(width, height, 100, static_cast<std::uint64_t>(c + 1)));
  jpeg.samples.reserve(channels[0].size() * static_cast<std::size_t>(components));
  for (std::size_t i = 0; i < channels[0].size(); ++i)
    for (int c = 0; c < components; ++c) jpeg.samples.push_back(static_cast<unsigned char>(components == 4 && c < 3 ? 255 - channels[c][i] / 2 : channels[c][i]));
  if (hundred_scans) {  // the scan cap (decode_jpeg.cpp): 1 + 63 + 19 + 17 = 100 scans, as bench_micro's
    jpeg.scans.push_back({3, {0, 1, 2, 0}, 0, 0, 0, 0});
    for (int k = 1; k <= 63; ++k) jpeg.scans.push_back({1, {0, 0, 0, 0}, k, k, 0, 0});
    for (auto [component, singles] : {std::pair{1, 18}, std::pair{2, 16}}) {
      for (int k = 1; k <= singles; ++k) jpeg.scans.push_back({1, {component, 0, 0, 0}, k, k, 0, 0});
      jpeg.scans.push_back({1, {component, 0, 0, 0}, singles + 1, 63, 0, 0});
    }
  }
  for (;; jpeg.quality -= jpeg.quality > 90 ? 2 : 5) {
    std::string bytes = jpeg.encode();
    if ((bytes.size() <= max_bytes && (bytes.size() + 2) / 3 * 4 + 100 < kBodyLimit) || jpeg.quality <= 10) return bytes;
  }
}

// The largest w × h of the given aspect that fits `pixels`.
std::pair<int, int> fit(std::int64_t pixels, int aspect_w, int aspect_h) {
  const double k = std::sqrt(static_cast<double>(pixels) / (aspect_w * aspect_h));
  return {static_cast<int>(k * aspect_w), static_cast<int>(k * aspect_h)};
}

std::string pgm_of(int width, int height, bool plain, int max) {
  const std::vector<float> gray = seven(width, height, 0);
  std::string pgm = std::string(plain ? "P2" : "P5") + "\n" + std::to_string(width) + " " + std::to_string(height) + "\n" + std::to_string(max) + "\n";
  for (float v : gray) {
    const auto sample = static_cast<unsigned>(std::lround(v / 255.0f * static_cast<float>(max)));
    if (plain) {
      pgm += std::to_string(sample);
      pgm += ' ';
    } else if (max > 255) {
      pgm += {static_cast<char>(sample >> 8), static_cast<char>(sample & 0xff)};
    } else {
      pgm += static_cast<char>(sample);
    }
  }
  return pgm;
}

std::string bmp_of(int width, int height, int bits) {
  testing::Bmp bmp{.width = width, .height = height, .bits = bits};
  const std::vector<float> gray = seven(width, height, 0);
  if (bits <= 8)
    for (int i = 0; i < (1 << bits); ++i) bmp.palette.push_back(static_cast<std::uint32_t>(i * 255 / ((1 << bits) - 1)) * 0x010101u);
  for (float v : gray) {
    const auto g = static_cast<std::uint32_t>(v);
    bmp.pixels.push_back(bits == 1 ? (g > 127) : bits == 4 ? g >> 4 : bits == 8 ? g : g * 0x010101u);
  }
  return bmp.encode();
}

struct Request {
  std::string kind, size, body;
  std::function<void(const std::string&)> run;
};

}  // namespace

int main(int argc, char** argv) {
  int repeat = 5;
  std::string filter, model_path;
  server::RequestLimits limits;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--repeat" && i + 1 < argc) {
      repeat = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--filter" && i + 1 < argc) {
      filter = argv[++i];
    } else if (arg == "--model" && i + 1 < argc) {
      model_path = argv[++i];
    } else if (arg == "--max-image-bytes" && i + 1 < argc) {
      limits.max_image_bytes = static_cast<std::size_t>(std::max(1LL, std::atoll(argv[++i])));
    } else if (arg == "--max-image-pixels" && i + 1 < argc) {
      limits.max_image_pixels = std::clamp<std::int64_t>(std::atoll(argv[++i]), 1, kMaxImagePixels);
    } else {
      std::fprintf(stderr, "usage: bench_request_costs [--repeat N] [--filter TEXT] [--model FILE] [--max-image-pixels N] [--max-image-bytes N]\n");
      return 2;
    }
  }
  const server::ServedModel served = model_path.empty() ? server::ServedModel{parse_model(builtin_model_bytes(), "built-in model"), "built-in model"}
                                                        : server::ServedModel{load_model(model_path), model_path};
  std::printf("model: %s (%s); image pixel cap %lld\n", served.source.c_str(), served.model.network.architecture().c_str(), static_cast<long long>(limits.max_image_pixels));

  const auto predict = [&](const std::string& body) { server::predict_drawing(served, body, limits); };
  const auto judge = [&](const std::string& body) { server::judge_drawing(served, body, limits); };
  const auto infer = [&](const std::string& body) { server::v2_infer(served, body); };
  const auto read = [&](const std::string& body) { server::read_drawing(served, body, limits); };

  // Images at the pixel cap, 4:3, within kMaxImageSide.
  auto [W, H] = fit(limits.max_image_pixels, 4, 3);
  W = std::min(W, kMaxImageSide), H = std::min(H, kMaxImageSide);
  std::vector<Request> requests;
  auto add = [&](const std::string& kind, const std::string& file, const char* mime, int width, int height, const std::function<void(const std::string&)>& run = {}) {
    if (!filter.empty() && kind.find(filter) == std::string::npos) return;
    const std::string body = json{{"image", data_url(file, mime)}, {"label", 7}}.dump();
    requests.push_back({kind, std::to_string(width) + "×" + std::to_string(height) + ", " + std::to_string(file.size() / 1000) + " KB", body, run ? run : predict});
  };
  auto wants = [&](const std::string& kind) { return filter.empty() || kind.find(filter) != std::string::npos; };

  // PNG: every colour type and depth at the pixel cap; the drawing compresses to well within the body.
  for (auto [name, depth, colour_type, interlaced] : {std::tuple{"png gray 8", 8, 0, false}, {"png gray 16", 16, 0, false}, {"png gray+alpha 16", 16, 4, false},
                                                      {"png rgb 8", 8, 2, false}, {"png rgb 16", 16, 2, false}, {"png rgba 8", 8, 6, false},
                                                      {"png rgba 16", 16, 6, false}, {"png palette 8", 8, 3, false}, {"png rgba 16 interlaced", 16, 6, true}})
    if (wants(name)) add(name, png_of(W, H, depth, colour_type, interlaced), "image/png", W, H);
  // JPEG at the pixel cap, with grain, at the highest quality that fits the body.
  for (auto [name, components, progressive, hundred] : {std::tuple{"jpeg gray baseline", 1, false, false}, {"jpeg colour baseline", 3, false, false},
                                                        {"jpeg colour progressive", 3, true, false}, {"jpeg colour progressive 100 scans", 3, true, true},
                                                        {"jpeg cmyk baseline", 4, false, false}, {"jpeg cmyk progressive", 4, true, false}})
    if (wants(name)) add(name, jpeg_of(W, H, components, progressive, hundred, limits.max_image_bytes), "image/jpeg", W, H);
  if (wants("judge jpeg")) add("judge jpeg colour progressive", jpeg_of(W, H, 3, true, false, limits.max_image_bytes), "image/jpeg", W, H, judge);
  if (wants("judge png")) add("judge png rgba 16", png_of(W, H, 16, 6, false), "image/png", W, H, judge);
  if (wants("read png")) add("read png rgba 16", png_of(W, H, 16, 6, false), "image/png", W, H, read);
  // /api/read on many small blobs: a grid of dots, every one a component the reader must consider.
  if (wants("read dots")) {
    GrayImage dots{W, H, std::vector<float>(static_cast<std::size_t>(W) * static_cast<std::size_t>(H), 0.0f)};
    for (int y = 8; y + 6 < H; y += 16)
      for (int x = 8; x + 6 < W; x += 16)
        for (int dy = 0; dy < 6; ++dy)
          for (int dx = 0; dx < 6; ++dx) dots.pixels[static_cast<std::size_t>(y + dy) * static_cast<std::size_t>(W) + static_cast<std::size_t>(x + dx)] = 255.0f;
    add("read png dots", encode_png(dots), "image/png", W, H, read);
  }
  // Over the cap (when the cap is below the library's): refused from the header, after the body is parsed.
  if (limits.max_image_pixels < kMaxImagePixels) {
    if (wants("refused png")) add("refused png rgba 16 4096×3072", png_of(4096, 3072, 16, 6, false), "image/png", 4096, 3072);
    if (wants("refused jpeg")) add("refused jpeg 4096×3072 (4 MiB body)", jpeg_of(4096, 3072, 3, false, false, SIZE_MAX), "image/jpeg", 4096, 3072);
  }
  // BMP and PGM are uncompressed: the image byte cap (or the body: 4 MiB of base64, about 3 MB of
  // file) caps them before the pixel cap, except 1-bit BMP.
  const std::int64_t file_bytes = std::min(static_cast<std::int64_t>(kBodyLimit) * 3 / 4, static_cast<std::int64_t>(limits.max_image_bytes)) - 4096;
  for (auto [name, bits] : {std::pair{"bmp 1-bit", 1}, {"bmp 4-bit", 4}, {"bmp 8-bit", 8}, {"bmp 24-bit", 24}}) {
    if (!wants(name)) continue;
    const auto [w, h] = fit(std::min<std::int64_t>(limits.max_image_pixels, file_bytes * 8 / bits), 4, 3);
    add(name, bmp_of(w, h, bits), "image/bmp", w, h);
  }
  if (wants("pgm p5 8")) {
    const auto [w, h] = fit(std::min<std::int64_t>(limits.max_image_pixels, file_bytes), 4, 3);
    add("pgm p5 8-bit", pgm_of(w, h, false, 255), "image/x-portable-graymap", w, h);
  }
  if (wants("pgm p5 16")) {
    const auto [w, h] = fit(std::min<std::int64_t>(limits.max_image_pixels, file_bytes / 2), 4, 3);
    add("pgm p5 16-bit", pgm_of(w, h, false, 65535), "image/x-portable-graymap", w, h);
  }
  if (wants("pgm p2")) {
    for (std::int64_t pixels = std::min<std::int64_t>(limits.max_image_pixels, file_bytes / 2);; pixels = pixels * 97 / 100) {  // "0 " for most pixels, "255 " for the ink
      const auto [w, h] = fit(pixels, 4, 3);
      const std::string pgm = pgm_of(w, h, true, 255);
      if ((pgm.size() + 2) / 3 * 4 + 100 > kBodyLimit || pgm.size() > limits.max_image_bytes) continue;
      add("pgm p2", pgm, "image/x-portable-graymap", w, h);
      break;
    }
  }
  // Raw gray pixels in JSON at the body limit or the JSON pixel cap: "0," for the paper, "255," for the ink.
  if (wants("json pixels")) {
    for (std::int64_t pixels = std::min<std::int64_t>({static_cast<std::int64_t>(kBodyLimit) / 2, limits.max_image_pixels, server::kMaxJsonPixels});;
         pixels = pixels * 97 / 100) {
      const auto [w, h] = fit(pixels, 4, 3);
      const std::vector<float> gray = seven(w, h, 0);
      std::string body = "{\"width\":" + std::to_string(w) + ",\"height\":" + std::to_string(h) + ",\"pixels\":[";
      for (std::size_t i = 0; i < gray.size(); ++i) body += (i ? "," : "") + std::to_string(static_cast<int>(gray[i]));
      body += "]}";
      if (body.size() > kBodyLimit) continue;
      requests.push_back({"json pixels", std::to_string(w) + "×" + std::to_string(h), body, predict});
      break;
    }
  }
  // v2 infer at the batch cap, UINT8 [N,28,28] nested and flat, FP32 [N,784]: MNIST-like digits.
  for (auto [name, datatype, nested] : {std::tuple{"v2 uint8 nested", "UINT8", true}, {"v2 uint8 flat", "UINT8", false}, {"v2 fp32 flat", "FP32", false}}) {
    if (!wants(name)) continue;
    int batch = server::kMaxV2Batch;
    std::string body;
    for (;; batch -= 32) {  // the largest batch under the body limit
      const std::vector<float> digit = seven(28, 28, 0);
      json data = json::array();
      for (int n = 0; n < batch; ++n) {
        if (nested) {
          json image = json::array();
          for (int y = 0; y < 28; ++y) image.push_back(std::vector<int>(digit.begin() + 28 * y, digit.begin() + 28 * (y + 1)));
          data.push_back(image);
        } else {
          for (float v : digit) std::string(datatype) == "UINT8" ? data.push_back(static_cast<int>(v)) : data.push_back(v);
        }
      }
      const json shape = std::string(datatype) == "UINT8" ? json{batch, 28, 28} : json{batch, 784};
      body = json{{"inputs", {{{"name", "input"}, {"shape", shape}, {"datatype", datatype}, {"data", data}}}}}.dump();
      if (body.size() <= kBodyLimit) break;
    }
    requests.push_back({name, "batch " + std::to_string(batch), body, infer});
  }

  std::printf("%-36s %-26s %10s %12s %10s\n", "request", "image", "body KB", "CPU ms med", "min");
  for (const Request& request : requests) {
    std::vector<double> ms;
    std::string outcome = "ok";
    for (int i = 0; i < repeat; ++i) {
      const double start = cpu_seconds();
      try {
        request.run(request.body);
      } catch (const server::RequestError& e) {
        outcome = std::to_string(e.status) + " " + e.code;
      } catch (const Error& e) {
        outcome = std::string("error: ") + e.what();
      }
      ms.push_back((cpu_seconds() - start) * 1000);
    }
    std::sort(ms.begin(), ms.end());
    std::printf("%-36s %-26s %10zu %12.1f %10.1f%s%s%s\n", request.kind.c_str(), request.size.c_str(), request.body.size() / 1024, ms[ms.size() / 2], ms[0],
                request.body.size() > kBodyLimit ? "  (over the body limit)" : "", outcome == "ok" ? "" : "  → ", outcome == "ok" ? "" : outcome.c_str());
    std::fflush(stdout);
  }
  return 0;
}
