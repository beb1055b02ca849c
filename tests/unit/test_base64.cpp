// Base64 (digits/base64.hpp): the RFC 4648 test vectors both ways, every byte value through a round
// trip, and every kind of bad text refused with an Error that says what is wrong.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "digits/base64.hpp"
#include "digits/error.hpp"

using namespace digits;

namespace {

// RFC 4648 §10.
const std::vector<std::pair<std::string, std::string>> kRfc4648Vectors = {
    {"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
};

// The message of the Error that decoding `text` throws; fails the test if it throws none.
std::string decode_error(const std::string& text) {
  try {
    const std::string bytes = decode_base64(text);
    ADD_FAILURE() << "decode_base64(\"" << text << "\") gave " << bytes.size() << " bytes instead of refusing it";
  } catch (const Error& e) {
    return e.what();
  }
  return {};
}

TEST(Base64, EncodesTheRfc4648TestVectors) {
  for (const auto& [bytes, text] : kRfc4648Vectors) EXPECT_EQ(encode_base64(bytes), text) << bytes;
}

TEST(Base64, DecodesTheRfc4648TestVectorsWithAndWithoutPadding) {
  for (const auto& [bytes, text] : kRfc4648Vectors) {
    EXPECT_EQ(decode_base64(text), bytes) << text;
    const std::string unpadded = text.substr(0, text.find('='));
    EXPECT_EQ(decode_base64(unpadded), bytes) << unpadded;
  }
}

TEST(Base64, UsesPlusAndSlashForTheLastTwoDigits) {
  EXPECT_EQ(encode_base64("\xfb\xff\xbf"), "+/+/");
  EXPECT_EQ(decode_base64("+/+/"), "\xfb\xff\xbf");
}

TEST(Base64, RoundTripsEveryByteAtEveryLength) {
  std::string every_byte;
  for (int b = 0; b < 256; ++b) every_byte.push_back(static_cast<char>(b));
  for (std::size_t length : {std::size_t{1}, std::size_t{2}, std::size_t{3}, std::size_t{254}, std::size_t{255}, std::size_t{256}}) {
    const std::string bytes = every_byte.substr(every_byte.size() - length);  // ends in 0xff, the byte most likely to lose bits
    const std::string text = encode_base64(bytes);
    EXPECT_EQ(text.size(), (length + 2) / 3 * 4);
    EXPECT_EQ(decode_base64(text), bytes) << length << " bytes";
  }
}

TEST(Base64, RefusesACharacterOutsideTheAlphabetAndSaysWhere) {
  EXPECT_NE(decode_error("Zm9v@mFy").find("not base64 at position 4"), std::string::npos) << decode_error("Zm9v@mFy");
  EXPECT_NE(decode_error("Zm9v Ym").find("not base64 at position 4"), std::string::npos);     // no white space
  EXPECT_NE(decode_error("Zm9v-_Fy").find("not base64"), std::string::npos);      // the URL-safe alphabet is another one
  EXPECT_NE(decode_error("Zg==Zm8=").find("not base64 at position 2"), std::string::npos);  // padding only at the end
  EXPECT_NE(decode_error(std::string("Zm9\0", 4)).find("byte 0"), std::string::npos);
}

TEST(Base64, RefusesALengthThatEndsInsideAByte) {
  EXPECT_NE(decode_error("Z").find("wrong length"), std::string::npos);
  EXPECT_NE(decode_error("Zm9vY").find("wrong length"), std::string::npos);
}

TEST(Base64, RefusesPaddingThatDoesNotCompleteAGroupOfFour) {
  for (const std::string text : {"=", "==", "Zg=", "Zg===", "Zm9vYg=", "Zm8==", "===="}) {
    const std::string message = decode_error(text);
    EXPECT_NE(message.find("padding"), std::string::npos) << text << ": " << message;
  }
}

}  // namespace
