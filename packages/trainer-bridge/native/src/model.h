// The llama-architecture model freshrec trains: weights, LoRA factors, the ggml forward graph and GGUF I/O.
#pragma once
#include "data.h"

#include "ggml.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "gguf.h"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

struct Hparams {
    int n_vocab = 0, n_embd = 128, n_layer = 4, n_head = 4, n_ff = 320, n_ctx = 16;
    int n_head_kv = 0;   // 0: as many key/value heads as query heads (no grouped-query attention)
    bool tied = false;   // output projection shares token_embd.weight (no output.weight tensor)
    float rms_eps = 1e-5f, rope_freq_base = 10000.0f, rope_freq_scale = 1.0f;
    int head_dim() const { return n_embd / n_head; }
    int kv_heads() const { return n_head_kv ? n_head_kv : n_head; }
};

// freshrec.* GGUF keys (packages/core/src/model/layout.ts GGUF_META holds the same names).
struct FreshrecMeta {
    uint32_t layout_version = 1, k = 2, rag_slots = 3, n_clusters = 0, first_cluster_token = 0;
    std::string model_id;
    int64_t window_start_ms = 0, window_end_ms = 0;
    int prompt_len() const { return (int) (k + rag_slots + 4); }
};

struct Layer {
    ggml_tensor *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *gate, *up, *down;
};

// The CPU backend everything runs on; thread count set explicitly.
struct Backend {
    ggml_backend_t be = nullptr;
    explicit Backend(int n_threads);
    ~Backend();
};

struct Model {
    Hparams hp;
    bool is_text = false;  // a user's text model (no freshrec.* layout keys, no freshrec vocabulary)
    ggml_tensor * rope_freqs = nullptr;  // llama 3 RoPE frequency factors, when the file has them
    FreshrecMeta meta;
    Vocab vocab;
    ggml_context * ctx = nullptr;
    ggml_backend_buffer_t buf = nullptr;
    ggml_tensor *tok_embd = nullptr, *output_norm = nullptr, *output = nullptr;
    std::vector<Layer> layers;
    std::vector<ggml_tensor *> tensors;  // GGUF order
    ~Model();
};

// Creates the llama tensor set of `m.hp` (names and shapes as llama.cpp expects them, unallocated) with the types
// `type_of` chooses. With tied output, `m.output` is `m.tok_embd` and appears once in `m.tensors`.
void create_tensors(Model & m, ggml_type (*type_of)(const char * name, void * ud), void * ud);

// Seeded initialisation of a new model (norms 1, matrices scaled normal).
std::unique_ptr<Model> init_model(const Hparams & hp, const FreshrecMeta & meta, const Vocab & vocab, uint64_t seed, ggml_backend_t be);
// Loads a base GGUF written by this trainer; `require_f32` for LoRA training (the base must be differentiable through).
std::unique_ptr<Model> load_model(const std::string & path, ggml_backend_t be, bool require_f32);
// The llama.* hyperparameter keys (and general.architecture/name/file_type) every model freshrec writes carries.
void set_llama_hparams(gguf_context * g, const Hparams & hp, const char * name, uint32_t file_type);
void save_model_f32(const Model & m, const std::string & path);
void quantize_q8_0(const std::string & f32_path, const std::string & out_path, int n_threads);

// Low-rank factors for some of the model's matrices: W x + scale * B (A x), scale = user_scale * alpha / rank.
struct LoraPair { ggml_tensor * base; ggml_tensor * a; ggml_tensor * b; };
struct Lora {
    int rank = 8;
    float alpha = 16.0f;
    float user_scale = 1.0f;
    std::string adapter_id;
    ggml_context * ctx = nullptr;
    ggml_backend_buffer_t buf = nullptr;
    std::map<const ggml_tensor *, LoraPair> pairs;  // by base tensor
    std::vector<ggml_tensor *> params() const;
    float scale() const { return user_scale * alpha / (float) rank; }
    ~Lora();
};
// Targets: names among q,k,v,o,gate,up,down,output. A starts scaled-normal (seeded), B at zero.
std::unique_ptr<Lora> init_lora(const Model & m, const std::vector<std::string> & targets, int rank, float alpha, uint64_t seed, ggml_backend_t be);
// Loads an adapter and checks it fits `m` (tensor names and shapes, vocabulary size).
std::unique_ptr<Lora> load_lora(const Model & m, const std::string & path, ggml_backend_t be);
void save_lora(const Model & m, const Lora & lora, const std::string & path);

// W x, plus the LoRA term scale * B (A x) when W has factors (llama.cpp's build_lora_mm).
ggml_tensor * mm(ggml_context * ctx, const Lora * lora, ggml_tensor * w, ggml_tensor * x);

// One forward (and optionally backward) graph for a fixed batch size.
struct Batch {
    ggml_context * ctx = nullptr;
    ggml_cgraph * graph = nullptr;
    ggml_gallocr_t alloc = nullptr;
    int n_batch = 0, n_prompt = 0;
    ggml_tensor *tokens, *pos, *pos_last, *mask, *last, *labels;
    ggml_tensor *logits, *loss;
    ggml_tensor * loss_grad = nullptr;  // seed gradient (1) of the loss, backward graphs only
    ~Batch();
};
// `params` non-empty builds the backward pass for those tensors (they must appear in the forward graph).
std::unique_ptr<Batch> build_batch(const Model & m, const Lora * lora, int n_batch, int n_prompt,
                                   const std::vector<ggml_tensor *> & params, ggml_backend_t be);
// Fills the inputs for examples idx[0..n_batch) and computes; labels only when targets are given.
void run_batch(Batch & b, ggml_backend_t be, const Examples & ex, const std::vector<size_t> & idx, size_t from);
