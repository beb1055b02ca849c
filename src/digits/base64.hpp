// Standard base64 (RFC 4648 §4, alphabet A–Z a–z 0–9 + /): how the page's drawings arrive (data
// URLs), how the server sends a layer's maps, and how the HTML report embeds its pictures.
#pragma once

#include <string>
#include <string_view>

namespace digits {

// Bytes → text, with padding: every 3 bytes become 4 characters, a short last group ends in '='.
std::string encode_base64(std::string_view bytes);

// Text → bytes. Strict: only the alphabet, and at most two '=' at the end, which then make the
// length a multiple of 4; without padding a length of 4k+1 is refused (no whole byte ends there).
// Throws digits::Error saying what is wrong and where.
std::string decode_base64(std::string_view text);

}  // namespace digits
