// Pictures for the HTML report, as data URLs ("data:image/png;base64,…") so the page is one file
// that needs nothing else to open.
#pragma once

#include <cstdint>
#include <span>
#include <string>

namespace digits::report {

// A gray image (0 black … 255 white, row-major, width × height bytes) as a PNG data URL.
std::string gray_png_data_url(std::span<const std::uint8_t> pixels, int width, int height);

// Values on a diverging colour map as a PNG data URL: −limit deep blue, 0 white, +limit deep red
// (ColorBrewer's RdBu, reversed so red is positive). Values beyond ±limit take the end colours.
// Where `shown` (if not empty) holds 0, the pixel is plain gray (kNotShownColour) instead.
std::string diverging_png_data_url(std::span<const float> values, int width, int height, float limit,
                                   std::span<const std::uint8_t> shown = {});
inline constexpr const char* kNotShownColour = "#cfd3da";

// The diverging map's colour for t in [−1, 1], as "#rrggbb" (for the legend beside the pictures).
std::string diverging_colour(float t);

}  // namespace digits::report
