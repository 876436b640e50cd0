// The Swift entry points of Sources/FuzzTargets (exported with @_cdecl).
#pragma once
#include <stddef.h>
#include <stdint.h>
int collm_fuzz_select(const char *name);
int collm_fuzz_one(const uint8_t *data, size_t size);
int collm_fuzz_write_seeds(const char *dir);
