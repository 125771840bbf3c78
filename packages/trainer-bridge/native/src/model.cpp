#include "model.h"
#include "gguf_file.h"
#include "util.h"

#include "gguf.h"
#include "llama.h"

#include <cmath>
#include <cstring>
#include <random>

static const char * ARCH = "llama";

Backend::Backend(int n_threads) {
    be = ggml_backend_init_by_type(GGML_BACKEND_DEVICE_TYPE_CPU, nullptr);
    if (!be) throw TrainerError("cannot start ggml's CPU backend (no libggml-cpu-*.so found next to libggml)");
    ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(ggml_backend_get_device(be));
    auto set_threads = (ggml_backend_set_n_threads_t) ggml_backend_reg_get_proc_address(reg, "ggml_backend_set_n_threads");
    if (!set_threads) throw TrainerError("the CPU backend does not export ggml_backend_set_n_threads");
    set_threads(be, n_threads);
}
Backend::~Backend() { ggml_backend_free(be); }

Model::~Model() {
    if (buf) ggml_backend_buffer_free(buf);
    if (ctx) ggml_free(ctx);
}
Lora::~Lora() {
    if (buf) ggml_backend_buffer_free(buf);
    if (ctx) ggml_free(ctx);
}
Batch::~Batch() {
    if (alloc) ggml_gallocr_free(alloc);
    if (ctx) ggml_free(ctx);
}

static ggml_context * new_meta_ctx(size_t n_tensors) {
    ggml_init_params p = { ggml_tensor_overhead() * (n_tensors + 8), nullptr, /*no_alloc=*/true };
    return ggml_init(p);
}

void create_tensors(Model & m, ggml_type (*type_of)(const char * name, void * ud), void * ud) {
    const Hparams & hp = m.hp;
    const int64_t n_kv = (int64_t) hp.head_dim() * hp.kv_heads();
    m.ctx = new_meta_ctx(3 + 9 * hp.n_layer);
    auto make = [&](const std::string & name, int64_t ne0, int64_t ne1) {
        ggml_type t = type_of(name.c_str(), ud);
        ggml_tensor * x = ne1 ? ggml_new_tensor_2d(m.ctx, t, ne0, ne1) : ggml_new_tensor_1d(m.ctx, t, ne0);
        ggml_set_name(x, name.c_str());
        m.tensors.push_back(x);
        return x;
    };
    m.tok_embd = make("token_embd.weight", hp.n_embd, hp.n_vocab);
    m.output_norm = make("output_norm.weight", hp.n_embd, 0);
    m.output = hp.tied ? m.tok_embd : make("output.weight", hp.n_embd, hp.n_vocab);
    for (int il = 0; il < hp.n_layer; il++) {
        const std::string p = "blk." + std::to_string(il) + ".";
        Layer L;
        L.attn_norm = make(p + "attn_norm.weight", hp.n_embd, 0);
        L.wq = make(p + "attn_q.weight", hp.n_embd, hp.n_embd);
        L.wk = make(p + "attn_k.weight", hp.n_embd, n_kv);
        L.wv = make(p + "attn_v.weight", hp.n_embd, n_kv);
        L.wo = make(p + "attn_output.weight", hp.n_embd, hp.n_embd);
        L.ffn_norm = make(p + "ffn_norm.weight", hp.n_embd, 0);
        L.gate = make(p + "ffn_gate.weight", hp.n_embd, hp.n_ff);
        L.up = make(p + "ffn_up.weight", hp.n_embd, hp.n_ff);
        L.down = make(p + "ffn_down.weight", hp.n_ff, hp.n_embd);
        m.layers.push_back(L);
    }
}

static void alloc_on(ggml_context * ctx, ggml_backend_buffer_t & buf, ggml_backend_t be) {
    buf = ggml_backend_alloc_ctx_tensors(ctx, be);
    if (!buf) throw TrainerError("out of memory allocating model tensors");
}

static void check_hparams(const Hparams & hp) {
    if (hp.n_embd <= 0 || hp.n_embd % 32) throw TrainerError("n_embd must be a positive multiple of 32 (Q8_0 blocks), got " + std::to_string(hp.n_embd));
    if (hp.n_head <= 0 || hp.n_embd % hp.n_head || hp.head_dim() % 2) throw TrainerError("n_head must divide n_embd into even head sizes");
    if (hp.n_layer <= 0 || hp.n_ff <= 0 || hp.n_ff % 32) throw TrainerError("n_layer must be positive and n_ff a positive multiple of 32");
}

