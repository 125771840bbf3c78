// Text models: any llama-architecture GGUF with a real tokenizer, as users bring them. Loading (dequantised to
// F32), saving, examples with variable-length prompts and answers, and the batched multi-sequence graph.
#pragma once
#include "model.h"
#include "text_init.h"
#include "train.h"

#include <functional>
#include <string>
#include <vector>

// Loads a llama-architecture text GGUF (F32, F16, BF16 or Q8_0 weights, all dequantised to F32 in memory).
// Refuses, naming the file and the reason, what the trainer's graph would not reproduce exactly.
std::unique_ptr<Model> load_text_model(const std::string & path, ggml_backend_t be);

// Throws unless every weight of `m` can be stored as `dtype` (block-quantised rows must fill whole blocks).
void check_text_dtype(const Model & m, TextDtype dtype);
// Writes `m` with every metadata key of `src_path` kept (tokenizer, chat template, names), weights converted to `dtype`.
void save_text_model(const Model & m, const std::string & src_path, TextDtype dtype, const std::string & out_path);

// Converts F32 values to `t`'s type and appends them to `f`, padded to `align`; false on a write error.
bool append_tensor_data(FILE * f, const ggml_tensor * t, const float * x, size_t align, std::vector<uint8_t> & scratch);

// One example per line: prompt token ids, `|`, answer token ids (whitespace-separated). The loss covers the answer
// tokens only, each predicted from the prompt and the answer tokens before it.
struct TextExample {
    std::vector<int32_t> prompt, answer;
};
// `need_answer` requires a non-empty answer on every line; prompts must be non-empty; ids below n_vocab; the
// sequence (prompt + answer - 1 tokens) must fit n_ctx.
std::vector<TextExample> read_text_examples(const std::string & path, int n_vocab, int n_ctx, bool need_answer);

// Several examples as one batch of sequences padded to the longest (pads after each example's tokens, one causal
// mask for all), so attention costs batch * length^2 and GQA needs no head copies.
struct TextPass {
    float loss = 0;         // mean cross-entropy over the answer tokens
    int64_t n_tokens = 0;   // answer tokens in the loss
    int64_t n_correct = 0;  // answer tokens whose argmax is the target
};
class TextRunner {
public:
    // `params` non-empty: passes build the backward graph for them (tensors of the model or of `lora`).
    TextRunner(const Model & m, const Lora * lora, std::vector<ggml_tensor *> params, ggml_backend_t be);
    ~TextRunner();
    // Forward (and backward) over examples `ids`. With `last_logits`, also returns the logits at every example's
    // last prompt position (the next-token distribution after the prompt), one row of n_vocab per example.
    TextPass run(const std::vector<TextExample> & ex, const std::vector<size_t> & ids, std::vector<float> * last_logits = nullptr,
                 std::vector<float> * answer_logprobs = nullptr);
    const float * grad(ggml_tensor * p) const;
private:
    void release();
    const Model & m_;
    const Lora * lora_;
    std::vector<ggml_tensor *> params_;
    ggml_backend_t be_;
    ggml_gallocr_t alloc_ = nullptr;
    ggml_context * ctx_ = nullptr;
    ggml_cgraph * graph_ = nullptr;
};

// Trains `params` on text examples with the shared loop (train.h); `val` may be null, then a seeded val_fraction of
// `all` is held out. Validation accuracy is the share of answer tokens predicted exactly (argmax).
TrainResult train_text(const Model & m, const Lora * lora, const std::vector<ggml_tensor *> & params, const std::vector<TextExample> & all,
                       const std::vector<TextExample> * val, const TrainOptions & o, ggml_backend_t be);
