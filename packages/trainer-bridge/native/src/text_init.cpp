#include "text_init.h"
#include "text_model.h"
#include "gguf_file.h"
#include "util.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>

Hparams text_preset(const std::string & name) {
    Hparams hp;
    hp.tied = true;
    if (name == "tiny") {
        hp.n_embd = 64, hp.n_layer = 2, hp.n_head = 4, hp.n_head_kv = 2, hp.n_ff = 128, hp.n_ctx = 256;
        hp.rope_freq_base = 10000.0f, hp.rms_eps = 1e-5f;
    } else if (name == "smollm2-135m") {
        hp.n_embd = 576, hp.n_layer = 30, hp.n_head = 9, hp.n_head_kv = 3, hp.n_ff = 1536, hp.n_ctx = 8192;
        hp.rope_freq_base = 100000.0f, hp.rms_eps = 1e-5f;
    } else if (name == "llama-3.2-1b") {
        hp.n_embd = 2048, hp.n_layer = 16, hp.n_head = 32, hp.n_head_kv = 8, hp.n_ff = 8192, hp.n_ctx = 131072;
        hp.rope_freq_base = 500000.0f, hp.rms_eps = 1e-5f;
    } else {
        throw TrainerError("unknown layout preset '" + name + "' (use tiny, smollm2-135m or llama-3.2-1b)");
    }
    return hp;
}

TextDtype parse_text_dtype(const std::string & s) {
    if (s == "f32") return TextDtype::f32;
    if (s == "f16") return TextDtype::f16;
    if (s == "bf16") return TextDtype::bf16;
    if (s == "q8_0") return TextDtype::q8_0;
    throw TrainerError("unknown --dtype '" + s + "' (use f32, f16, bf16 or q8_0)");
}

const char * text_dtype_name(TextDtype t) {
    switch (t) {
        case TextDtype::f32: return "f32";
        case TextDtype::f16: return "f16";
        case TextDtype::bf16: return "bf16";
        case TextDtype::q8_0: return "q8_0";
    }
    return "?";
}

static ggml_type ggml_type_of(TextDtype t) {
    switch (t) {
        case TextDtype::f32: return GGML_TYPE_F32;
        case TextDtype::f16: return GGML_TYPE_F16;
        case TextDtype::bf16: return GGML_TYPE_BF16;
        case TextDtype::q8_0: return GGML_TYPE_Q8_0;
    }
    return GGML_TYPE_F32;
}

uint32_t text_file_type(TextDtype t) {
    switch (t) {
        case TextDtype::f32: return 0;
        case TextDtype::f16: return 1;
        case TextDtype::q8_0: return 7;
        case TextDtype::bf16: return 32;
    }
    return 0;
}

ggml_type text_tensor_type(const char * name, TextDtype dtype) {
    const std::string s = name;
    const bool f32_only = s.size() > 11 && (s.compare(s.size() - 11, 11, "norm.weight") == 0 || s == "rope_freqs.weight");
    return f32_only ? GGML_TYPE_F32 : ggml_type_of(dtype);
}

static void check_text_hparams(const Hparams & hp, TextDtype dtype) {
    auto fail = [](const std::string & what) { throw TrainerError("invalid text model layout: " + what); };
    if (hp.n_embd <= 0 || hp.n_layer <= 0 || hp.n_ff <= 0 || hp.n_ctx <= 0) fail("n_embd, n_layer, n_ff and n_ctx must be positive");
    if (hp.n_head <= 0 || hp.n_embd % hp.n_head || hp.head_dim() % 2) fail("n_head must divide n_embd into even head sizes");
    if (hp.kv_heads() <= 0 || hp.n_head % hp.kv_heads()) fail("n_head_kv must divide n_head (grouped-query attention)");
    if (dtype == TextDtype::q8_0 && (hp.n_embd % 32 || hp.n_ff % 32)) fail("q8_0 needs n_embd and n_ff to be multiples of 32");
    if (!(hp.rope_freq_base > 0) || !(hp.rms_eps > 0)) fail("rope base and rms epsilon must be positive");
}