static void fill_normal(ggml_tensor * t, std::mt19937_64 & rng, float std) {
    std::normal_distribution<float> d(0.0f, std);
    float * x = (float *) t->data;
    for (int64_t i = 0; i < ggml_nelements(t); i++) x[i] = d(rng);
}
static void fill_const(ggml_tensor * t, float v) {
    float * x = (float *) t->data;
    for (int64_t i = 0; i < ggml_nelements(t); i++) x[i] = v;
}

std::unique_ptr<Model> init_model(const Hparams & hp, const FreshrecMeta & meta, const Vocab & vocab, uint64_t seed, ggml_backend_t be) {
    check_hparams(hp);
    if (hp.n_ctx < meta.prompt_len()) throw TrainerError("n_ctx " + std::to_string(hp.n_ctx) + " is shorter than the prompt (" + std::to_string(meta.prompt_len()) + " tokens)");
    auto m = std::make_unique<Model>();
    m->hp = hp;
    m->meta = meta;
    m->vocab = vocab;
    create_tensors(*m, [](const char *, void *) { return GGML_TYPE_F32; }, nullptr);
    alloc_on(m->ctx, m->buf, be);
    std::mt19937_64 rng(seed);
    // Residual-branch outputs are scaled down with depth so the initial residual stream stays O(1).
    const float resid = 1.0f / std::sqrt(2.0f * hp.n_layer);
    fill_normal(m->tok_embd, rng, 1.0f);
    fill_const(m->output_norm, 1.0f);
    fill_normal(m->output, rng, 1.0f / std::sqrt((float) hp.n_embd));
    for (auto & L : m->layers) {
        fill_const(L.attn_norm, 1.0f);
        fill_const(L.ffn_norm, 1.0f);
        for (ggml_tensor * w : {L.wq, L.wk, L.wv, L.gate, L.up}) fill_normal(w, rng, 1.0f / std::sqrt((float) w->ne[0]));
        for (ggml_tensor * w : {L.wo, L.down}) fill_normal(w, rng, resid / std::sqrt((float) w->ne[0]));
    }
    return m;
}

// ---- GGUF ------------------------------------------------------------------------------------

static void set_common_meta(gguf_context * g, const FreshrecMeta & meta) {
    gguf_set_val_u32(g, "freshrec.layout_version", meta.layout_version);
    gguf_set_val_u32(g, "freshrec.k", meta.k);
    gguf_set_val_u32(g, "freshrec.rag_slots", meta.rag_slots);
    gguf_set_val_u32(g, "freshrec.n_clusters", meta.n_clusters);
    gguf_set_val_u32(g, "freshrec.first_cluster_token", meta.first_cluster_token);
    gguf_set_val_str(g, "freshrec.model_id", meta.model_id.c_str());
    gguf_set_val_i64(g, "freshrec.window_start_ms", meta.window_start_ms);
    gguf_set_val_i64(g, "freshrec.window_end_ms", meta.window_end_ms);
}

void set_llama_hparams(gguf_context * g, const Hparams & hp, const char * name, uint32_t file_type) {
    gguf_set_val_str(g, "general.architecture", ARCH);
    gguf_set_val_str(g, "general.name", name);
    gguf_set_val_u32(g, "general.file_type", file_type);
    gguf_set_val_u32(g, "llama.vocab_size", hp.n_vocab);
    gguf_set_val_u32(g, "llama.context_length", hp.n_ctx);
    gguf_set_val_u32(g, "llama.embedding_length", hp.n_embd);
    gguf_set_val_u32(g, "llama.block_count", hp.n_layer);
    gguf_set_val_u32(g, "llama.feed_forward_length", hp.n_ff);
    gguf_set_val_u32(g, "llama.attention.head_count", hp.n_head);
    gguf_set_val_u32(g, "llama.attention.head_count_kv", hp.kv_heads());
    gguf_set_val_u32(g, "llama.rope.dimension_count", hp.head_dim());
    gguf_set_val_f32(g, "llama.rope.freq_base", hp.rope_freq_base);
    gguf_set_val_f32(g, "llama.attention.layer_norm_rms_epsilon", hp.rms_eps);
}

