// Shared helpers of freshrec-trainer: errors, JSON output, argument parsing, atomic files.
#pragma once
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

// Every anticipated failure is a TrainerError: main() prints it as one JSON line on stderr and exits 1.
struct TrainerError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string json_escape(const std::string & s);
// Formats a float so that parsing it back yields the same float (JSON has no NaN/Inf: those become null).
std::string json_num(double v);

// `--key value` pairs after the subcommand. Unknown keys are an error so typos never go unnoticed.
class Args {
public:
    Args(int argc, char ** argv, int first, const std::vector<std::string> & known);
    bool has(const std::string & key) const;
    std::string str(const std::string & key) const;  // required
    std::string str(const std::string & key, const std::string & def) const;
    int64_t i64(const std::string & key, int64_t def) const;
    double f64(const std::string & key, double def) const;
private:
    std::map<std::string, std::string> values_;
};

// Writes via `write(tmp_path)` into a temporary sibling, fsyncs it and renames it over `path`;
// the temporary is removed when anything fails, so `path` is either the old file or the complete new one.
template <typename F> void write_atomically(const std::string & path, F write);
void fsync_and_rename(const std::string & tmp, const std::string & path);
void remove_quietly(const std::string & path);
std::string temp_sibling(const std::string & path);

template <typename F> void write_atomically(const std::string & path, F write) {
    const std::string tmp = temp_sibling(path);
    try {
        write(tmp);
        fsync_and_rename(tmp, path);
    } catch (...) {
        remove_quietly(tmp);
        throw;
    }
}

double wall_seconds();
double cpu_seconds();
