#include "gguf_file.h"
#include "util.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

GgufFile::GgufFile(const std::string & p, bool with_data) : path(p) {
    FILE * f = fopen(p.c_str(), "rb");
    if (!f) throw TrainerError("cannot open " + p + ": " + strerror(errno));
    fclose(f);
    gguf_init_params ip = { /*no_alloc=*/!with_data, with_data ? &data : nullptr };
    g = gguf_init_from_file(p.c_str(), ip);
    if (!g) throw TrainerError(p + " is not a readable GGUF file");
}

GgufFile::~GgufFile() {
    if (g) gguf_free(g);
    if (data) ggml_free(data);
}

int64_t GgufFile::key(const std::string & k, bool required) const {
    int64_t id = gguf_find_key(g, k.c_str());
    if (id < 0 && required) throw TrainerError(path + ": missing GGUF key " + k);
    return id;
}

std::string GgufFile::str(const std::string & k) const {
    int64_t id = key(k);
    if (gguf_get_kv_type(g, id) != GGUF_TYPE_STRING) throw TrainerError(path + ": GGUF key " + k + " is not a string");
    return gguf_get_val_str(g, id);
}

int64_t GgufFile::integer(const std::string & k) const {
    int64_t id = key(k);
    switch (gguf_get_kv_type(g, id)) {
        case GGUF_TYPE_UINT8: return gguf_get_val_u8(g, id);
        case GGUF_TYPE_INT8: return gguf_get_val_i8(g, id);
        case GGUF_TYPE_UINT16: return gguf_get_val_u16(g, id);
        case GGUF_TYPE_INT16: return gguf_get_val_i16(g, id);
        case GGUF_TYPE_UINT32: return gguf_get_val_u32(g, id);
        case GGUF_TYPE_INT32: return gguf_get_val_i32(g, id);
        case GGUF_TYPE_UINT64: return (int64_t) gguf_get_val_u64(g, id);
        case GGUF_TYPE_INT64: return gguf_get_val_i64(g, id);
        default: throw TrainerError(path + ": GGUF key " + k + " is not an integer");
    }
}

float GgufFile::f32(const std::string & k) const {
    int64_t id = key(k);
    switch (gguf_get_kv_type(g, id)) {
        case GGUF_TYPE_FLOAT32: return gguf_get_val_f32(g, id);
        case GGUF_TYPE_FLOAT64: return (float) gguf_get_val_f64(g, id);
        default: throw TrainerError(path + ": GGUF key " + k + " is not a float");
    }
}

void write_gguf(gguf_context * g, const std::string & path) {
    write_atomically(path, [&](const std::string & tmp) {
        if (!gguf_write_to_file(g, tmp.c_str(), false)) throw TrainerError("cannot write " + tmp);
    });
}
