#include "train.h"
#include "util.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>

// Graphs are built per batch size: the full size and, at most, one remainder size.
class BatchCache {
public:
    BatchCache(const Model & m, const Lora * lora, std::vector<ggml_tensor *> params, ggml_backend_t be)
        : m_(m), lora_(lora), params_(std::move(params)), be_(be) {}
    Batch & get(int n) {
        auto & slot = cache_[n];
        if (!slot) slot = build_batch(m_, lora_, n, m_.meta.prompt_len(), params_, be_);
        return *slot;
    }
private:
    const Model & m_;
    const Lora * lora_;
    std::vector<ggml_tensor *> params_;
    ggml_backend_t be_;
    std::map<int, std::unique_ptr<Batch>> cache_;
};

static int argmax(const float * x, int64_t n) {
    return (int) (std::max_element(x, x + n) - x);
}

static EvalResult evaluate_with(BatchCache & cache, const Examples & ex, int batch, ggml_backend_t be) {
    std::vector<size_t> idx(ex.size());
    std::iota(idx.begin(), idx.end(), 0);
    double loss = 0;
    int64_t correct = 0;
    for (size_t from = 0; from < idx.size(); from += batch) {
        const int n = (int) std::min<size_t>(batch, idx.size() - from);
        Batch & b = cache.get(n);
        run_batch(b, be, ex, idx, from);
        loss += (double) *(float *) b.loss->data * n;
        const int64_t V = b.logits->ne[0];
        for (int i = 0; i < n; i++) correct += argmax((float *) b.logits->data + i * V, V) == ex.targets[idx[from + i]];
    }
    return {loss / ex.size(), (double) correct / ex.size()};
}

EvalResult evaluate(const Model & m, const Lora * lora, const Examples & ex, int batch, ggml_backend_t be) {
    BatchCache cache(m, lora, {}, be);
    return evaluate_with(cache, ex, batch, be);
}

static Examples subset(const Examples & ex, const std::vector<size_t> & idx, size_t from, size_t to) {
    Examples out;
    out.n_prompt = ex.n_prompt;
    for (size_t i = from; i < to; i++) {
        const size_t e = idx[i];
        out.tokens.insert(out.tokens.end(), ex.tokens.begin() + e * ex.n_prompt, ex.tokens.begin() + (e + 1) * ex.n_prompt);
        out.targets.push_back(ex.targets[e]);
    }
    return out;
}

struct AdamState { std::vector<float> m, v; };

static double lr_at(const TrainOptions & o, int64_t step, int64_t total) {
    const int64_t warm = (int64_t) std::ceil(o.warmup * total);
    if (step < warm) return o.lr * (double) (step + 1) / warm;
    const double progress = total > warm ? (double) (step - warm) / (double) (total - warm) : 1.0;
    const double min_lr = o.lr * o.min_lr_ratio;
    return min_lr + 0.5 * (o.lr - min_lr) * (1.0 + std::cos(M_PI * progress));
}

// One AdamW update (decoupled weight decay on matrices only) with global-norm clipping.
static void adamw_step(const TrainProblem & prob, const std::vector<ggml_tensor *> & params, std::vector<AdamState> & st,
                       const TrainOptions & o, double lr, int64_t t) {
    double sq = 0;
    for (ggml_tensor * p : params) {
        const float * g = prob.grad(p);
        for (int64_t i = 0; i < ggml_nelements(p); i++) sq += (double) g[i] * g[i];
    }
    const double norm = std::sqrt(sq);
    const float clip = (float) (o.clip > 0 && norm > o.clip ? o.clip / norm : 1.0);
    const float b1 = (float) o.beta1, b2 = (float) o.beta2;
    const float c1 = (float) (1.0 / (1.0 - std::pow(o.beta1, (double) t))), c2 = (float) (1.0 / (1.0 - std::pow(o.beta2, (double) t)));
    const float alr = (float) lr, eps = (float) o.eps;
    for (size_t k = 0; k < params.size(); k++) {
        ggml_tensor * p = params[k];
        float * w = (float *) p->data;
        const float * g = prob.grad(p);
        float * m = st[k].m.data(), * v = st[k].v.data();
        const float decay = ggml_n_dims(p) >= 2 ? 1.0f - alr * (float) o.weight_decay : 1.0f;
        for (int64_t i = 0; i < ggml_nelements(p); i++) {
            const float gi = g[i] * clip;
            m[i] = b1 * m[i] + (1 - b1) * gi;
            v[i] = b2 * v[i] + (1 - b2) * gi * gi;
            w[i] = w[i] * decay - alr * (m[i] * c1) / (std::sqrt(v[i] * c2) + eps);
        }
    }
}

