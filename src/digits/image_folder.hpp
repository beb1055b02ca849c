// Folders of labelled images: files named <label>_anything.png (or .jpg, .bmp, .pgm), label 0–9.
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
// whose name does not start with a digit and '_' is an error for that file, as is an unreadable or
// empty image; the others are still read. Throws Error if dir is not a directory.
ImageFolder load_image_folder(const std::filesystem::path& dir);

}  // namespace digits
