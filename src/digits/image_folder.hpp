// Folders of labelled images: files named <label>_anything.png (or .jpg, .bmp, .pgm), label 0–9, or
// none_anything.png for an image that is not a digit (label kNotADigit, classes.hpp).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "digits/dataset.hpp"

namespace digits {

struct ImageFolder {
  Dataset data;                     // every readable image, preprocessed to 28×28
  std::vector<std::string> files;   // the file behind each image, in the same order
  std::vector<std::string> errors;  // "file: what was wrong" for each file that could not be used
};

// Reads every image file of dir (not recursing), sorted by name, through preprocess(). A file
// whose name does not start with a digit and '_' (or with none_) is an error for that file, as is
// an unreadable or empty image; the others are still read. With not_digits false, none_ files are
// errors too ("not a digit: this model has no such class"), for a model of ten classes. Throws
// Error if dir is not a directory.
ImageFolder load_image_folder(const std::filesystem::path& dir, bool not_digits = false);

}  // namespace digits
