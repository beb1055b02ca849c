// The training checkpoint: a model file whose metadata and "optimizer.…" tensors say where training
// stood. As `digits improve` does: parse it, take the optimizer its metadata names, restore the state.
#include "digits/checkpoint.hpp"
#include "digits/error.hpp"
#include "fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace digits;
  try {
    const Model model = parse_model({data, size}, "fuzz");
    OptimizerSettings settings;
    if (const auto it = model.metadata.find("training.optimizer"); it != model.metadata.end()) settings.kind = parse_optimizer(it->second);
    if (const auto it = model.metadata.find("optimizer.kind"); it != model.metadata.end()) settings.kind = parse_optimizer(it->second);
    const TrainingState state = restore_training_state(model, settings);
    // The moments restored must fit the layers they will update.
    if (state.optimizer.steps_taken > 0) {
      std::size_t i = 0;  // moments come one per layer with weights (dense or conv), in order
      for (const Layer& layer : model.network.layers) {
        const ConstParameters p = parameters(layer);
        if (!p.W) continue;
        if (i >= state.optimizer.state.size()) __builtin_trap();
        const auto& m = state.optimizer.state[i++];
        if (m.W1.rows() != p.W->rows() || m.W1.cols() != p.W->cols() || m.b2.size() != p.b->size()) __builtin_trap();
      }
      if (i != state.optimizer.state.size()) __builtin_trap();
    }
  } catch (const Error&) {
  }
  return 0;
}