void save_model_f32(const Model & m, const std::string & path) {
    const Hparams & hp = m.hp;
    gguf_context * g = gguf_init_empty();
    set_llama_hparams(g, hp, ("freshrec " + m.meta.model_id).c_str(), 0);  // file type 0: LLAMA_FTYPE_ALL_F32

    const Vocab & v = m.vocab;
    std::vector<const char *> texts;
    for (const auto & t : v.text) texts.push_back(t.c_str());
    gguf_set_val_str(g, "tokenizer.ggml.model", "gpt2");
    gguf_set_val_str(g, "tokenizer.ggml.pre", "default");
    gguf_set_arr_str(g, "tokenizer.ggml.tokens", texts.data(), texts.size());
    gguf_set_arr_data(g, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, v.type.data(), v.type.size());
    gguf_set_arr_str(g, "tokenizer.ggml.merges", nullptr, 0);
    gguf_set_val_u32(g, "tokenizer.ggml.bos_token_id", v.id_of("<s>"));
    gguf_set_val_u32(g, "tokenizer.ggml.eos_token_id", v.id_of("</s>"));
    gguf_set_val_u32(g, "tokenizer.ggml.unknown_token_id", v.id_of("<unk>"));
    gguf_set_val_u32(g, "tokenizer.ggml.padding_token_id", v.id_of("<pad>"));
    gguf_set_val_bool(g, "tokenizer.ggml.add_bos_token", false);
    gguf_set_val_bool(g, "tokenizer.ggml.add_eos_token", false);
    set_common_meta(g, m.meta);
    for (ggml_tensor * t : m.tensors) gguf_add_tensor(g, t);
    try { write_gguf(g, path); } catch (...) { gguf_free(g); throw; }
    gguf_free(g);
}

void quantize_q8_0(const std::string & f32_path, const std::string & out_path, int n_threads) {
    llama_model_quantize_params p = llama_model_quantize_default_params();
    p.nthread = n_threads;
    p.ftype = LLAMA_FTYPE_MOSTLY_Q8_0;
    write_atomically(out_path, [&](const std::string & tmp) {
        if (llama_model_quantize(f32_path.c_str(), tmp.c_str(), &p) != 0) throw TrainerError("llama_model_quantize failed for " + f32_path);
    });
}

std::unique_ptr<Model> load_model(const std::string & path, ggml_backend_t be, bool require_f32) {
    GgufFile f(path);
    const std::string arch = f.str("general.architecture");
    if (arch != ARCH) throw TrainerError(path + ": architecture is '" + arch + "', expected 'llama'");
    if (f.key("general.type", false) >= 0 && f.str("general.type") == "adapter") throw TrainerError(path + " is a LoRA adapter, not a base model");
    auto m = std::make_unique<Model>();
    Hparams & hp = m->hp;
    hp.n_embd = (int) f.integer("llama.embedding_length");
    hp.n_layer = (int) f.integer("llama.block_count");
    hp.n_ff = (int) f.integer("llama.feed_forward_length");
    hp.n_head = (int) f.integer("llama.attention.head_count");
    hp.n_ctx = (int) f.integer("llama.context_length");
    hp.rms_eps = f.f32("llama.attention.layer_norm_rms_epsilon");
    hp.rope_freq_base = f.f32("llama.rope.freq_base");
    if (f.integer("llama.attention.head_count_kv") != hp.n_head) throw TrainerError(path + ": grouped-query attention is not supported");
    check_hparams(hp);

    const int64_t tok_id = f.key("tokenizer.ggml.tokens"), type_id = f.key("tokenizer.ggml.token_type");
    hp.n_vocab = (int) gguf_get_arr_n(f.g, tok_id);
    if ((int64_t) gguf_get_arr_n(f.g, type_id) != hp.n_vocab) throw TrainerError(path + ": token and token type lists differ in length");
    for (int i = 0; i < hp.n_vocab; i++) {
        m->vocab.text.push_back(gguf_get_arr_str(f.g, tok_id, i));
        m->vocab.type.push_back(((const int32_t *) gguf_get_arr_data(f.g, type_id))[i]);
    }
    FreshrecMeta & meta = m->meta;
    meta.layout_version = (uint32_t) f.integer("freshrec.layout_version");
    meta.k = (uint32_t) f.integer("freshrec.k");
    meta.rag_slots = (uint32_t) f.integer("freshrec.rag_slots");
    meta.n_clusters = (uint32_t) f.integer("freshrec.n_clusters");
    meta.first_cluster_token = (uint32_t) f.integer("freshrec.first_cluster_token");
    meta.model_id = f.str("freshrec.model_id");
    meta.window_start_ms = f.integer("freshrec.window_start_ms");
    meta.window_end_ms = f.integer("freshrec.window_end_ms");

    struct Ctx { GgufFile * f; bool f32; } c{&f, require_f32};
    create_tensors(*m, [](const char * name, void * ud) {
        Ctx * c = (Ctx *) ud;
        ggml_tensor * src = ggml_get_tensor(c->f->data, name);
        if (!src) throw TrainerError(c->f->path + ": missing tensor " + name);
        if (c->f32 && src->type != GGML_TYPE_F32)
            throw TrainerError(c->f->path + ": tensor " + name + " is " + ggml_type_name(src->type) + "; LoRA training needs the F32 base");
        return src->type;
    }, &c);
    alloc_on(m->ctx, m->buf, be);
    for (ggml_tensor * t : m->tensors) {
        ggml_tensor * src = ggml_get_tensor(f.data, t->name);
        if (!ggml_are_same_shape(src, t)) throw TrainerError(path + ": tensor " + t->name + " has an unexpected shape");
        memcpy(t->data, src->data, ggml_nbytes(t));
    }
    return m;
}

