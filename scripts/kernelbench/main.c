// Single-thread kernel benchmark for the CKernels matrix products (SmolLM2-135M shapes, or with the
// argument `gemma` Gemma 3 270M Q4_K_M's: Q5_0 / Q4_K / Q6_K / Q8_0, plus Q4_1, Q5_K, Q2_K and Q3_K on the
// same shapes).
//   gemv (n = 1): weight bytes streamed per second, cache-hot and from DRAM (rotating copies > L3)
//   prefill (n = 64, 256): GFLOP/s (2 * rows * cols * n per product)
// Usage: kernelbench [gemma] [isa ...]   (isa: scalar, avx2, avx512vnni; default: every available)
#include "ckernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <immintrin.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static unsigned long long rng = 88172645463325252ull;
static float frand(void) {
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) / (double)(1 << 24)) * 2 - 1;
}

typedef struct {
    const char *name;
    ck_type t;
    int64_t rows, cols;
    int per_token;  // times used per token in the model (30 layers; the head once)
} shape;

static const shape smollm_shapes[] = {
    {"attn_q/o 576x576   Q4_1", CK_Q4_1, 576, 576, 60},
    {"attn_k/v 192x576   Q4_1", CK_Q4_1, 192, 576, 60},
    {"ffn_up   1536x576  Q4_1", CK_Q4_1, 1536, 576, 60},
    {"ffn_down 576x1536  Q4_1", CK_Q4_1, 576, 1536, 30},
    {"head     49152x576 Q8_0", CK_Q8_0, 49152, 576, 1},
};
// Gemma 3 270M Q4_K_M: 18 layers; per-token counts are the file's tensors of that type and shape.
// The Q4_1 rows (count 0: not in the decode estimate) compare the formats on the same shapes.
static const shape gemma_shapes[] = {
    {"attn_q   1024x640  Q5_0", CK_Q5_0, 1024, 640, 18},
    {"attn_k/v 256x640   Q5_0", CK_Q5_0, 256, 640, 27},
    {"attn_v   256x640   Q8_0", CK_Q8_0, 256, 640, 9},
    {"attn_o   640x1024  Q4_K", CK_Q4_K, 640, 1024, 18},
    {"ffn_g/u  2048x640  Q5_0", CK_Q5_0, 2048, 640, 36},
    {"ffn_down 640x2048  Q4_K", CK_Q4_K, 640, 2048, 9},
    {"ffn_down 640x2048  Q6_K", CK_Q6_K, 640, 2048, 9},
    {"head  262144x640   Q8_0", CK_Q8_0, 262144, 640, 1},
    {"attn_q   1024x640  Q4_1", CK_Q4_1, 1024, 640, 0},
    {"attn_o   640x1024  Q4_1", CK_Q4_1, 640, 1024, 0},
    {"ffn_g/u  2048x640  Q4_1", CK_Q4_1, 2048, 640, 0},
    {"ffn_down 640x2048  Q4_1", CK_Q4_1, 640, 2048, 0},
    {"ffn_down 640x2048  Q5_K", CK_Q5_K, 640, 2048, 0},
    {"attn_o   640x1024  Q2_K", CK_Q2_K, 640, 1024, 0},
    {"ffn_down 640x2048  Q2_K", CK_Q2_K, 640, 2048, 0},
    {"attn_o   640x1024  Q3_K", CK_Q3_K, 640, 1024, 0},
    {"ffn_down 640x2048  Q3_K", CK_Q3_K, 640, 2048, 0},
};
static const shape *shapes = smollm_shapes;
static size_t NSHAPES = sizeof smollm_shapes / sizeof smollm_shapes[0];
static size_t conv_shape = 3;  // the activation-conversion timing's shape

static void *make_packed(const shape *s) {
    size_t rb = ck_row_bytes(s->t, s->cols);
    float *w = malloc(sizeof(float) * s->cols);
    unsigned char *g = malloc(rb * s->rows);
    for (int64_t r = 0; r < s->rows; r++) {
        for (int64_t c = 0; c < s->cols; c++) w[c] = frand();
        ck_quantize_row_ref(s->t, w, g + r * rb, s->cols);
    }
    void *p = aligned_alloc(64, (ck_packed_size(s->t, s->rows, s->cols) + 63) / 64 * 64);
    ck_pack(s->t, g, s->rows, s->cols, p);
    free(w);
    free(g);
    return p;
}

static void *make_act(const shape *s, int64_t n) {
    float *x = malloc(sizeof(float) * n * s->cols);
    for (int64_t i = 0; i < n * s->cols; i++) x[i] = frand();
    void *a = aligned_alloc(64, (ck_act_row_bytes(s->t, s->cols) * n + 63) / 64 * 64);
    ck_convert_act(s->t, x, n, s->cols, a);
    free(x);
    return a;
}

// Seconds per product (thread CPU time, robust to a busy machine): best of 5 trials of >= 50 ms.
static double time_matmul(const shape *s, void **copies, int ncopies, const void *act, int64_t n, float *y) {
    double best = 1e9;
    for (int trial = 0; trial < 5; trial++) {
        long iters = 0;
        double t0 = now(), t1;
        do {
            for (int k = 0; k < ncopies; k++, iters++)
                ck_matmul(s->t, copies[k], s->rows, s->cols, act, n, y, s->rows, 0, s->rows);
            t1 = now();
        } while (t1 - t0 < 0.05);
        double per = (t1 - t0) / iters;
        if (per < best) best = per;
    }
    return best;
}