// The tokenizer's keys, copied as they are; everything else of the vocabulary file (its architecture and
// hyperparameters of the model it came from) is dropped. Returns the number of tokens.
static int64_t copy_tokenizer(gguf_context * out, const GgufFile & vocab) {
    gguf_context * tmp = gguf_init_empty();
    gguf_set_kv(tmp, vocab.g);
    for (int64_t i = gguf_get_n_kv(tmp) - 1; i >= 0; i--) {
        const std::string k = gguf_get_key(tmp, i);
        if (k.rfind("tokenizer.", 0) != 0) gguf_remove_key(tmp, k.c_str());
    }
    gguf_set_kv(out, tmp);
    gguf_free(tmp);
    const int64_t tok = vocab.key("tokenizer.ggml.tokens");
    if (gguf_get_kv_type(vocab.g, tok) != GGUF_TYPE_ARRAY || gguf_get_arr_type(vocab.g, tok) != GGUF_TYPE_STRING)
        throw TrainerError(vocab.path + ": tokenizer.ggml.tokens is not a list of strings");
    const std::string model = vocab.str("tokenizer.ggml.model");
    if (model == "none" || model == "no_vocab") throw TrainerError(vocab.path + ": tokenizer.ggml.model is '" + model + "': a text model needs a real tokenizer");
    return (int64_t) gguf_get_arr_n(vocab.g, tok);
}

// Weight scales: unit-variance activations at init. Inputs of every matrix are RMS-normalised (or O(1)), so
// std 1/sqrt(fan_in) keeps outputs O(1); residual-branch outputs shrink with depth; the embedding row norm is 1,
// which with tied output keeps the initial logits O(1).
static float init_std(const Model & m, const ggml_tensor * t) {
    const float fan_in = (float) t->ne[0];
    for (const Layer & L : m.layers)
        if (t == L.wo || t == L.down) return 1.0f / std::sqrt(fan_in * 2.0f * m.hp.n_layer);
    return 1.0f / std::sqrt(fan_in);
}

TextInitResult init_text_gguf(const std::string & vocab_path, Hparams hp, TextDtype dtype, uint64_t seed,
                              const std::string & name, const std::string & out_path) {
    const GgufFile vocab(vocab_path, /*with_data=*/false);
    gguf_context * g = gguf_init_empty();
    TextInitResult r;
    try {
        hp.n_vocab = (int) copy_tokenizer(g, vocab);
        check_text_hparams(hp, dtype);
        set_llama_hparams(g, hp, name.c_str(), text_file_type(dtype));
        gguf_set_val_u64(g, "freshrec.text.init_seed", seed);

        Model m;  // tensor metadata only: data is generated and written one tensor at a time
        m.hp = hp;
        create_tensors(m, [](const char * n, void * d) { return text_tensor_type(n, *(TextDtype *) d); }, &dtype);
        for (ggml_tensor * t : m.tensors) gguf_add_tensor(g, t);

        write_atomically(out_path, [&](const std::string & tmp) {
            if (!gguf_write_to_file(g, tmp.c_str(), /*only_meta=*/true)) throw TrainerError("cannot write " + tmp);
            FILE * f = fopen(tmp.c_str(), "ab");
            if (!f) throw TrainerError("cannot append to " + tmp + ": " + strerror(errno));
            std::vector<float> x;
            std::vector<uint8_t> scratch;
            bool ok = true;
            for (size_t i = 0; i < m.tensors.size() && ok; i++) {
                ggml_tensor * t = m.tensors[i];
                x.resize(ggml_nelements(t));
                if (ggml_n_dims(t) == 1) {
                    std::fill(x.begin(), x.end(), 1.0f);
                } else {
                    // One generator per tensor, keyed by its position: a tensor's values do not depend on the dtype.
                    std::mt19937_64 rng(seed * 0x9E3779B97F4A7C15ull + i);
                    std::normal_distribution<float> d(0.0f, init_std(m, t));
                    for (float & v : x) v = d(rng);
                }
                r.n_params += (int64_t) x.size();
                ok = append_tensor_data(f, t, x.data(), gguf_get_alignment(g), scratch);
            }
            r.bytes = ftell(f);
            if (fclose(f) != 0 || !ok) throw TrainerError("writing " + tmp + " failed (disk full?)");
        });
    } catch (...) {
        gguf_free(g);
        throw;
    }
    gguf_free(g);
    r.n_vocab = hp.n_vocab;
    return r;
}
