// The training loop shared by `pretrain` and `lora`: AdamW, schedule, clipping, validation, early stopping.
#pragma once
#include "model.h"

#include <functional>
#include <random>
#include <utility>

struct TrainOptions {
    int epochs = 3, batch = 32, patience = 2, progress_every = 50;
    double lr = 1e-3, min_lr_ratio = 0.1, warmup = 0.05, weight_decay = 0.01, clip = 1.0, val_fraction = 0.1;
    double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;
    uint64_t seed = 1;
};

struct TrainResult {
    double train_loss = 0, val_loss = 0, val_acc = 0, examples_per_s = 0, wall_s = 0, cpu_s = 0;
    int epochs_run = 0, best_epoch = 0;
    int64_t steps = 0, n_train = 0, n_val = 0;
};

// Trains `params` (tensors of `m` or `lora`) on `train`; `val` may be empty, then a seeded val_fraction of train is held out.
// Restores the parameters of the best validation epoch before returning. Prints progress/epoch JSON lines.
TrainResult train(const Model & m, const Lora * lora, const std::vector<ggml_tensor *> & params,
                  const Examples & train, const Examples * val, const TrainOptions & o, ggml_backend_t be);

// Loss and recall@1 of the model on examples with targets.
struct EvalResult { double loss = 0, acc = 0; };
EvalResult evaluate(const Model & m, const Lora * lora, const Examples & ex, int batch, ggml_backend_t be);

// What one optimisation problem hands the shared loop (AdamW, schedule, clipping, validation, early stopping).
struct TrainProblem {
    size_t n_train = 0, n_val = 0;
    // Forward and backward on training examples `ids`; returns the batch's mean loss and its weight (number of loss
    // terms). The parameters' gradients stay readable through `grad` until the next call.
    std::function<std::pair<float, double>(const std::vector<size_t> & ids)> step;
    std::function<const float *(ggml_tensor * param)> grad;
    std::function<EvalResult()> validate;  // only called when n_val > 0
};
// `rng` shuffles the epochs (callers may have drawn from it already, e.g. for a validation split).
TrainResult train_loop(const std::vector<ggml_tensor *> & params, const TrainProblem & prob, const TrainOptions & o, std::mt19937_64 & rng);