// Plain AVX2 streaming read of a 256 MiB buffer: the machine's single-thread DRAM read bandwidth.
__attribute__((target("avx2"))) static double stream_read_gbps(void) {
    size_t n = (size_t)256 << 20;
    char *p = aligned_alloc(64, n);
    memset(p, 1, n);
    double best = 0;
    for (int tr = 0; tr < 3; tr++) {
        double t0 = now();
        __m256i a = _mm256_setzero_si256(), b = a;
        for (size_t i = 0; i < n; i += 64) {
            a = _mm256_add_epi8(a, _mm256_load_si256((const __m256i *)(p + i)));
            b = _mm256_add_epi8(b, _mm256_load_si256((const __m256i *)(p + i + 32)));
        }
        double g = n / (now() - t0) * 1e-9;
        volatile int sink = _mm256_extract_epi8(_mm256_add_epi8(a, b), 0);
        (void)sink;
        if (g > best) best = g;
    }
    free(p);
    return best;
}

static void bench(ck_isa isa) {
    ck_isa_set(isa);
    printf("\n== ISA %s (single thread) ==\n", ck_isa_name(ck_isa_current()));
    printf("%-24s %9s %10s %10s %11s %11s\n", "matrix", "MiB", "hot GB/s", "DRAM GB/s", "n=64 GF/s", "n=256 GF/s");
    double token_time = 0, model_bytes = 0;
    for (size_t i = 0; i < NSHAPES; i++) {
        const shape *s = &shapes[i];
        size_t bytes = ck_packed_size(s->t, s->rows, s->cols);
        // enough copies to exceed the 32 MiB L3 several times over, so gemv streams from DRAM
        int ncopies = (int)(160.0 * 1024 * 1024 / bytes) + 1;
        if (ncopies > 400) ncopies = 400;
        void **copies = malloc(sizeof(void *) * ncopies);
        copies[0] = make_packed(s);
        for (int k = 1; k < ncopies; k++) {
            copies[k] = aligned_alloc(64, (bytes + 63) / 64 * 64);
            memcpy(copies[k], copies[0], bytes);
        }
        float *y = malloc(sizeof(float) * s->rows * 256);
        void *a1 = make_act(s, 1), *a64 = make_act(s, 64), *a256 = make_act(s, 256);
        double hot = time_matmul(s, copies, 1, a1, 1, y);
        double cold = time_matmul(s, copies, ncopies, a1, 1, y);
        double flop = 2.0 * s->rows * s->cols;
        double p64 = -1, p256 = -1;
        int slow = ck_isa_current() == CK_ISA_SCALAR && s->rows > 2000;
        if (!slow) {
            p64 = flop * 64 / time_matmul(s, copies, 1, a64, 64, y) * 1e-9;
            p256 = flop * 256 / time_matmul(s, copies, 1, a256, 256, y) * 1e-9;
        }
        printf("%-24s %9.2f %10.1f %10.1f %11.1f %11.1f\n", s->name, bytes / 1048576.0, bytes / hot * 1e-9,
               bytes / cold * 1e-9, p64, p256);
        token_time += cold * s->per_token;
        model_bytes += (double)bytes * s->per_token;
        for (int k = 0; k < ncopies; k++) free(copies[k]);
        free(copies); free(y); free(a1); free(a64); free(a256);
    }
    printf("decode estimate (matmuls only, weights from DRAM): %.1f MiB/token, %.1f GB/s, %.0f tok/s\n",
           model_bytes / 1048576.0, model_bytes / token_time * 1e-9, 1.0 / token_time);

    // activation conversion cost (per token row of the shape's columns)
    const shape *s = &shapes[conv_shape];
    float *x = malloc(sizeof(float) * 256 * s->cols);
    for (int64_t i = 0; i < 256 * s->cols; i++) x[i] = frand();
    void *a = malloc(ck_act_row_bytes(s->t, s->cols) * 256);
    double t0 = now();
    int it = 0;
    do { ck_convert_act(s->t, x, 256, s->cols, a); it++; } while (now() - t0 < 0.1);
    printf("ck_convert_act: %.1f ns per %lld-float row\n", (now() - t0) / it / 256 * 1e9, (long long)s->cols);
    free(x); free(a);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "gemma")) {
        shapes = gemma_shapes;
        NSHAPES = sizeof gemma_shapes / sizeof gemma_shapes[0];
        conv_shape = 5;
        argv++;
        argc--;
    }
    printf("raw streaming read (AVX2 loads, 256 MiB): %.1f GB/s\n", stream_read_gbps());
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            for (int k = 0; k <= (int)ck_isa_best(); k++)
                if (!strcmp(argv[i], ck_isa_name((ck_isa)k))) bench((ck_isa)k);
    } else {
        for (int k = (int)ck_isa_best(); k >= 0; k--) bench((ck_isa)k);
    }
    return 0;
}
