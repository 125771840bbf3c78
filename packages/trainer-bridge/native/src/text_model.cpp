#include "text_model.h"
#include "gguf_file.h"
#include "util.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

// ---- loading -----------------------------------------------------------------------------------

static bool ends_with(const std::string & s, const std::string & suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::unique_ptr<Model> load_text_model(const std::string & path, ggml_backend_t be) {
    GgufFile f(path);
    auto refuse = [&](const std::string & why) { throw TrainerError(path + ": " + why); };
    const std::string arch = f.str("general.architecture");
    if (arch != "llama")
        refuse("architecture '" + arch + "' is not trained natively (only 'llama' is: its graph is reproduced exactly); "
               "train it through the external trainer contract (packages/trainer-bridge/src/external/README.md)");
    if (f.has("general.type") && f.str("general.type") == "adapter") refuse("this is a LoRA adapter, not a base model");
    if (f.has("llama.expert_count") && f.integer("llama.expert_count") > 0) refuse("mixture-of-experts llama models are not supported");
    if (f.has("llama.attention.scale")) refuse("a custom attention scale (llama.attention.scale) is not supported");
    if (!f.has("tokenizer.ggml.tokens")) refuse("no tokenizer (tokenizer.ggml.tokens): a text model needs one");

    auto m = std::make_unique<Model>();
    m->is_text = true;
    Hparams & hp = m->hp;
    hp.n_embd = (int) f.integer("llama.embedding_length");
    hp.n_layer = (int) f.integer("llama.block_count");
    hp.n_ff = (int) f.integer("llama.feed_forward_length");
    hp.n_head = (int) f.integer("llama.attention.head_count");
    hp.n_head_kv = f.has("llama.attention.head_count_kv") ? (int) f.integer("llama.attention.head_count_kv") : hp.n_head;
    hp.n_ctx = (int) f.integer("llama.context_length");
    hp.rms_eps = f.f32("llama.attention.layer_norm_rms_epsilon");
    hp.rope_freq_base = f.has("llama.rope.freq_base") ? f.f32("llama.rope.freq_base") : 10000.0f;
    hp.n_vocab = (int) gguf_get_arr_n(f.g, f.key("tokenizer.ggml.tokens"));
    if (hp.n_embd <= 0 || hp.n_layer <= 0 || hp.n_ff <= 0 || hp.n_head <= 0 || hp.n_head_kv <= 0 || hp.n_embd % hp.n_head || hp.n_head % hp.n_head_kv)
        refuse("inconsistent llama.* hyperparameters (embedding length, heads, key/value heads)");
    const int hd = hp.head_dim();
    for (const char * k : {"llama.attention.key_length", "llama.attention.value_length"})
        if (f.has(k) && f.integer(k) != hd) refuse(std::string(k) + " differs from embedding_length / head_count: not supported");
    if (f.has("llama.rope.dimension_count") && f.integer("llama.rope.dimension_count") != hd) refuse("partial RoPE (rope.dimension_count != head size) is not supported");
    if (f.has("llama.rope.scaling.type")) {
        const std::string type = f.str("llama.rope.scaling.type");
        if (type == "linear") hp.rope_freq_scale = 1.0f / f.f32("llama.rope.scaling.factor");
        else if (type != "none") refuse("RoPE scaling '" + type + "' is not supported (none, linear and llama 3 frequency factors are)");
    }
    if (f.has("llama.vocab_size") && f.integer("llama.vocab_size") != hp.n_vocab) refuse("llama.vocab_size differs from the tokenizer's token count");
    hp.tied = ggml_get_tensor(f.data, "output.weight") == nullptr;

    create_tensors(*m, [](const char *, void *) { return GGML_TYPE_F32; }, nullptr);
    ggml_tensor * src_freqs = ggml_get_tensor(f.data, "rope_freqs.weight");
    std::set<std::string> known;
    for (ggml_tensor * t : m->tensors) known.insert(t->name);
    if (src_freqs) {
        // llama 3's per-dimension RoPE frequency factors: an input, never trained.
        if (ggml_nelements(src_freqs) != hd / 2) refuse("rope_freqs.weight has " + std::to_string(ggml_nelements(src_freqs)) + " values, expected head size / 2");
        m->rope_freqs = ggml_new_tensor_1d(m->ctx, GGML_TYPE_F32, hd / 2);
        ggml_set_name(m->rope_freqs, "rope_freqs.weight");
        known.insert("rope_freqs.weight");
    }
    for (int64_t i = 0; i < gguf_get_n_tensors(f.g); i++) {
        const std::string name = gguf_get_tensor_name(f.g, i);
        if (!known.count(name))
            refuse("tensor " + name + " has no place in the llama graph the trainer reproduces (biases, experts and extra tensors are not supported)");
    }
    std::vector<ggml_tensor *> all = m->tensors;
    if (m->rope_freqs) all.push_back(m->rope_freqs);
    for (ggml_tensor * t : all) {  // before allocating: a file without weights (a vocabulary-only GGUF) fails here
        ggml_tensor * src = ggml_get_tensor(f.data, t->name);
        if (!src) refuse(std::string("missing tensor ") + t->name);
        if (!ggml_are_same_shape(src, t)) refuse(std::string("tensor ") + t->name + " has an unexpected shape");
    }
    ggml_backend_buffer_t buf = ggml_backend_alloc_ctx_tensors(m->ctx, be);
    if (!buf) throw TrainerError("out of memory allocating the model's tensors for " + path);
    m->buf = buf;
    for (ggml_tensor * t : all) {
        ggml_tensor * src = ggml_get_tensor(f.data, t->name);
        switch (src->type) {
            case GGML_TYPE_F32: memcpy(t->data, src->data, ggml_nbytes(t)); break;
            case GGML_TYPE_F16:
            case GGML_TYPE_BF16:
            case GGML_TYPE_Q8_0: ggml_get_type_traits(src->type)->to_float(src->data, (float *) t->data, ggml_nelements(t)); break;
            default: refuse(std::string("tensor ") + t->name + " is " + ggml_type_name(src->type) + "; the trainer reads F32, F16, BF16 and Q8_0 weights");
        }
    }
    return m;
}

// ---- saving ------------------------------------------------------------------------------------

bool append_tensor_data(FILE * f, const ggml_tensor * t, const float * x, size_t align, std::vector<uint8_t> & scratch) {
    const int64_t n = ggml_nelements(t);
    const size_t nbytes = ggml_nbytes(t);
    const void * src = x;
    if (t->type != GGML_TYPE_F32) {
        scratch.resize(nbytes);
        if (t->type == GGML_TYPE_F16) ggml_fp32_to_fp16_row(x, (ggml_fp16_t *) scratch.data(), n);
        else if (t->type == GGML_TYPE_BF16) ggml_fp32_to_bf16_row(x, (ggml_bf16_t *) scratch.data(), n);
        else ggml_quantize_chunk(t->type, x, scratch.data(), 0, t->ne[1], t->ne[0], nullptr);
        src = scratch.data();
    }
    if (fwrite(src, 1, nbytes, f) != nbytes) return false;
    static const uint8_t zeros[64] = {0};
    const size_t pad = GGML_PAD(nbytes, align) - nbytes;
    return pad == 0 || fwrite(zeros, 1, pad, f) == pad;
}

void check_text_dtype(const Model & m, TextDtype dtype) {
    for (ggml_tensor * t : m.tensors) {
        const ggml_type type = text_tensor_type(t->name, dtype);
        if (t->ne[0] % ggml_blck_size(type))
            throw TrainerError(std::string("cannot write ") + t->name + " as " + text_dtype_name(dtype) + ": its rows of " + std::to_string(t->ne[0]) +
                               " values are not a multiple of the " + std::to_string(ggml_blck_size(type)) + "-value block");
    }
}

void save_text_model(const Model & m, const std::string & src_path, TextDtype dtype, const std::string & out_path) {
    check_text_dtype(m, dtype);
    const GgufFile src(src_path, /*with_data=*/false);
    gguf_context * g = gguf_init_empty();
    ggml_context * meta = nullptr;
    try {
        gguf_set_kv(g, src.g);
        gguf_set_val_u32(g, "general.file_type", text_file_type(dtype));
        std::vector<ggml_tensor *> all = m.tensors;
        if (m.rope_freqs) all.push_back(m.rope_freqs);
        ggml_init_params ip = { ggml_tensor_overhead() * (all.size() + 1), nullptr, true };
        meta = ggml_init(ip);
        std::vector<ggml_tensor *> typed;
        for (ggml_tensor * t : all) {
            ggml_tensor * c = ggml_new_tensor(meta, text_tensor_type(t->name, dtype), ggml_n_dims(t), t->ne);
            ggml_set_name(c, t->name);
            gguf_add_tensor(g, c);
            typed.push_back(c);
        }
        write_atomically(out_path, [&](const std::string & tmp) {
            if (!gguf_write_to_file(g, tmp.c_str(), /*only_meta=*/true)) throw TrainerError("cannot write " + tmp);
            FILE * f = fopen(tmp.c_str(), "ab");
            if (!f) throw TrainerError("cannot append to " + tmp + ": " + strerror(errno));
            std::vector<uint8_t> scratch;
            bool ok = true;
            for (size_t i = 0; i < all.size() && ok; i++) ok = append_tensor_data(f, typed[i], (const float *) all[i]->data, gguf_get_alignment(g), scratch);
            if (fclose(f) != 0 || !ok) throw TrainerError("writing " + tmp + " failed (disk full?)");
        });
    } catch (...) {
        gguf_free(g);
        if (meta) ggml_free(meta);
        throw;
    }
    gguf_free(g);
    ggml_free(meta);
}

// ---- examples ----------------------------------------------------------------------------------

std::vector<TextExample> read_text_examples(const std::string & path, int n_vocab, int n_ctx, bool need_answer) {
    std::ifstream in(path);
    if (!in) throw TrainerError("cannot open examples file " + path);
    std::vector<TextExample> out;
    std::string line;
    int lineno = 0;
    while (std::getline(in, line)) {
        lineno++;
        if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
        const std::string where = path + ":" + std::to_string(lineno) + ": ";
        const size_t bar = line.find('|');
        if (bar == std::string::npos && need_answer) throw TrainerError(where + "expected 'prompt ids | answer ids'");
        TextExample e;
        auto ids = [&](const std::string & part, std::vector<int32_t> & dst) {
            std::istringstream s(part);
            std::string tok;
            while (s >> tok) {
                char * end = nullptr;
                const long v = strtol(tok.c_str(), &end, 10);
                if (*end || v < 0 || v >= n_vocab) throw TrainerError(where + "'" + tok + "' is not a token id below " + std::to_string(n_vocab));
                dst.push_back((int32_t) v);
            }
        };
        ids(line.substr(0, bar), e.prompt);
        if (bar != std::string::npos) ids(line.substr(bar + 1), e.answer);
        if (e.prompt.empty()) throw TrainerError(where + "empty prompt (the first answer token needs a position to be predicted from)");
        if (need_answer && e.answer.empty()) throw TrainerError(where + "empty answer");
        const size_t len = e.prompt.size() + std::max<size_t>(e.answer.size(), 1) - 1;
        if ((int64_t) len > n_ctx) throw TrainerError(where + "sequence of " + std::to_string(len) + " tokens exceeds the model's context length " + std::to_string(n_ctx));
        out.push_back(std::move(e));
    }
    if (out.empty()) throw TrainerError("examples file " + path + " holds no examples");
    return out;
}

// ---- graph -------------------------------------------------------------------------------------

TextRunner::TextRunner(const Model & m, const Lora * lora, std::vector<ggml_tensor *> params, ggml_backend_t be)
    : m_(m), lora_(lora), params_(std::move(params)), be_(be) {
    alloc_ = ggml_gallocr_new(ggml_backend_get_default_buffer_type(be));
}

TextRunner::~TextRunner() {
    release();
    ggml_gallocr_free(alloc_);
}

void TextRunner::release() {
    if (ctx_) ggml_free(ctx_);
    ctx_ = nullptr;
    graph_ = nullptr;
}

const float * TextRunner::grad(ggml_tensor * p) const {
    return (const float *) ggml_graph_get_grad(graph_, p)->data;
}

TextPass TextRunner::run(const std::vector<TextExample> & ex, const std::vector<size_t> & ids, std::vector<float> * last_logits,
                         std::vector<float> * answer_logprobs) {
    const Hparams & hp = m_.hp;
    const int hd = hp.head_dim(), H = hp.n_head, Hkv = hp.kv_heads(), E = hp.n_embd;
    const int64_t V = hp.n_vocab;
    const bool backward = !params_.empty();

    // Batch the examples: each padded to the longest (pad id 0 after its last token, so causal attention never lets a
    // real token see a pad), laid out as B sequences of L positions. Attention then costs B * L^2, not (B * L)^2.
    const int64_t B = (int64_t) ids.size();
    int64_t L = 1;
    for (size_t i : ids) L = std::max<int64_t>(L, (int64_t) (ex[i].prompt.size() + std::max<size_t>(ex[i].answer.size(), 1) - 1));
    const int64_t N = B * L;
    std::vector<int32_t> tokens((size_t) N, 0), pos((size_t) N), rows, targets;
    std::vector<int32_t> last_row_of(ids.size());  // index into `rows` of each example's last prompt position
    for (size_t i = 0; i < ids.size(); i++) {
        const TextExample & e = ex[ids[i]];
        const int32_t start = (int32_t) (i * L);
        std::copy(e.prompt.begin(), e.prompt.end(), tokens.begin() + start);
        if (!e.answer.empty()) std::copy(e.answer.begin(), e.answer.end() - 1, tokens.begin() + start + (int32_t) e.prompt.size());
        for (int32_t p = 0; p < (int32_t) L; p++) pos[start + p] = p;
        last_row_of[i] = (int32_t) rows.size();
        const int32_t last_prompt = start + (int32_t) e.prompt.size() - 1;
        if (e.answer.empty()) { rows.push_back(last_prompt); targets.push_back(-1); }
        for (size_t j = 0; j < e.answer.size(); j++) { rows.push_back(last_prompt + (int32_t) j); targets.push_back(e.answer[j]); }
    }
    const int64_t M = (int64_t) rows.size();
    if (backward && std::count(targets.begin(), targets.end(), -1) > 0) throw TrainerError("internal: training examples need answers");

    release();
    const size_t graph_size = 4096 + 512 * (size_t) hp.n_layer;  // forward, LoRA and backward nodes of every layer
    ggml_init_params ip = { ggml_tensor_overhead() * graph_size * 3 + ggml_graph_overhead_custom(graph_size, backward), nullptr, true };
    ggml_context * ctx = ctx_ = ggml_init(ip);
    auto input = [&](ggml_type t, int64_t ne0, int64_t ne1) {
        ggml_tensor * x = ne1 ? ggml_new_tensor_2d(ctx, t, ne0, ne1) : ggml_new_tensor_1d(ctx, t, ne0);
        ggml_set_input(x);
        return x;
    };
    ggml_tensor * t_tokens = input(GGML_TYPE_I32, N, 0);
    ggml_tensor * t_pos = input(GGML_TYPE_I32, N, 0);
    ggml_tensor * t_mask = input(GGML_TYPE_F32, L, L);  // causal, shared by every sequence and head
    ggml_tensor * t_rows = input(GGML_TYPE_I32, M, 0);
    ggml_tensor * t_labels = backward ? input(GGML_TYPE_F32, V, M) : nullptr;

    const float kq_scale = 1.0f / std::sqrt((float) hd);
    auto rope = [&](ggml_tensor * t) {
        return ggml_rope_ext(ctx, t, t_pos, m_.rope_freqs, hd, /*mode NORM*/ 0, hp.n_ctx, hp.rope_freq_base, hp.rope_freq_scale, 0.0f, 1.0f, 32.0f, 1.0f);
    };
    ggml_tensor * x = ggml_get_rows(ctx, m_.tok_embd, t_tokens);  // [E, N]
    for (int il = 0; il < hp.n_layer; il++) {
        const Layer & Ly = m_.layers[il];
        ggml_tensor * cur = ggml_mul(ctx, ggml_rms_norm(ctx, x, hp.rms_eps), Ly.attn_norm);
        // Head h of sequence b at index b * heads + h of dim 2: ggml's mul_mat broadcasts key/value index i / (H / Hkv)
        // to query index i, which is head h / (H / Hkv) of the same sequence (grouped-query attention), forward and
        // backward (ggml's backward of a broadcast mul_mat needs dim 3 to be 1).
        auto seqs = [&](ggml_tensor * t, int n) {  // [hd * n, N] -> [hd, L, n * B]
            return ggml_reshape_3d(ctx, ggml_cont(ctx, ggml_permute(ctx, ggml_reshape_4d(ctx, t, hd, n, L, B), 0, 2, 1, 3)), hd, L, n * B);
        };
        ggml_tensor * q = seqs(rope(ggml_reshape_3d(ctx, mm(ctx, lora_, Ly.wq, cur), hd, H, N)), H);      // [hd, L, H * B]
        ggml_tensor * k = seqs(rope(ggml_reshape_3d(ctx, mm(ctx, lora_, Ly.wk, cur), hd, Hkv, N)), Hkv);  // [hd, L, Hkv * B]
        ggml_tensor * v = ggml_reshape_3d(ctx, ggml_cont(ctx, ggml_permute(ctx, ggml_reshape_4d(ctx, mm(ctx, lora_, Ly.wv, cur), hd, Hkv, L, B), 1, 2, 0, 3)), L, hd, Hkv * B);  // [L, hd, Hkv * B]
        ggml_tensor * kq = ggml_soft_max_ext(ctx, ggml_mul_mat(ctx, k, q), t_mask, kq_scale, 0.0f);  // [L, L, H * B]
        ggml_tensor * kqv = ggml_permute(ctx, ggml_reshape_4d(ctx, ggml_mul_mat(ctx, v, kq), hd, L, H, B), 0, 2, 1, 3);  // [hd, H, L, B]
        x = ggml_add(ctx, x, mm(ctx, lora_, Ly.wo, ggml_cont_2d(ctx, kqv, E, N)));
        cur = ggml_mul(ctx, ggml_rms_norm(ctx, x, hp.rms_eps), Ly.ffn_norm);
        ggml_tensor * h = ggml_swiglu_split(ctx, mm(ctx, lora_, Ly.gate, cur), mm(ctx, lora_, Ly.up, cur));
        x = ggml_add(ctx, x, mm(ctx, lora_, Ly.down, h));
    }
    ggml_tensor * out = ggml_mul(ctx, ggml_rms_norm(ctx, ggml_get_rows(ctx, x, t_rows), hp.rms_eps), m_.output_norm);  // [E, M]
    ggml_tensor * logits = mm(ctx, lora_, m_.output, out);  // [V, M]
    ggml_set_output(logits);
    ggml_tensor * loss = nullptr, * loss_grad = nullptr;
    graph_ = ggml_new_graph_custom(ctx, graph_size, backward);
    if (backward) {
        loss = ggml_cross_entropy_loss(ctx, logits, t_labels);
        ggml_set_output(loss);
        for (ggml_tensor * p : params_) ggml_set_param(p);
        ggml_set_loss(loss);
        ggml_build_forward_expand(graph_, loss);
        ggml_build_backward_expand(ctx, graph_, nullptr);
        for (ggml_tensor * p : params_) {
            ggml_tensor * g = ggml_graph_get_grad(graph_, p);
            if (!g) throw TrainerError(std::string("internal: no gradient for ") + p->name);
            ggml_set_output(g);
        }
        loss_grad = ggml_graph_get_grad_acc(graph_, loss);
        ggml_set_input(loss_grad);
    } else {
        ggml_build_forward_expand(graph_, logits);
    }
    if (!ggml_gallocr_alloc_graph(alloc_, graph_)) throw TrainerError("out of memory allocating the compute graph");

    ggml_backend_tensor_set(t_tokens, tokens.data(), 0, sizeof(int32_t) * N);
    ggml_backend_tensor_set(t_pos, pos.data(), 0, sizeof(int32_t) * N);
    ggml_backend_tensor_set(t_rows, rows.data(), 0, sizeof(int32_t) * M);
    {
        std::vector<float> mask((size_t) L * L, -INFINITY);
        for (int64_t iq = 0; iq < L; iq++)
            for (int64_t ik = 0; ik <= iq; ik++) mask[(size_t) iq * L + ik] = 0.0f;
        ggml_backend_tensor_set(t_mask, mask.data(), 0, sizeof(float) * mask.size());
    }
    if (backward) {
        std::vector<float> lab((size_t) V * M, 0.0f);
        for (int64_t r = 0; r < M; r++) lab[(size_t) r * V + targets[r]] = 1.0f;
        ggml_backend_tensor_set(t_labels, lab.data(), 0, sizeof(float) * lab.size());
        const float one = 1.0f;
        ggml_backend_tensor_set(loss_grad, &one, 0, sizeof one);
    }
    if (ggml_backend_graph_compute(be_, graph_) != GGML_STATUS_SUCCESS) throw TrainerError("graph computation failed");

    // Loss, accuracy and log-probabilities from the logits (double precision log-sum-exp).
    TextPass r;
    const float * lg = (const float *) logits->data;
    double nll = 0;
    std::vector<double> lp(M, 0.0);
    for (int64_t i = 0; i < M; i++) {
        if (targets[i] < 0) continue;
        const float * row = lg + i * V;
        r.n_tokens++;
        r.n_correct += (std::max_element(row, row + V) - row) == targets[i];
        if (backward) continue;  // ggml computed the loss; log-probabilities are for evaluation only
        const float mx = *std::max_element(row, row + V);
        double s = 0;
        for (int64_t t = 0; t < V; t++) s += std::exp((double) row[t] - mx);
        lp[i] = (double) row[targets[i]] - mx - std::log(s);
        nll -= lp[i];
    }
    r.loss = backward ? *(const float *) loss->data : (float) (r.n_tokens ? nll / r.n_tokens : NAN);
    if (last_logits) {
        last_logits->resize((size_t) ids.size() * V);
        for (size_t i = 0; i < ids.size(); i++) memcpy(last_logits->data() + i * V, lg + (size_t) last_row_of[i] * V, sizeof(float) * V);
    }
    if (answer_logprobs) {
        answer_logprobs->assign(ids.size(), 0.0f);
        for (size_t i = 0; i < ids.size(); i++)
            for (size_t j = 0; j < ex[ids[i]].answer.size(); j++) (*answer_logprobs)[i] += (float) lp[last_row_of[i] + j];
    }
    return r;
}

// ---- training ----------------------------------------------------------------------------------

static EvalResult evaluate_text(TextRunner & runner, const std::vector<TextExample> & ex, int batch) {
    double nll = 0;
    int64_t n = 0, correct = 0;
    std::vector<size_t> ids;
    for (size_t from = 0; from < ex.size(); from += batch) {
        ids.clear();
        for (size_t i = from; i < std::min(ex.size(), from + batch); i++) ids.push_back(i);
        const TextPass p = runner.run(ex, ids);
        nll += (double) p.loss * p.n_tokens;
        n += p.n_tokens;
        correct += p.n_correct;
    }
    return {nll / n, (double) correct / n};
}

TrainResult train_text(const Model & m, const Lora * lora, const std::vector<ggml_tensor *> & params, const std::vector<TextExample> & all,
                       const std::vector<TextExample> * val_in, const TrainOptions & o, ggml_backend_t be) {
    std::mt19937_64 rng(o.seed);
    std::vector<TextExample> tr, va;
    if (val_in) {
        tr = all;
        va = *val_in;
    } else {
        std::vector<size_t> idx(all.size());
        for (size_t i = 0; i < idx.size(); i++) idx[i] = i;
        std::shuffle(idx.begin(), idx.end(), rng);
        const size_t n_val = (size_t) std::floor(o.val_fraction * idx.size());
        for (size_t i = 0; i < idx.size(); i++) (i < n_val ? va : tr).push_back(all[idx[i]]);
    }
    TextRunner train_runner(m, lora, params, be), eval_runner(m, lora, {}, be);
    TrainProblem prob;
    prob.n_train = tr.size();
    prob.n_val = va.size();
    prob.step = [&](const std::vector<size_t> & ids) {
        const TextPass p = train_runner.run(tr, ids);
        return std::make_pair(p.loss, (double) p.n_tokens);
    };
    prob.grad = [&](ggml_tensor * p) { return train_runner.grad(p); };
    prob.validate = [&]() { return evaluate_text(eval_runner, va, std::max(o.batch, 16)); };
    return train_loop(params, prob, o, rng);
}
