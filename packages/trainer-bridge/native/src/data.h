// Input files written by the TypeScript bridge: the vocabulary and the examples.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

// One token per line: `text<TAB>gguf token type`, in token-id order.
struct Vocab {
    std::vector<std::string> text;
    std::vector<int32_t> type;
    int32_t id_of(const std::string & t) const;  // throws when absent
    int32_t first_user_defined() const;          // first cluster token
    int32_t n_user_defined() const;
};
Vocab read_vocab(const std::string & path);

// One example per line: the prompt's token ids, then (optionally) the target token id, whitespace-separated.
struct Examples {
    int n_prompt = 0;                 // tokens per prompt
    std::vector<int32_t> tokens;      // n * n_prompt
    std::vector<int32_t> targets;     // n, or empty when the file has no targets
    size_t size() const { return tokens.size() / (n_prompt ? n_prompt : 1); }
};
// Every line must hold n_prompt ids (prompt only) or n_prompt + 1 (with target), all below n_vocab.
Examples read_examples(const std::string & path, int n_prompt, int n_vocab, bool need_targets);