TrainResult train(const Model & m, const Lora * lora, const std::vector<ggml_tensor *> & params,
                  const Examples & all, const Examples * val_in, const TrainOptions & o, ggml_backend_t be) {
    if (o.batch <= 0 || o.epochs <= 0) throw TrainerError("batch and epochs must be positive");
    std::mt19937_64 rng(o.seed);
    Examples tr, va;
    if (val_in) {
        tr = all;
        va = *val_in;
    } else {
        std::vector<size_t> idx(all.size());
        std::iota(idx.begin(), idx.end(), 0);
        std::shuffle(idx.begin(), idx.end(), rng);
        const size_t n_val = (size_t) std::floor(o.val_fraction * idx.size());
        va = subset(all, idx, 0, n_val);
        tr = subset(all, idx, n_val, idx.size());
    }
    BatchCache train_graphs(m, lora, params, be), eval_graphs(m, lora, {}, be);
    Batch * last = nullptr;
    TrainProblem prob;
    prob.n_train = tr.size();
    prob.n_val = va.size();
    prob.step = [&](const std::vector<size_t> & ids) {
        last = &train_graphs.get((int) ids.size());
        run_batch(*last, be, tr, ids, 0);
        return std::make_pair(*(float *) last->loss->data, (double) ids.size());
    };
    prob.grad = [&](ggml_tensor * p) { return (const float *) ggml_graph_get_grad(last->graph, p)->data; };
    prob.validate = [&]() { return evaluate_with(eval_graphs, va, std::max(o.batch, 64), be); };
    return train_loop(params, prob, o, rng);
}

TrainResult train_loop(const std::vector<ggml_tensor *> & params, const TrainProblem & prob, const TrainOptions & o, std::mt19937_64 & rng) {
    if (o.batch <= 0 || o.epochs <= 0) throw TrainerError("batch and epochs must be positive");
    const double t0 = wall_seconds(), c0 = cpu_seconds();
    if (prob.n_train == 0) throw TrainerError("no training examples left after the validation split");

    TrainResult r;
    r.n_train = (int64_t) prob.n_train;
    r.n_val = (int64_t) prob.n_val;
    std::vector<AdamState> st(params.size());
    for (size_t k = 0; k < params.size(); k++) {
        st[k].m.assign(ggml_nelements(params[k]), 0.0f);
        st[k].v.assign(ggml_nelements(params[k]), 0.0f);
    }
    const int64_t steps_per_epoch = ((int64_t) prob.n_train + o.batch - 1) / o.batch;
    const int64_t total = steps_per_epoch * o.epochs;
    std::vector<std::vector<float>> best;
    double best_val = INFINITY, train_time = 0;
    int64_t trained = 0, bad_epochs = 0;
    std::vector<size_t> idx(prob.n_train), ids;
    std::iota(idx.begin(), idx.end(), 0);

    for (int epoch = 1; epoch <= o.epochs; epoch++) {
        std::shuffle(idx.begin(), idx.end(), rng);
        double epoch_loss = 0, epoch_weight = 0, window_loss = 0, window_weight = 0;
        const double te = wall_seconds();
        for (size_t from = 0; from < idx.size(); from += o.batch) {
            const int n = (int) std::min<size_t>(o.batch, idx.size() - from);
            ids.assign(idx.begin() + from, idx.begin() + from + n);
            const auto [loss, weight] = prob.step(ids);
            if (!std::isfinite(loss))
                throw TrainerError("loss became " + std::string(std::isnan(loss) ? "NaN" : "infinite") + " at epoch " + std::to_string(epoch) +
                                   ", step " + std::to_string(r.steps + 1) + " (try a lower learning rate)");
            const double lr = lr_at(o, r.steps, total);
            r.steps++;
            adamw_step(prob, params, st, o, lr, r.steps);
            epoch_loss += (double) loss * weight;
            epoch_weight += weight;
            window_loss += (double) loss * weight;
            window_weight += weight;
            trained += n;
            if (o.progress_every > 0 && (r.steps % o.progress_every == 0 || r.steps == total)) {
                printf("{\"event\":\"progress\",\"step\":%lld,\"total\":%lld,\"epoch\":%d,\"loss\":%s,\"lr\":%s}\n", (long long) r.steps,
                       (long long) total, epoch, json_num(window_loss / window_weight).c_str(), json_num(lr).c_str());
                fflush(stdout);
                window_loss = 0;
                window_weight = 0;
            }
        }
        train_time += wall_seconds() - te;
        r.train_loss = epoch_loss / epoch_weight;
        r.epochs_run = epoch;
        EvalResult ev{NAN, NAN};
        if (prob.n_val > 0) ev = prob.validate();
        printf("{\"event\":\"epoch\",\"epoch\":%d,\"train_loss\":%s,\"val_loss\":%s,\"val_acc\":%s}\n", epoch, json_num(r.train_loss).c_str(),
               json_num(ev.loss).c_str(), json_num(ev.acc).c_str());
        fflush(stdout);
        if (prob.n_val == 0) continue;
        if (ev.loss < best_val) {
            best_val = ev.loss;
            r.val_loss = ev.loss;
            r.val_acc = ev.acc;
            r.best_epoch = epoch;
            bad_epochs = 0;
            best.resize(params.size());
            for (size_t k = 0; k < params.size(); k++) best[k].assign((float *) params[k]->data, (float *) params[k]->data + ggml_nelements(params[k]));
        } else if (++bad_epochs >= o.patience) {
            break;
        }
    }
    if (!best.empty() && r.best_epoch != r.epochs_run)
        for (size_t k = 0; k < params.size(); k++) memcpy(params[k]->data, best[k].data(), ggml_nbytes(params[k]));
    if (prob.n_val == 0) r.val_loss = r.val_acc = NAN;
    r.examples_per_s = trained / std::max(train_time, 1e-9);
    r.wall_s = wall_seconds() - t0;
    r.cpu_s = cpu_seconds() - c0;
    return r;
}
