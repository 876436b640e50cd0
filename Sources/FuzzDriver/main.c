// collm-fuzz: the fuzz targets of Sources/FuzzTargets behind one binary.
//
// Built with libFuzzer (scripts/fuzz.sh: -sanitize=fuzzer), libFuzzer's main wins over the weak one below: the
// target is $COLLM_FUZZ_TARGET, and with $COLLM_FUZZ_SEEDS=DIR the binary writes the target's seeds into DIR and
// exits. In the normal build the weak main is a replayer: `FuzzDriver TARGET FILE...` runs each file once.
#include "FuzzDriver.h"

#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *name = getenv("COLLM_FUZZ_TARGET");
    if (name == NULL) {
        fprintf(stderr, "set COLLM_FUZZ_TARGET (gguf, tokenizer, codec, session, openai)\n");
        exit(2);
    }
    if (collm_fuzz_select(name) != 0) exit(2);
    const char *seeds = getenv("COLLM_FUZZ_SEEDS");
    if (seeds != NULL) exit(collm_fuzz_write_seeds(seeds) == 0 ? 0 : 1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) { return collm_fuzz_one(data, size); }

static int replay(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return 1;
    }
    size_t capacity = 1 << 16, size = 0, n;
    uint8_t *data = malloc(capacity);
    while (data != NULL && (n = fread(data + size, 1, capacity - size, f)) > 0) {
        size += n;
        if (size == capacity) data = realloc(data, capacity *= 2);
    }
    fclose(f);
    if (data == NULL) return 1;
    collm_fuzz_one(data, size);
    free(data);
    printf("ok %s (%zu bytes)\n", path, size);
    return 0;
}

__attribute__((weak)) int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s TARGET [FILE...]   (replays inputs; scripts/fuzz.sh fuzzes)\n", argv[0]);
        return 2;
    }
    if (collm_fuzz_select(argv[1]) != 0) return 2;
    int status = 0;
    for (int i = 2; i < argc; i++) status |= replay(argv[i]);
    return status;
}
