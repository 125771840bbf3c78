#include "baseline.h"
#include "data.h"

#include "ggml-opt.h"
#include "llama.h"

#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

static float g_lr = 1e-3f;
static ggml_opt_optimizer_params fixed_lr(void *) {
    ggml_opt_optimizer_params p = ggml_opt_get_default_optimizer_params(nullptr);
    p.adamw.alpha = g_lr;
    return p;
}

int cmd_llama_opt(const Args & a) {
    const int n_threads = (int) a.i64("threads", 1);
    g_lr = (float) a.f64("lr", 1e-3);
    const int epochs = (int) a.i64("epochs", 1);
    llama_backend_init();
    llama_model_params mp = llama_model_default_params();
    mp.load_mode = LLAMA_LOAD_MODE_NONE;  // llama_opt needs writable weights
    mp.use_extra_bufts = false;           // repacked weights cannot train
    std::unique_ptr<llama_model, decltype(&llama_model_free)> model(llama_model_load_from_file(a.str("base").c_str(), mp), llama_model_free);
    if (!model) throw TrainerError("llama.cpp could not load " + a.str("base"));

    // llama_opt trains on windows of exactly n_ctx tokens (a multiple of 256); examples are packed back to back.
    const uint32_t n_ctx = 256;
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = cp.n_batch = cp.n_ubatch = n_ctx;
    cp.n_threads = cp.n_threads_batch = n_threads;
    cp.type_k = cp.type_v = GGML_TYPE_F32;  // OUT_PROD has no F16 support
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    std::unique_ptr<llama_context, decltype(&llama_free)> ctx(llama_init_from_model(model.get(), cp), llama_free);
    if (!ctx) throw TrainerError("llama.cpp could not create a training context");

    const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model.get()));
    char buf[32];
    auto meta_int = [&](const char * key) {
        if (llama_model_meta_val_str(model.get(), key, buf, sizeof buf) < 0) throw TrainerError(a.str("base") + ": missing GGUF key " + key);
        return atoi(buf);
    };
    const int prompt_len = meta_int("freshrec.k") + meta_int("freshrec.rag_slots") + 4;
    const Examples ex = read_examples(a.str("train"), prompt_len, n_vocab, true);
    std::vector<int32_t> stream;
    for (size_t e = 0; e < ex.size(); e++) {
        stream.insert(stream.end(), ex.tokens.begin() + e * prompt_len, ex.tokens.begin() + (e + 1) * prompt_len);
        stream.push_back(ex.targets[e]);
    }
    if (stream.size() < n_ctx + 1) throw TrainerError("llama-opt needs at least " + std::to_string(n_ctx + 1) + " tokens of examples");
    const int64_t ndata = (int64_t) (stream.size() - 1) / n_ctx;

    // One ordinary decode first: llama_opt_epoch alone never applies the thread count to the CPU backend.
    llama_token first = stream[0];
    llama_batch one = llama_batch_get_one(&first, 1);
    if (llama_decode(ctx.get(), one) != 0) throw TrainerError("warm-up decode failed");
    llama_memory_clear(llama_get_memory(ctx.get()), true);

    ggml_opt_dataset_t data = ggml_opt_dataset_init(GGML_TYPE_I32, GGML_TYPE_I32, n_ctx, n_ctx, ndata, 1);
    int32_t * d = (int32_t *) ggml_opt_dataset_data(data)->data;
    int32_t * l = (int32_t *) ggml_opt_dataset_labels(data)->data;
    for (int64_t i = 0; i < ndata; i++) {
        memcpy(d + i * n_ctx, stream.data() + i * n_ctx, n_ctx * sizeof(int32_t));
        memcpy(l + i * n_ctx, stream.data() + i * n_ctx + 1, n_ctx * sizeof(int32_t));
    }
    llama_opt_params op{0, llama_opt_param_filter_all, nullptr, fixed_lr, nullptr, GGML_OPT_OPTIMIZER_TYPE_ADAMW};
    llama_opt_init(ctx.get(), model.get(), op);
    ggml_opt_result_t result = ggml_opt_result_init();
    const double t0 = wall_seconds(), c0 = cpu_seconds();
    double loss = NAN, unc;
    for (int ep = 0; ep < epochs; ep++) {
        ggml_opt_result_reset(result);
        llama_opt_epoch(ctx.get(), data, result, nullptr, ndata, nullptr, nullptr);
        ggml_opt_result_loss(result, &loss, &unc);
        printf("{\"event\":\"epoch\",\"epoch\":%d,\"train_loss\":%s}\n", ep + 1, json_num(loss).c_str());
        fflush(stdout);
    }
    const double wall = wall_seconds() - t0, cpu = cpu_seconds() - c0;
    ggml_opt_result_free(result);
    ggml_opt_dataset_free(data);
    const double examples = (double) ndata * n_ctx * epochs / (prompt_len + 1);
    printf("{\"event\":\"done\",\"outputs\":{},\"metrics\":{\"train_loss\":%s,\"examples_per_s\":%s,\"tokens_per_s\":%s,\"wall_s\":%s,\"cpu_s\":%s}}\n",
           json_num(loss).c_str(), json_num(examples / wall).c_str(), json_num(ndata * n_ctx * epochs / wall).c_str(), json_num(wall).c_str(),
           json_num(cpu).c_str());
    return 0;
}
