// A feedback database (STATE_DIR/feedback.db) that is corrupt or was written by someone else:
// the input is the file. Opened as `digits feedback export` and the server open it, then read:
// the counts, every judgement, and the judgements as a training set.
#include "digits/error.hpp"
#include "feedback/store.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace digits;
  const std::filesystem::path path = fuzzing::scratch_dir() / "feedback.db";
  for (const char* suffix : {"-wal", "-shm", "-journal"}) std::filesystem::remove(path.string() + suffix);
  fuzzing::write_bytes(path, {data, size});
  try {
    const feedback::Store store(path, /*create_if_missing=*/false);
    store.count();
    store.corrections();
    const std::vector<feedback::Judgement> judgements = store.since(0);
    for (const feedback::Judgement& j : judgements)
      if (j.input.size() != 784) __builtin_trap();
    feedback::to_dataset(judgements);
  } catch (const Error&) {
  }
  return 0;
}
