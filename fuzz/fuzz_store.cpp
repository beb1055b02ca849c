// A feedback database (STATE_DIR/feedback.db) that is corrupt or was written by someone else:
// the input is the file. Opened as the server opens it, then read (the counts, every judgement,
// the judgements as a training set) and written (one judgement, as POST /api/feedback stores it).
#include "digits/error.hpp"
#include "feedback/store.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace digits;
  const std::filesystem::path path = fuzzing::scratch_dir() / "feedback.db";
  for (const char* suffix : {"-wal", "-shm", "-journal"}) std::filesystem::remove(path.string() + suffix);
  fuzzing::write_bytes(path, {data, size});
  try {
    feedback::Store store(path);
    store.count();
    store.corrections();
    const std::vector<feedback::Judgement> before = store.since(0);
    for (const feedback::Judgement& j : before)
      if (j.input.size() != 784) __builtin_trap();
    feedback::to_dataset(before);

    feedback::Judgement judgement;
    judgement.input.assign(784, 0);
    judgement.label = judgement.predicted = 3;
    judgement.correct = true;
    judgement.probabilities[3] = 1;
    const std::int64_t id = store.add(judgement);
    const std::vector<feedback::Judgement> after = store.since(id - 1);
    if (after.empty() || after.back().id != id || after.back().label != 3) __builtin_trap();  // what add() returned is there
  } catch (const Error&) {
  }
  return 0;
}
