// The training loop shared by `pretrain` and `lora`: AdamW, schedule, clipping, validation, early stopping.
#pragma once
#include "model.h"

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
