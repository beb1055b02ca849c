// The library's one error type. The library never prints and never exits: it throws this, with a
// message a person can act on ("t10k-labels: 9999 labels but 10000 images"), and the CLI or the
// server decides how to show it.
#pragma once

#include <stdexcept>
#include <string>

namespace digits {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace digits
