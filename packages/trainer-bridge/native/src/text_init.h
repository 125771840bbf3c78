// `init-text`: writes a randomly initialised llama-architecture text model around a real tokenizer.
#pragma once
#include "model.h"

#include <string>

// A named layout (tiny, smollm2-135m, llama-3.2-1b); n_vocab stays 0 (it comes from the tokenizer file).
Hparams text_preset(const std::string & name);

// Weight type of the written file. Norms are always F32 (as llama.cpp's converters write them).
enum class TextDtype { f32, f16, bf16, q8_0 };
TextDtype parse_text_dtype(const std::string & s);
const char * text_dtype_name(TextDtype t);
uint32_t text_file_type(TextDtype t);                           // general.file_type (llama.cpp's LLAMA_FTYPE)
ggml_type text_tensor_type(const char * name, TextDtype dtype);  // norms stay F32

struct TextInitResult {
    int64_t n_params = 0, n_vocab = 0, bytes = 0;
};

// Copies every tokenizer.* key of `vocab_path` verbatim, sets llama.* hyperparameters from `hp` (n_vocab from the
// tokenizer), fills the weights from `seed` and writes `out_path` atomically, one tensor at a time (bounded memory).
TextInitResult init_text_gguf(const std::string & vocab_path, Hparams hp, TextDtype dtype, uint64_t seed,
                              const std::string & name, const std::string & out_path);
