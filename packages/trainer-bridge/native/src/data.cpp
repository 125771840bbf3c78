#include "data.h"
#include "util.h"

#include <fstream>
#include <sstream>

int32_t Vocab::id_of(const std::string & t) const {
    for (size_t i = 0; i < text.size(); i++) if (text[i] == t) return (int32_t) i;
    throw TrainerError("vocabulary has no token '" + t + "'");
}

int32_t Vocab::first_user_defined() const {
    for (size_t i = 0; i < type.size(); i++) if (type[i] == 4) return (int32_t) i;
    throw TrainerError("vocabulary has no user-defined (cluster) tokens");
}

int32_t Vocab::n_user_defined() const {
    int32_t n = 0;
    for (int32_t t : type) n += t == 4;
    return n;
}

Vocab read_vocab(const std::string & path) {
    std::ifstream in(path);
    if (!in) throw TrainerError("cannot open vocabulary file " + path);
    Vocab v;
    std::string line;
    int lineno = 0;
    while (std::getline(in, line)) {
        lineno++;
        size_t tab = line.find('\t');
        if (tab == std::string::npos || tab == 0)
            throw TrainerError(path + ":" + std::to_string(lineno) + ": expected 'text<TAB>type'");
        int type = atoi(line.c_str() + tab + 1);
        if (type < 1 || type > 6) throw TrainerError(path + ":" + std::to_string(lineno) + ": bad token type '" + line.substr(tab + 1) + "'");
        v.text.push_back(line.substr(0, tab));
        v.type.push_back(type);
    }
    if (v.text.empty()) throw TrainerError("vocabulary file " + path + " is empty");
    return v;
}

Examples read_examples(const std::string & path, int n_prompt, int n_vocab, bool need_targets) {
    std::ifstream in(path);
    if (!in) throw TrainerError("cannot open examples file " + path);
    Examples ex;
    ex.n_prompt = n_prompt;
    std::string line;
    int lineno = 0;
    std::vector<int64_t> ids;
    int with_target = -1;
    while (std::getline(in, line)) {
        lineno++;
        std::istringstream ss(line);
        ids.clear();
        std::string tok;
        while (ss >> tok) {
            char * end = nullptr;
            long long id = strtoll(tok.c_str(), &end, 10);
            if (*end || id < 0 || id >= n_vocab)
                throw TrainerError(path + ":" + std::to_string(lineno) + ": '" + tok + "' is not a token id below " + std::to_string(n_vocab));
            ids.push_back(id);
        }
        if (ids.empty()) continue;
        const int has_target = (int) ids.size() == n_prompt + 1 ? 1 : (int) ids.size() == n_prompt ? 0 : -1;
        if (has_target < 0)
            throw TrainerError(path + ":" + std::to_string(lineno) + ": expected " + std::to_string(n_prompt) + " prompt ids (+1 target), got " + std::to_string(ids.size()));
        if (with_target >= 0 && has_target != with_target)
            throw TrainerError(path + ":" + std::to_string(lineno) + ": some lines have a target and some do not");
        with_target = has_target;
        for (int i = 0; i < n_prompt; i++) ex.tokens.push_back((int32_t) ids[i]);
        if (has_target) ex.targets.push_back((int32_t) ids[n_prompt]);
    }
    if (ex.tokens.empty()) throw TrainerError("examples file " + path + " holds no examples");
    if (need_targets && ex.targets.empty()) throw TrainerError("examples file " + path + " has no target ids (each line needs " + std::to_string(n_prompt + 1) + " ids)");
    return ex;
}
