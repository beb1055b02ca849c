// Checkpoints: a model file that also carries where training stood, so that `digits train
// --resume` and `digits improve` continue exactly where training stopped.
//
// On top of the model's own tensors and metadata, a checkpoint holds the optimizer's moments as
// tensors optimizer.fc1.weight.m (first moment, or momentum's velocity) and .v (Adam's second
// moment), optimizer.fc1.bias.m, …, optimizer.conv1.… for a conv layer, each 2-D [out, in] (a conv
// layer's [out, in·kh·kw]) in the byte order of the weights, and the metadata
// checkpoint.epochs_done, optimizer.kind and optimizer.steps_taken. Every random draw of training
// depends only on the seed, the epoch and the position in it, so nothing else is needed.
#pragma once

#include <filesystem>

#include "digits/model_file.hpp"
#include "digits/trainer.hpp"

namespace digits {

void save_checkpoint(const std::filesystem::path& path, const Network& network, const TrainingState& state, Metadata metadata);

// Whether a loaded model carries training state.
bool is_checkpoint(const Model& model);

// The training state a checkpoint holds, for an optimizer with `settings` (which must be of the
// same kind as the checkpoint's). Throws Error naming what is missing or does not fit.
TrainingState restore_training_state(const Model& model, const OptimizerSettings& settings);

}  // namespace digits
