// How training shows itself: a live progress bar on a terminal, one plain line per epoch elsewhere.
#pragma once

#include <cstdio>

#include "digits/trainer.hpp"

namespace digits::cli {

class TrainingDisplay {
 public:
  // `live` draws a redrawn bar on stderr; otherwise only one line per epoch goes to stdout.
  explicit TrainingDisplay(bool live) : live_(live) {}
  static TrainingDisplay for_terminal();

  TrainingObserver observer();

 private:
  void batch(const BatchProgress& progress);
  void epoch(const EpochReport& report);

  bool live_;
  double seconds_so_far_ = 0;
  int epochs_done_ = 0;
};

}  // namespace digits::cli
