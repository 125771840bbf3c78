#include "util.h"

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

std::string json_escape(const std::string & s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') { out += '\\'; out += (char) c; }
        else if (c == '\n') out += "\\n";
        else if (c == '\t') out += "\\t";
        else if (c < 0x20) { char buf[8]; snprintf(buf, sizeof buf, "\\u%04x", c); out += buf; }
        else out += (char) c;
    }
    return out + "\"";
}

std::string json_num(double v) {
    if (!std::isfinite(v)) return "null";
    char buf[32];
    snprintf(buf, sizeof buf, "%.9g", v);
    return buf;
}

Args::Args(int argc, char ** argv, int first, const std::vector<std::string> & known) {
    for (int i = first; i < argc; i += 2) {
        std::string key = argv[i];
        if (key.rfind("--", 0) != 0) throw TrainerError("expected an option like --name, got '" + key + "'");
        key = key.substr(2);
        bool ok = false;
        for (const auto & k : known) ok = ok || k == key;
        if (!ok) throw TrainerError("unknown option --" + key);
        if (i + 1 >= argc) throw TrainerError("option --" + key + " needs a value");
        values_[key] = argv[i + 1];
    }
}

bool Args::has(const std::string & key) const { return values_.count(key) > 0; }

std::string Args::str(const std::string & key) const {
    auto it = values_.find(key);
    if (it == values_.end()) throw TrainerError("missing required option --" + key);
    return it->second;
}

std::string Args::str(const std::string & key, const std::string & def) const {
    return has(key) ? str(key) : def;
}

int64_t Args::i64(const std::string & key, int64_t def) const {
    if (!has(key)) return def;
    const std::string v = str(key);
    char * end = nullptr;
    errno = 0;
    long long x = strtoll(v.c_str(), &end, 10);
    if (errno || end == v.c_str() || *end) throw TrainerError("option --" + key + " must be an integer, got '" + v + "'");
    return x;
}

double Args::f64(const std::string & key, double def) const {
    if (!has(key)) return def;
    const std::string v = str(key);
    char * end = nullptr;
    double x = strtod(v.c_str(), &end);
    if (end == v.c_str() || *end || !std::isfinite(x)) throw TrainerError("option --" + key + " must be a number, got '" + v + "'");
    return x;
}

std::string temp_sibling(const std::string & path) {
    return path + ".tmp-" + std::to_string(getpid());
}

void remove_quietly(const std::string & path) { unlink(path.c_str()); }

void fsync_and_rename(const std::string & tmp, const std::string & path) {
    int fd = open(tmp.c_str(), O_RDONLY);
    if (fd < 0) throw TrainerError("cannot reopen " + tmp + " to sync it: " + strerror(errno));
    int rc = fsync(fd);
    close(fd);
    if (rc != 0) throw TrainerError("fsync of " + tmp + " failed: " + strerror(errno));
    if (rename(tmp.c_str(), path.c_str()) != 0) throw TrainerError("cannot rename " + tmp + " to " + path + ": " + strerror(errno));
}

double wall_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double cpu_seconds() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}
