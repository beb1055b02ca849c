// A model version in the state directory whose file is corrupt or was written by someone else:
// the input becomes STATE_DIR/models/v0002.safetensors (version 1 is a good file) and current
// names it. Then what the server and `digits model` do with it: list the versions and their
// metadata, load the current one and describe it as GET /api/model does, roll back.
#include "digits/error.hpp"
#include "feedback/model_versions.hpp"
#include "fuzz_support.hpp"
#include "server/api.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace digits;
  const std::filesystem::path state = fuzzing::scratch_dir() / "state";
  static const std::string good = [&] {
    const std::string bytes = serialize_model(fuzzing::small_network(), {{"version.number", "1"}, {"version.parent", "0"}});
    std::filesystem::create_directories(state / "models");
    return bytes;
  }();
  const feedback::ModelVersions versions(state);
  fuzzing::write_bytes(versions.file(1), {reinterpret_cast<const std::uint8_t*>(good.data()), good.size()});
  fuzzing::write_bytes(versions.file(2), {data, size});
  fuzzing::write_bytes(versions.directory() / "current", {reinterpret_cast<const std::uint8_t*>("2\n"), 2});

  for (const feedback::VersionInfo& info : versions.list()) {
    if (info.version == 1 && !info.problem.empty()) __builtin_trap();  // one bad file spoils no other
  }
  try {
    const Model model = versions.load(versions.current());
    const server::ServedModel served{model, "fuzz", 2, -1};
    server::model_info(served, server::LearningStatus{}).dump();
  } catch (const Error&) {
  }
  try {
    feedback::ModelVersions(state).rollback();
  } catch (const Error&) {
  }
  return 0;
}
