// The drawing a judgement keeps: never the bytes a client sent (a 2.9 MB PNG with a private chunk
// would be stored as sent), but the decoded pixels, area-averaged down until they fit, and written
// by us as an 8-bit gray PNG. The 28×28 input the network saw is kept exactly, beside it
// (Judgement::input); the drawing is for people and for exports, so a smaller one loses nothing
// that learning uses. docs/feedback.md, "What is stored".
#pragma once

#include <cstddef>
#include <string>

#include "digits/image.hpp"

namespace digits::feedback {

// The bounds: the page's canvas is 280×280, so no side above that, and no file above 32 KiB (a
// 280×280 gray PNG of noise is about 78 KB, a drawn digit 2–5 KB).
inline constexpr int kStoredDrawingSide = 280;
inline constexpr std::size_t kMaxStoredDrawingBytes = 32 * 1024;

// The image scaled, area-averaged, to width × height (each at least 1): every output pixel is the
// mean of the source area it covers, fractional pixels weighted by their covered fraction, so ink
// is neither lost nor invented (the same averaging as preprocess's fit into 20×20).
GrayImage area_resize(const GrayImage& image, int width, int height);

// The drawing as stored: longest side at most kStoredDrawingSide (aspect kept; a smaller drawing
// keeps its size), then halved until its PNG is at most kMaxStoredDrawingBytes. A 280×280 drawing
// that fits comes back pixel for pixel (values rounded to 0–255).
std::string stored_drawing(const GrayImage& drawing);

}  // namespace digits::feedback
