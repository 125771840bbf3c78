// Reading GGUF files (metadata and tensor data) with errors that name the file, and writing them atomically.
#pragma once
#include "gguf.h"
#include "ggml.h"

#include <cstdint>
#include <string>

struct GgufFile {
    gguf_context * g = nullptr;
    ggml_context * data = nullptr;  // null when opened for metadata only
    std::string path;
    // `with_data` loads every tensor into memory; without it only names, types and shapes are known (via gguf_*).
    explicit GgufFile(const std::string & p, bool with_data = true);
    ~GgufFile();
    GgufFile(const GgufFile &) = delete;
    GgufFile & operator=(const GgufFile &) = delete;
    bool has(const std::string & k) const { return gguf_find_key(g, k.c_str()) >= 0; }
    int64_t key(const std::string & k, bool required = true) const;
    std::string str(const std::string & k) const;
    int64_t integer(const std::string & k) const;
    float f32(const std::string & k) const;
};

// Writes `g` (metadata and tensor data already set) to `path` through a temporary sibling and a rename.
void write_gguf(gguf_context * g, const std::string & path);
