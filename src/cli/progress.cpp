#include "progress.hpp"

#include <unistd.h>

#include <string>

namespace digits::cli {

TrainingDisplay TrainingDisplay::for_terminal() { return TrainingDisplay(isatty(STDERR_FILENO) && !getenv("CI")); }

TrainingObserver TrainingDisplay::observer() {
  TrainingObserver observer;
  if (live_) observer.on_batch = [this](const BatchProgress& p) { batch(p); };
  observer.on_epoch = [this](const EpochReport& r) { epoch(r); };
  return observer;
}

void TrainingDisplay::batch(const BatchProgress& p) {
  constexpr int kWidth = 30;
  const double fraction = static_cast<double>(p.batch) / static_cast<double>(p.batches);
  const int filled = static_cast<int>(fraction * kWidth);
  const double per_epoch = epochs_done_ ? seconds_so_far_ / epochs_done_ : 0;
  const double eta = per_epoch * (p.epochs - p.epoch + 1 - fraction);
  std::fprintf(stderr, "\r\033[Kepoch %d/%d [%s%s] batch %zu/%zu  loss %.4f  %.0f samples/s  ETA %.0fs", p.epoch, p.epochs,
               std::string(static_cast<std::size_t>(filled), '#').c_str(), std::string(static_cast<std::size_t>(kWidth - filled), '.').c_str(),
               p.batch, p.batches, p.loss, p.samples_per_second, eta);
  std::fflush(stderr);
}

void TrainingDisplay::epoch(const EpochReport& r) {
  seconds_so_far_ += r.seconds;
  ++epochs_done_;
  if (live_) std::fprintf(stderr, "\r\033[K");
  std::printf("epoch %3d  loss %.4f", r.epoch, r.loss);
  if (r.train_accuracy >= 0) std::printf("  train %.2f%%", 100 * r.train_accuracy);
  if (r.validation_accuracy >= 0) std::printf("  validation %.2f%%", 100 * r.validation_accuracy);
  if (r.test_accuracy >= 0) std::printf("  test %.2f%%", 100 * r.test_accuracy);
  std::printf("  %.2fs  %.0f samples/s\n", r.seconds, r.samples_per_second);
  std::fflush(stdout);
}

}  // namespace digits::cli
