#include "digits/checkpoint.hpp"

#include <map>

#include "digits/error.hpp"

namespace digits {

namespace {


NamedTensor weight_tensor(std::string name, const WeightMatrix& W) {
  // Column-major (in × out) is row-major [out, in]: the bytes go as they are.
  return {std::move(name), {W.cols(), W.rows()}, std::vector<float>(W.data(), W.data() + W.size())};
}

NamedTensor bias_tensor(std::string name, const RowVector& b) { return {std::move(name), {b.size()}, std::vector<float>(b.data(), b.data() + b.size())}; }

}  // namespace

void save_checkpoint(const std::filesystem::path& path, const Network& network, const TrainingState& state, Metadata metadata) {
  metadata["checkpoint.epochs_done"] = std::to_string(state.epochs_done);
  metadata["optimizer.kind"] = std::string(optimizer_name(state.optimizer.settings.kind));
  metadata["optimizer.steps_taken"] = std::to_string(state.optimizer.steps_taken);
  std::vector<NamedTensor> tensors;
  const std::vector<std::string> names = network.parameter_names();  // fc1, fc2 … conv1 …: one per layer with weights
  if (state.optimizer.state.size() > names.size()) throw Error("the optimizer holds moments for more layers than the network has");
  for (std::size_t i = 0; i < state.optimizer.state.size(); ++i) {
    const Optimizer::Moments& m = state.optimizer.state[i];
    const std::string name = "optimizer." + names[i];
    tensors.push_back(weight_tensor(name + ".weight.m", m.W1));
    tensors.push_back(weight_tensor(name + ".weight.v", m.W2));
    tensors.push_back(bias_tensor(name + ".bias.m", m.b1));
    tensors.push_back(bias_tensor(name + ".bias.v", m.b2));
  }
  save_model(path, network, metadata, tensors);
}

bool is_checkpoint(const Model& model) { return model.metadata.contains("checkpoint.epochs_done"); }

TrainingState restore_training_state(const Model& model, const OptimizerSettings& settings) {
  if (!is_checkpoint(model)) throw Error("the model file holds no training state (save one with digits train --checkpoint)");
  // save_checkpoint writes all three; a file that lacks one was not written by it (or was edited).
  auto required = [&](const char* key) -> const std::string& {
    const auto it = model.metadata.find(key);
    if (it == model.metadata.end()) throw Error(std::string("the checkpoint's metadata has no ") + key + " (not written by digits train --checkpoint?)");
    return it->second;
  };
  const std::string& kind = required("optimizer.kind");
  if (parse_optimizer(kind) != settings.kind)
    throw Error("the checkpoint's optimizer is " + kind + ", not " + std::string(optimizer_name(settings.kind)));
  TrainingState state{Optimizer(settings), 0};
  const std::string& epochs_done = required("checkpoint.epochs_done");
  const std::string& steps_taken = required("optimizer.steps_taken");
  try {
    state.epochs_done = std::stoi(epochs_done);
    state.optimizer.steps_taken = std::stoll(steps_taken);
  } catch (const std::exception&) {
    throw Error("the checkpoint's checkpoint.epochs_done '" + epochs_done + "' or optimizer.steps_taken '" + steps_taken + "' is not a number");
  }
  if (state.epochs_done < 0 || state.optimizer.steps_taken < 0) throw Error("the checkpoint's counters are negative");
  if (state.optimizer.steps_taken == 0) return state;  // no step yet: no moments

  std::map<std::string, const NamedTensor*> by_name;
  for (const NamedTensor& t : model.extra) by_name[t.name] = &t;
  auto find = [&](const std::string& name, long long expected) -> const std::vector<float>& {
    const auto it = by_name.find(name);
    if (it == by_name.end()) throw Error("the checkpoint lacks " + name);
    if (static_cast<long long>(it->second->values.size()) != expected)
      throw Error("the checkpoint's " + name + " has " + std::to_string(it->second->values.size()) + " values, expected " + std::to_string(expected));
    return it->second->values;
  };
  const std::vector<std::string> names = model.network.parameter_names();
  for (std::size_t l = 0; l < model.network.layers.size(); ++l) {
    const ConstParameters p = parameters(model.network.layers[l]);
    if (!p.W) continue;
    const std::string name = "optimizer." + names[state.optimizer.state.size()];
    Optimizer::Moments& m = state.optimizer.state.emplace_back();
    const long long in = p.W->rows(), out = p.W->cols();
    m.W1 = Eigen::Map<const WeightMatrix>(find(name + ".weight.m", in * out).data(), in, out);
    m.W2 = Eigen::Map<const WeightMatrix>(find(name + ".weight.v", in * out).data(), in, out);
    m.b1 = Eigen::Map<const RowVector>(find(name + ".bias.m", out).data(), 1, out);
    m.b2 = Eigen::Map<const RowVector>(find(name + ".bias.v", out).data(), 1, out);
  }
  return state;
}

}  // namespace digits
