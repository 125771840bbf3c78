// freshrec-trainer: trains freshrec's llama-architecture recommender and its LoRA adapters with ggml on the CPU.
// Subcommands: pretrain, lora, forward, llama-opt; for text models init-text, train-text, lora-text, forward-text (see packages/trainer-bridge/MODEL.md for flags and formats).
#include "baseline.h"
#include "model.h"
#include "text_init.h"
#include "text_model.h"
#include "train.h"
#include "util.h"

#include "llama.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <sstream>

#include <csignal>
#include <sys/prctl.h>
#include <unistd.h>

static const std::vector<std::string> TRAIN_FLAGS = {"train", "val", "epochs", "batch", "lr", "min-lr-ratio", "warmup", "weight-decay",
                                                     "clip", "val-fraction", "patience", "progress-every", "seed", "threads"};

static std::vector<std::string> with(std::vector<std::string> a, const std::vector<std::string> & b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// The optional parts of a forward row's JSON line: the first top_k token ids of `order` and every logit.
static void append_top_and_logits(std::string & line, const std::vector<int> & order, int top_k, const float * lg, int64_t V, bool print_logits) {
    if (top_k > 0) {
        line += ",\"top\":[";
        for (int j = 0; j < top_k; j++) line += (j ? "," : "") + std::to_string(order[j]);
        line += "]";
    }
    if (print_logits) {
        line += ",\"logits\":[";
        for (int64_t t = 0; t < V; t++) line += (t ? "," : "") + json_num(lg[t]);
        line += "]";
    }
}

static TrainOptions train_options(const Args & a) {
    TrainOptions o;
    o.epochs = (int) a.i64("epochs", o.epochs);
    o.batch = (int) a.i64("batch", o.batch);
    o.lr = a.f64("lr", o.lr);
    o.min_lr_ratio = a.f64("min-lr-ratio", o.min_lr_ratio);
    o.warmup = a.f64("warmup", o.warmup);
    o.weight_decay = a.f64("weight-decay", o.weight_decay);
    o.clip = a.f64("clip", o.clip);
    o.val_fraction = a.f64("val-fraction", o.val_fraction);
    o.patience = (int) a.i64("patience", o.patience);
    o.progress_every = (int) a.i64("progress-every", o.progress_every);
    o.seed = (uint64_t) a.i64("seed", 1);
    if (o.val_fraction < 0 || o.val_fraction >= 1) throw TrainerError("--val-fraction must be in [0, 1)");
    return o;
}

static int threads(const Args & a) {
    const int n = (int) a.i64("threads", 1);
    if (n < 1) throw TrainerError("--threads must be at least 1");
    return n;
}

static std::string metrics_json(const TrainResult & r) {
    std::ostringstream s;
    s << "{\"train_loss\":" << json_num(r.train_loss) << ",\"val_loss\":" << json_num(r.val_loss) << ",\"val_acc\":" << json_num(r.val_acc)
      << ",\"examples_per_s\":" << json_num(r.examples_per_s) << ",\"wall_s\":" << json_num(r.wall_s) << ",\"cpu_s\":" << json_num(r.cpu_s)
      << ",\"epochs_run\":" << r.epochs_run << ",\"best_epoch\":" << r.best_epoch << ",\"steps\":" << r.steps << ",\"n_train\":" << r.n_train
      << ",\"n_val\":" << r.n_val << "}";
    return s.str();
}

static void read_train_data(const Args & a, const Model & m, Examples & tr, Examples & va, bool & has_val) {
    tr = read_examples(a.str("train"), m.meta.prompt_len(), m.hp.n_vocab, true);
    has_val = a.has("val");
    if (has_val) va = read_examples(a.str("val"), m.meta.prompt_len(), m.hp.n_vocab, true);
}

static int cmd_pretrain(const Args & a) {
    Backend be(threads(a));
    const Vocab vocab = read_vocab(a.str("vocab"));
    Hparams hp;
    hp.n_vocab = (int) vocab.text.size();
    hp.n_embd = (int) a.i64("n-embd", hp.n_embd);
    hp.n_layer = (int) a.i64("n-layer", hp.n_layer);
    hp.n_head = (int) a.i64("n-head", hp.n_head);
    hp.n_ff = (int) a.i64("n-ff", hp.n_ff);
    hp.n_ctx = (int) a.i64("n-ctx", hp.n_ctx);
    FreshrecMeta meta;
    meta.layout_version = (uint32_t) a.i64("layout-version", meta.layout_version);
    meta.k = (uint32_t) a.i64("k", meta.k);
    meta.rag_slots = (uint32_t) a.i64("rag-slots", meta.rag_slots);
    meta.n_clusters = (uint32_t) vocab.n_user_defined();
    meta.first_cluster_token = (uint32_t) vocab.first_user_defined();
    meta.model_id = a.str("model-id");
    meta.window_start_ms = a.i64("window-start-ms", 0);
    meta.window_end_ms = a.i64("window-end-ms", 0);
    const TrainOptions o = train_options(a);
    auto m = init_model(hp, meta, vocab, o.seed, be.be);
    Examples tr, va;
    bool has_val;
    read_train_data(a, *m, tr, va, has_val);
    const TrainResult r = train(*m, nullptr, m->tensors, tr, has_val ? &va : nullptr, o, be.be);
    const std::string out = a.str("out");
    save_model_f32(*m, out);
    std::string outputs = "{\"f32\":" + json_escape(out);
    if (a.has("out-q8")) {
        quantize_q8_0(out, a.str("out-q8"), threads(a));
        outputs += ",\"q8_0\":" + json_escape(a.str("out-q8"));
    }
    printf("{\"event\":\"done\",\"outputs\":%s},\"metrics\":%s}\n", outputs.c_str(), metrics_json(r).c_str());
    return 0;
}

static std::vector<std::string> split_csv(const std::string & s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    std::string item;
    while (std::getline(ss, item, ',')) if (!item.empty()) out.push_back(item);
    return out;
}

static int cmd_lora(const Args & a) {
    Backend be(threads(a));
    auto m = load_model(a.str("base"), be.be, true);
    const TrainOptions o = train_options(a);
    std::unique_ptr<Lora> lora;
    if (a.has("init-adapter")) {
        lora = load_lora(*m, a.str("init-adapter"), be.be);
    } else {
        lora = init_lora(*m, split_csv(a.str("targets", "q,k,v,o,gate,up,down,output")), (int) a.i64("rank", 8),
                         (float) a.f64("alpha", 16.0), o.seed, be.be);
    }
    lora->adapter_id = a.str("adapter-id");
    Examples tr, va;
    bool has_val;
    read_train_data(a, *m, tr, va, has_val);
    const TrainResult r = train(*m, lora.get(), lora->params(), tr, has_val ? &va : nullptr, o, be.be);
    save_lora(*m, *lora, a.str("out"));
    printf("{\"event\":\"done\",\"outputs\":{\"adapter\":%s,\"rank\":%d,\"alpha\":%s,\"n_targets\":%zu},\"metrics\":%s}\n",
           json_escape(a.str("out")).c_str(), lora->rank, json_num(lora->alpha).c_str(), lora->pairs.size(), metrics_json(r).c_str());
    return 0;
}

static int cmd_forward(const Args & a) {
    Backend be(threads(a));
    auto m = load_model(a.str("base"), be.be, false);
    std::unique_ptr<Lora> lora;
    if (a.has("adapter")) {
        lora = load_lora(*m, a.str("adapter"), be.be);
        lora->user_scale = (float) a.f64("scale", 1.0);
    }
    const Examples ex = read_examples(a.str("prompts"), m->meta.prompt_len(), m->hp.n_vocab, false);
    const int top_k = (int) std::min<int64_t>(a.i64("top-k", 0), m->hp.n_vocab);
    const bool print_logits = a.i64("logits", 0) != 0;
    const int batch = (int) a.i64("batch", 64);
    std::vector<size_t> idx(ex.size());
    for (size_t i = 0; i < idx.size(); i++) idx[i] = i;
    std::map<int, std::unique_ptr<Batch>> graphs;
    int64_t correct = 0;
    double loss = 0;
    const int64_t V = m->hp.n_vocab;
    std::vector<int> order(V);
    for (size_t from = 0; from < idx.size(); from += batch) {
        const int n = (int) std::min<size_t>(batch, idx.size() - from);
        auto & g = graphs[n];
        if (!g) g = build_batch(*m, lora.get(), n, m->meta.prompt_len(), {}, be.be);
        run_batch(*g, be.be, ex, idx, from);
        loss += (double) *(float *) g->loss->data * n;
        for (int i = 0; i < n; i++) {
            const float * lg = (const float *) g->logits->data + i * V;
            const size_t e = from + i;
            for (int64_t t = 0; t < V; t++) order[t] = (int) t;
            std::stable_sort(order.begin(), order.end(), [&](int x, int y) { return lg[x] > lg[y]; });
            if (!ex.targets.empty()) correct += order[0] == ex.targets[e];
            if (!print_logits && top_k == 0) continue;
            std::string line = "{\"event\":\"row\",\"i\":" + std::to_string(e);
            append_top_and_logits(line, order, top_k, lg, V, print_logits);
            puts((line + "}").c_str());
        }
    }
    const bool has_t = !ex.targets.empty();
    printf("{\"event\":\"done\",\"n\":%zu,\"recall_at_1\":%s,\"loss\":%s,\"model_id\":%s,\"adapter_id\":%s}\n", ex.size(),
           has_t ? json_num((double) correct / ex.size()).c_str() : "null", has_t ? json_num(loss / ex.size()).c_str() : "null",
           json_escape(m->meta.model_id).c_str(), lora ? json_escape(lora->adapter_id).c_str() : "null");
    return 0;
}

static std::string hparams_json(const Hparams & hp) {
    std::ostringstream s;
    s << "{\"n_vocab\":" << hp.n_vocab << ",\"n_embd\":" << hp.n_embd << ",\"n_layer\":" << hp.n_layer << ",\"n_head\":" << hp.n_head
      << ",\"n_head_kv\":" << hp.kv_heads() << ",\"n_ff\":" << hp.n_ff << ",\"n_ctx\":" << hp.n_ctx << ",\"rope_freq_base\":" << json_num(hp.rope_freq_base)
      << ",\"rms_eps\":" << json_num(hp.rms_eps) << ",\"tied\":" << (hp.tied ? "true" : "false") << "}";
    return s.str();
}

// Layout from --preset (default tiny), each dimension overridable by its own flag.
static Hparams text_layout(const Args & a) {
    Hparams hp = text_preset(a.str("preset", "tiny"));
    hp.n_embd = (int) a.i64("n-embd", hp.n_embd);
    hp.n_layer = (int) a.i64("n-layer", hp.n_layer);
    hp.n_head = (int) a.i64("n-head", hp.n_head);
    hp.n_head_kv = (int) a.i64("n-head-kv", hp.kv_heads());
    hp.n_ff = (int) a.i64("n-ff", hp.n_ff);
    hp.n_ctx = (int) a.i64("n-ctx", hp.n_ctx);
    hp.rope_freq_base = (float) a.f64("rope-freq-base", hp.rope_freq_base);
    hp.rms_eps = (float) a.f64("rms-eps", hp.rms_eps);
    const std::string tied = a.str("output", hp.tied ? "tied" : "untied");
    if (tied != "tied" && tied != "untied") throw TrainerError("--output must be tied or untied, got '" + tied + "'");
    hp.tied = tied == "tied";
    return hp;
}

static int cmd_init_text(const Args & a) {
    Hparams hp = text_layout(a);
    const TextDtype dtype = parse_text_dtype(a.str("dtype", "f32"));
    const uint64_t seed = (uint64_t) a.i64("seed", 1);
    const std::string out = a.str("out");
    const double t0 = wall_seconds();
    const TextInitResult r = init_text_gguf(a.str("vocab"), hp, dtype, seed, a.str("name", "freshrec text model"), out);
    hp.n_vocab = (int) r.n_vocab;
    printf("{\"event\":\"done\",\"outputs\":{\"model\":%s},\"dtype\":\"%s\",\"hparams\":%s,\"n_params\":%lld,\"bytes\":%lld,\"wall_s\":%s}\n",
           json_escape(out).c_str(), text_dtype_name(dtype), hparams_json(hp).c_str(), (long long) r.n_params, (long long) r.bytes,
           json_num(wall_seconds() - t0).c_str());
    return 0;
}

// Mean tokens per training sequence (prompt + answer - 1): turns examples/s into tokens/s.
static double mean_sequence_tokens(const std::vector<TextExample> & ex) {
    double n = 0;
    for (const auto & e : ex) n += (double) (e.prompt.size() + e.answer.size() - 1);
    return n / ex.size();
}

static std::string text_metrics_json(const TrainResult & r, const std::vector<TextExample> & tr) {
    std::string j = metrics_json(r);
    j.pop_back();
    return j + ",\"tokens_per_s\":" + json_num(r.examples_per_s * mean_sequence_tokens(tr)) + "}";
}

static void read_text_train_data(const Args & a, const Model & m, std::vector<TextExample> & tr, std::vector<TextExample> & va, bool & has_val) {
    tr = read_text_examples(a.str("train"), m.hp.n_vocab, m.hp.n_ctx, true);
    has_val = a.has("val");
    if (has_val) va = read_text_examples(a.str("val"), m.hp.n_vocab, m.hp.n_ctx, true);
}

static int cmd_train_text(const Args & a) {
    Backend be(threads(a));
    const std::string base = a.str("base");
    auto m = load_text_model(base, be.be);
    const TrainOptions o = train_options(a);
    const TextDtype dtype = parse_text_dtype(a.str("dtype", "f32"));
    check_text_dtype(*m, dtype);  // before training, not after
    // A frozen embedding (with tied output: also the output projection) leaves the vocabulary geometry as it is.
    const bool freeze_embd = a.i64("freeze-embd", 0) != 0;
    std::vector<ggml_tensor *> params;
    for (ggml_tensor * t : m->tensors) if (!(freeze_embd && t == m->tok_embd)) params.push_back(t);
    std::vector<TextExample> tr, va;
    bool has_val;
    read_text_train_data(a, *m, tr, va, has_val);
    const TrainResult r = train_text(*m, nullptr, params, tr, has_val ? &va : nullptr, o, be.be);
    const std::string out = a.str("out");
    save_text_model(*m, base, dtype, out);
    printf("{\"event\":\"done\",\"outputs\":{\"model\":%s,\"dtype\":\"%s\",\"n_params_trained\":%lld},\"metrics\":%s}\n", json_escape(out).c_str(),
           text_dtype_name(dtype), (long long) [&] { int64_t n = 0; for (auto * p : params) n += ggml_nelements(p); return n; }(),
           text_metrics_json(r, tr).c_str());
    return 0;
}

static int cmd_lora_text(const Args & a) {
    Backend be(threads(a));
    auto m = load_text_model(a.str("base"), be.be);
    const TrainOptions o = train_options(a);
    std::unique_ptr<Lora> lora;
    if (a.has("init-adapter")) {
        lora = load_lora(*m, a.str("init-adapter"), be.be);
    } else {
        lora = init_lora(*m, split_csv(a.str("targets", "q,k,v,o,gate,up,down")), (int) a.i64("rank", 8), (float) a.f64("alpha", 16.0), o.seed, be.be);
    }
    lora->adapter_id = a.str("adapter-id");
    std::vector<TextExample> tr, va;
    bool has_val;
    read_text_train_data(a, *m, tr, va, has_val);
    const TrainResult r = train_text(*m, lora.get(), lora->params(), tr, has_val ? &va : nullptr, o, be.be);
    save_lora(*m, *lora, a.str("out"));
    printf("{\"event\":\"done\",\"outputs\":{\"adapter\":%s,\"rank\":%d,\"alpha\":%s,\"n_targets\":%zu},\"metrics\":%s}\n",
           json_escape(a.str("out")).c_str(), lora->rank, json_num(lora->alpha).c_str(), lora->pairs.size(), text_metrics_json(r, tr).c_str());
    return 0;
}

static int cmd_forward_text(const Args & a) {
    Backend be(threads(a));
    auto m = load_text_model(a.str("base"), be.be);
    std::unique_ptr<Lora> lora;
    if (a.has("adapter")) {
        lora = load_lora(*m, a.str("adapter"), be.be);
        lora->user_scale = (float) a.f64("scale", 1.0);
    }
    const auto ex = read_text_examples(a.str("prompts"), m->hp.n_vocab, m->hp.n_ctx, false);
    const int64_t V = m->hp.n_vocab;
    const int top_k = (int) std::min<int64_t>(a.i64("top-k", 0), V);
    const bool print_logits = a.i64("logits", 0) != 0;
    const int batch = (int) a.i64("batch", 16);
    if (batch < 1) throw TrainerError("--batch must be at least 1");
    TextRunner runner(*m, lora.get(), {}, be.be);
    std::vector<float> last, lp;
    std::vector<int> order(V);
    double nll = 0;
    int64_t n_tok = 0, correct = 0;
    for (size_t from = 0; from < ex.size(); from += batch) {
        std::vector<size_t> ids;
        for (size_t i = from; i < std::min(ex.size(), from + batch); i++) ids.push_back(i);
        const TextPass p = runner.run(ex, ids, &last, &lp);
        if (p.n_tokens) nll += (double) p.loss * p.n_tokens;
        n_tok += p.n_tokens;
        correct += p.n_correct;
        for (size_t i = 0; i < ids.size(); i++) {
            const TextExample & e = ex[ids[i]];
            const float * lg = last.data() + i * V;
            std::string line = "{\"event\":\"row\",\"i\":" + std::to_string(ids[i]) + ",\"n_answer\":" + std::to_string(e.answer.size()) +
                               ",\"answer_logprob\":" + (e.answer.empty() ? std::string("null") : json_num(lp[i]));
            if (top_k > 0) {
                for (int64_t t = 0; t < V; t++) order[t] = (int) t;
                std::partial_sort(order.begin(), order.begin() + top_k, order.end(), [&](int x, int y) { return lg[x] > lg[y] || (lg[x] == lg[y] && x < y); });
            }
            append_top_and_logits(line, order, top_k, lg, V, print_logits);
            puts((line + "}").c_str());
        }
    }
    printf("{\"event\":\"done\",\"n\":%zu,\"loss\":%s,\"token_acc\":%s,\"n_answer_tokens\":%lld,\"adapter_id\":%s}\n", ex.size(),
           n_tok ? json_num(nll / n_tok).c_str() : "null", n_tok ? json_num((double) correct / n_tok).c_str() : "null", (long long) n_tok,
           lora ? json_escape(lora->adapter_id).c_str() : "null");
    return 0;
}

static void quiet_log(ggml_log_level level, const char * text, void *) {
    if (level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

static int usage() {
    fputs("usage: freshrec-trainer <pretrain|lora|forward|llama-opt|init-text|train-text|lora-text|forward-text> --option value ... (see MODEL.md)\n", stderr);
    return 2;
}

int main(int argc, char ** argv) {
    if (argc < 2) return usage();
    // A trainer whose job process was killed must not keep burning CPU: die with the parent.
    // (Re-check getppid after arming, in case the parent died before prctl.)
    const pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) return 1;
    const std::string cmd = argv[1];
    try {
        // The CPU kernels are loaded at run time from the prebuilt node-llama-cpp folder the build linked against.
        const char * libs = getenv("FRESHREC_GGML_LIBS");
        if (!libs) libs = FRESHREC_GGML_LIBS;
        llama_log_set(quiet_log, nullptr);
        ggml_log_set(quiet_log, nullptr);
        ggml_backend_load_all_from_path(libs);
        if (cmd == "pretrain")
            return cmd_pretrain(Args(argc, argv, 2, with(TRAIN_FLAGS, {"vocab", "out", "out-q8", "n-embd", "n-layer", "n-head", "n-ff", "n-ctx",
                                                                        "k", "rag-slots", "layout-version", "model-id", "window-start-ms", "window-end-ms"})));
        if (cmd == "lora")
            return cmd_lora(Args(argc, argv, 2, with(TRAIN_FLAGS, {"base", "out", "rank", "alpha", "targets", "init-adapter", "adapter-id"})));
        if (cmd == "forward")
            return cmd_forward(Args(argc, argv, 2, {"base", "adapter", "scale", "prompts", "top-k", "logits", "batch", "threads"}));
        if (cmd == "init-text")
            return cmd_init_text(Args(argc, argv, 2, {"vocab", "out", "preset", "n-embd", "n-layer", "n-head", "n-head-kv", "n-ff", "n-ctx",
                                                      "rope-freq-base", "rms-eps", "output", "dtype", "seed", "name"}));
        if (cmd == "train-text")
            return cmd_train_text(Args(argc, argv, 2, with(TRAIN_FLAGS, {"base", "out", "dtype", "freeze-embd"})));
        if (cmd == "lora-text")
            return cmd_lora_text(Args(argc, argv, 2, with(TRAIN_FLAGS, {"base", "out", "rank", "alpha", "targets", "init-adapter", "adapter-id"})));
        if (cmd == "forward-text")
            return cmd_forward_text(Args(argc, argv, 2, {"base", "adapter", "scale", "prompts", "top-k", "logits", "batch", "threads"}));
        if (cmd == "llama-opt")
            return cmd_llama_opt(Args(argc, argv, 2, {"base", "train", "epochs", "lr", "threads"}));
        return usage();
    } catch (const std::exception & e) {
        fprintf(stderr, "{\"event\":\"error\",\"message\":%s}\n", json_escape(e.what()).c_str());
        return 1;
    }
}
