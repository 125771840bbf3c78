// `llama-opt`: full-weight training of a base model through llama.cpp's own llama_opt API, timed as the benchmark's baseline.
#pragma once
#include "util.h"

int cmd_llama_opt(const Args & a);