// ---- LoRA ------------------------------------------------------------------------------------

std::vector<ggml_tensor *> Lora::params() const {
    std::vector<ggml_tensor *> out;
    for (const auto & [_, p] : pairs) { out.push_back(p.a); out.push_back(p.b); }
    return out;
}

static std::vector<ggml_tensor *> target_tensors(const Model & m, const std::string & target) {
    std::vector<ggml_tensor *> out;
    if (target == "output") {
        // llama.cpp applies an adapter on token_embd.weight to the embedding lookup only, so a tied output cannot take one.
        if (m.hp.tied) throw TrainerError("LoRA target 'output' needs an untied output.weight; this model ties it to the token embedding");
        return {m.output};
    }
    for (const auto & L : m.layers) {
        if (target == "q") out.push_back(L.wq);
        else if (target == "k") out.push_back(L.wk);
        else if (target == "v") out.push_back(L.wv);
        else if (target == "o") out.push_back(L.wo);
        else if (target == "gate") out.push_back(L.gate);
        else if (target == "up") out.push_back(L.up);
        else if (target == "down") out.push_back(L.down);
        else throw TrainerError("unknown LoRA target '" + target + "' (use q,k,v,o,gate,up,down,output)");
    }
    return out;
}

static void add_pair(Lora & l, ggml_tensor * base, int rank) {
    ggml_tensor * a = ggml_new_tensor_2d(l.ctx, GGML_TYPE_F32, base->ne[0], rank);
    ggml_tensor * b = ggml_new_tensor_2d(l.ctx, GGML_TYPE_F32, rank, base->ne[1]);
    ggml_format_name(a, "%s.lora_a", base->name);
    ggml_format_name(b, "%s.lora_b", base->name);
    l.pairs[base] = {base, a, b};
}

std::unique_ptr<Lora> init_lora(const Model & m, const std::vector<std::string> & targets, int rank, float alpha, uint64_t seed, ggml_backend_t be) {
    if (rank <= 0) throw TrainerError("LoRA rank must be positive");
    if (targets.empty()) throw TrainerError("no LoRA targets given");
    auto l = std::make_unique<Lora>();
    l->rank = rank;
    l->alpha = alpha;
    l->ctx = new_meta_ctx(2 * (7 * m.hp.n_layer + 1));
    for (const auto & t : targets)
        for (ggml_tensor * base : target_tensors(m, t)) add_pair(*l, base, rank);
    alloc_on(l->ctx, l->buf, be);
    std::mt19937_64 rng(seed);
    for (ggml_tensor * base : m.tensors) {  // model order, not map (address) order, keeps init deterministic
        auto it = l->pairs.find(base);
        if (it == l->pairs.end()) continue;
        fill_normal(it->second.a, rng, 1.0f / std::sqrt((float) base->ne[0]));
        fill_const(it->second.b, 0.0f);
    }
    return l;
}

