#include "digits/image_folder.hpp"

#include <algorithm>
#include <cmath>

#include "digits/classes.hpp"
#include "digits/error.hpp"
#include "digits/image.hpp"
#include "digits/preprocess.hpp"

namespace digits {

namespace fs = std::filesystem;

ImageFolder load_image_folder(const fs::path& dir, bool not_digits) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(dir.string() + ": no such directory of labelled images");
  std::vector<fs::path> paths;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, ec)) {
    std::string extension = entry.path().extension().string();
    std::transform(extension.begin(), extension.end(), extension.begin(), [](unsigned char c) { return std::tolower(c); });
    if (entry.is_regular_file() && (extension == ".png" || extension == ".jpg" || extension == ".jpeg" || extension == ".bmp" || extension == ".pgm"))
      paths.push_back(entry.path());
  }
  if (ec) throw Error(dir.string() + ": cannot list: " + ec.message());
  std::sort(paths.begin(), paths.end());

  ImageFolder folder;
  folder.data.name = dir.string();
  for (const fs::path& path : paths) {
    const std::string name = path.filename().string();
    const bool none = name.starts_with("none_");
    if (none && !not_digits) {
      folder.errors.push_back(path.string() + ": not a digit (none_), and the model has no \"not a digit\" class");
      continue;
    }
    if (!none && (name.size() < 2 || name[0] < '0' || name[0] > '9' || name[1] != '_')) {
      folder.errors.push_back(path.string() + ": name does not start with its label, like 7_anything.png or none_anything.png");
      continue;
    }
    try {
      const Preprocessed input = preprocess(read_image(path));
      for (float v : input.pixels) folder.data.pixels.push_back(static_cast<std::uint8_t>(std::lround(std::clamp(v, 0.0f, 255.0f))));
      folder.data.labels.push_back(none ? kNotADigit : static_cast<std::uint8_t>(name[0] - '0'));
      folder.files.push_back(path.string());
    } catch (const Error& e) {
      const std::string message = e.what();
      folder.errors.push_back(message.starts_with(path.string()) ? message : path.string() + ": " + message);
    }
  }
  return folder;
}

}  // namespace digits