std::unique_ptr<Lora> load_lora(const Model & m, const std::string & path, ggml_backend_t be) {
    GgufFile f(path);
    if (f.key("general.type", false) < 0 || f.str("general.type") != "adapter" || f.str("adapter.type") != "lora")
        throw TrainerError(path + " is not a LoRA adapter (general.type must be 'adapter', adapter.type 'lora')");
    const std::string arch = f.str("general.architecture");
    if (arch != ARCH) throw TrainerError(path + ": adapter architecture is '" + arch + "', expected 'llama'");
    if (f.key("freshrec.adapter.n_vocab", false) >= 0 && f.integer("freshrec.adapter.n_vocab") != m.hp.n_vocab)
        throw TrainerError(path + ": adapter was trained for a vocabulary of " + std::to_string(f.integer("freshrec.adapter.n_vocab")) +
                           " tokens but the base has " + std::to_string(m.hp.n_vocab));
    auto l = std::make_unique<Lora>();
    l->alpha = f.f32("adapter.lora.alpha");
    if (f.key("freshrec.adapter_id", false) >= 0) l->adapter_id = f.str("freshrec.adapter_id");
    const int64_t n = gguf_get_n_tensors(f.g);
    l->ctx = new_meta_ctx(n);
    l->rank = -1;
    for (int64_t i = 0; i < n; i++) {
        std::string name = gguf_get_tensor_name(f.g, i);
        const std::string suffix = ".lora_a";
        if (name.size() <= suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
        const std::string base_name = name.substr(0, name.size() - suffix.size());
        ggml_tensor * base = ggml_get_tensor(m.ctx, base_name.c_str());
        ggml_tensor * a = ggml_get_tensor(f.data, name.c_str());
        ggml_tensor * b = ggml_get_tensor(f.data, (base_name + ".lora_b").c_str());
        if (!base) throw TrainerError(path + ": adapter tensor " + name + " has no matching tensor in the base model");
        if (!b) throw TrainerError(path + ": " + name + " has no matching .lora_b");
        if (a->type != GGML_TYPE_F32 || b->type != GGML_TYPE_F32) throw TrainerError(path + ": adapter tensors must be F32");
        const int rank = (int) b->ne[0];
        if (a->ne[0] != base->ne[0] || a->ne[1] != rank || b->ne[1] != base->ne[1])
            throw TrainerError(path + ": " + base_name + " factors do not fit the base tensor's shape (vocabulary or size mismatch)");
        if (l->rank >= 0 && l->rank != rank) throw TrainerError(path + ": factors have different ranks");
        l->rank = rank;
        add_pair(*l, base, rank);
    }
    if (l->pairs.empty()) throw TrainerError(path + ": adapter holds no LoRA tensors");
    alloc_on(l->ctx, l->buf, be);
    for (auto & [_, p] : l->pairs) {
        memcpy(p.a->data, ggml_get_tensor(f.data, p.a->name)->data, ggml_nbytes(p.a));
        memcpy(p.b->data, ggml_get_tensor(f.data, p.b->name)->data, ggml_nbytes(p.b));
    }
    return l;
}

void save_lora(const Model & m, const Lora & l, const std::string & path) {
    gguf_context * g = gguf_init_empty();
    gguf_set_val_str(g, "general.architecture", ARCH);
    gguf_set_val_str(g, "general.type", "adapter");
    gguf_set_val_str(g, "adapter.type", "lora");
    gguf_set_val_f32(g, "adapter.lora.alpha", l.alpha);
    gguf_set_val_str(g, "freshrec.adapter_id", l.adapter_id.c_str());
    gguf_set_val_u32(g, "freshrec.adapter.n_vocab", m.hp.n_vocab);
    if (!m.is_text) {  // a text model's adapter carries no cluster-token layout
        gguf_set_val_str(g, "freshrec.base_model_id", m.meta.model_id.c_str());
        set_common_meta(g, m.meta);
    }
    for (ggml_tensor * base : m.tensors) {  // model order keeps the file byte-identical across runs
        auto it = l.pairs.find(base);
        if (it == l.pairs.end()) continue;
        gguf_add_tensor(g, it->second.a);
        gguf_add_tensor(g, it->second.b);
    }
    try { write_gguf(g, path); } catch (...) { gguf_free(g); throw; }
    gguf_free(g);
}

// ---- forward graph -----------------------------------------------------------------------------

ggml_tensor * mm(ggml_context * ctx, const Lora * lora, ggml_tensor * w, ggml_tensor * x) {
    ggml_tensor * y = ggml_mul_mat(ctx, w, x);
    if (!lora) return y;
    auto it = lora->pairs.find(w);
    if (it == lora->pairs.end()) return y;
    ggml_tensor * ab = ggml_mul_mat(ctx, it->second.b, ggml_mul_mat(ctx, it->second.a, x));
    return ggml_add(ctx, y, ggml_scale(ctx, ab, lora->scale()));
}

std::unique_ptr<Batch> build_batch(const Model & m, const Lora * lora, int n_batch, int T,
                                   const std::vector<ggml_tensor *> & params, ggml_backend_t be) {
    const Hparams & hp = m.hp;
    const int hd = hp.head_dim(), H = hp.n_head, E = hp.n_embd, B = n_batch;
    const size_t graph_size = 16384;
    auto b = std::make_unique<Batch>();
    b->n_batch = B;
    b->n_prompt = T;
    ggml_init_params ip = { ggml_tensor_overhead() * graph_size * 2 + ggml_graph_overhead_custom(graph_size, true), nullptr, true };
    ggml_context * ctx = b->ctx = ggml_init(ip);

    auto input = [&](ggml_type t, int64_t ne0, int64_t ne1) {
        ggml_tensor * x = ne1 ? ggml_new_tensor_2d(ctx, t, ne0, ne1) : ggml_new_tensor_1d(ctx, t, ne0);
        ggml_set_input(x);
        return x;
    };
    b->tokens = input(GGML_TYPE_I32, (int64_t) T * B, 0);
    b->pos = input(GGML_TYPE_I32, T, 0);
    b->pos_last = input(GGML_TYPE_I32, 1, 0);
    b->mask = input(GGML_TYPE_F32, T, T);
    b->last = input(GGML_TYPE_I32, B, 0);
    b->labels = input(GGML_TYPE_F32, hp.n_vocab, B);
    // Constant inputs are written once below; flagged as outputs so the allocator never reuses their memory.
    for (ggml_tensor * c : {b->pos, b->pos_last, b->mask, b->last}) ggml_set_output(c);

    const float kq_scale = 1.0f / std::sqrt((float) hd);
    auto rope = [&](ggml_tensor * t, ggml_tensor * pos) {
        return ggml_rope_ext(ctx, t, pos, nullptr, hd, /*mode NORM*/ 0, hp.n_ctx, hp.rope_freq_base, 1.0f, 0.0f, 1.0f, 32.0f, 1.0f);
    };
    ggml_tensor * x = ggml_get_rows(ctx, m.tok_embd, b->tokens);  // [E, T*B]
    for (int il = 0; il < hp.n_layer; il++) {
        const Layer & L = m.layers[il];
        // Only the <next> position feeds the loss: after the last layer's keys and values, compute queries,
        // attention output and FFN for that position alone (llama.cpp prunes the same way with its output ids).
        const bool last_layer = il == hp.n_layer - 1;
        const int Tq = last_layer ? 1 : T;
        ggml_tensor * cur = ggml_mul(ctx, ggml_rms_norm(ctx, x, hp.rms_eps), L.attn_norm);
        ggml_tensor * cur_q = last_layer ? ggml_get_rows(ctx, cur, b->last) : cur;
        if (last_layer) x = ggml_get_rows(ctx, x, b->last);
        auto heads = [&](ggml_tensor * w, ggml_tensor * in, int n) { return ggml_reshape_4d(ctx, mm(ctx, lora, w, in), hd, H, n, B); };
        ggml_tensor * q = ggml_permute(ctx, rope(heads(L.wq, cur_q, Tq), last_layer ? b->pos_last : b->pos), 0, 2, 1, 3);  // [hd, Tq, H, B]
        ggml_tensor * k = ggml_permute(ctx, rope(heads(L.wk, cur, T), b->pos), 0, 2, 1, 3);                                // [hd, T, H, B]
        ggml_tensor * v = ggml_cont(ctx, ggml_permute(ctx, heads(L.wv, cur, T), 1, 2, 0, 3));                              // [T, hd, H, B]
        // The last query sees every key, so it needs no causal mask.
        ggml_tensor * kq = ggml_soft_max_ext(ctx, ggml_mul_mat(ctx, k, q), last_layer ? nullptr : b->mask, kq_scale, 0.0f);  // [T, Tq, H, B]
        ggml_tensor * kqv = ggml_permute(ctx, ggml_mul_mat(ctx, v, kq), 0, 2, 1, 3);  // [hd, H, Tq, B]
        ggml_tensor * attn = ggml_cont_2d(ctx, kqv, E, (int64_t) Tq * B);
        x = ggml_add(ctx, x, mm(ctx, lora, L.wo, attn));

        cur = ggml_mul(ctx, ggml_rms_norm(ctx, x, hp.rms_eps), L.ffn_norm);
        ggml_tensor * h = ggml_swiglu_split(ctx, mm(ctx, lora, L.gate, cur), mm(ctx, lora, L.up, cur));
        x = ggml_add(ctx, x, mm(ctx, lora, L.down, h));
    }
    ggml_tensor * last = ggml_mul(ctx, ggml_rms_norm(ctx, x, hp.rms_eps), m.output_norm);  // [E, B]
    b->logits = mm(ctx, lora, m.output, last);  // [n_vocab, B]
    ggml_set_output(b->logits);
    b->loss = ggml_cross_entropy_loss(ctx, b->logits, b->labels);
    ggml_set_output(b->loss);

    b->graph = ggml_new_graph_custom(ctx, graph_size, !params.empty());
    if (!params.empty()) {
        for (ggml_tensor * p : params) ggml_set_param(p);
        ggml_set_loss(b->loss);
    }
    ggml_build_forward_expand(b->graph, b->loss);
    if (!params.empty()) {
        ggml_build_backward_expand(ctx, b->graph, nullptr);
        for (ggml_tensor * p : params) {
            ggml_tensor * g = ggml_graph_get_grad(b->graph, p);
            if (!g) throw TrainerError(std::string("internal: no gradient for ") + p->name);
            ggml_set_output(g);
        }
        b->loss_grad = ggml_graph_get_grad_acc(b->graph, b->loss);
        ggml_set_input(b->loss_grad);
    }
    b->alloc = ggml_gallocr_new(ggml_backend_get_default_buffer_type(be));
    if (!ggml_gallocr_alloc_graph(b->alloc, b->graph)) throw TrainerError("out of memory allocating the compute graph");

    std::vector<int32_t> pos(T);
    for (int i = 0; i < T; i++) pos[i] = i;
    ggml_backend_tensor_set(b->pos, pos.data(), 0, sizeof(int32_t) * T);
    ggml_backend_tensor_set(b->pos_last, &pos[T - 1], 0, sizeof(int32_t));
    std::vector<float> mask((size_t) T * T);
    for (int iq = 0; iq < T; iq++)
        for (int ik = 0; ik < T; ik++) mask[(size_t) iq * T + ik] = ik <= iq ? 0.0f : -INFINITY;
    if (b->mask->buffer) ggml_backend_tensor_set(b->mask, mask.data(), 0, sizeof(float) * mask.size());  // unused with one layer
    std::vector<int32_t> lastidx(B);
    for (int i = 0; i < B; i++) lastidx[i] = i * T + T - 1;
    ggml_backend_tensor_set(b->last, lastidx.data(), 0, sizeof(int32_t) * B);
    return b;
}

void run_batch(Batch & b, ggml_backend_t be, const Examples & ex, const std::vector<size_t> & idx, size_t from) {
    const int T = b.n_prompt, B = b.n_batch;
    int32_t * tok = (int32_t *) b.tokens->data;
    float * lab = (float *) b.labels->data;
    const int64_t V = b.labels->ne[0];
    memset(lab, 0, ggml_nbytes(b.labels));
    for (int i = 0; i < B; i++) {
        const size_t e = idx[from + i];
        memcpy(tok + (size_t) i * T, ex.tokens.data() + e * T, sizeof(int32_t) * T);
        if (!ex.targets.empty()) lab[(size_t) i * V + ex.targets[e]] = 1.0f;
    }
    if (b.loss_grad) *(float *) b.loss_grad->data = 1.0f;
    if (ggml_backend_graph_compute(be, b.graph) != GGML_STATUS_SUCCESS) throw TrainerError("graph computation failed");
}
