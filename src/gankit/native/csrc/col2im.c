/* The scatter half of a transposed convolution computed as a GEMM (gankit/native/col2im.py,
   models/kernels.py's GEMM route for small inputs).

   A transposed convolution of x (N, H, W, Cin) with w (Cin, KH, KW, Cout) is, per input
   pixel, one row of the product x (N H W, Cin) @ w (Cin, KH KW Cout): the KH x KW window of
   output pixels that pixel's kernel reaches. Adding the windows up into the output map is
   this function. Each output pixel gathers the windows that reach it, taps in ascending
   order (rows of the kernel, then columns), in fp32 from the bias, and is rounded once to the
   output's type: the order depends on nothing else, so not on the number of threads.
   Plain C for the compiler's vectoriser (the channel loop innermost, the types fixed per
   instantiation), built for AVX-512 like the other kernels. */
#pragma GCC optimize("O3")
#include <stdint.h>
#include <stdlib.h>

#include "bf16.h"

INLINE void add_row(float *acc, const void *src, int64_t c, int bf) {
    if (bf) { const uint16_t *s = src; for (int64_t i = 0; i < c; i++) acc[i] += bf2f(s[i]); }
    else { const float *s = src; for (int64_t i = 0; i < c; i++) acc[i] += s[i]; }
}

INLINE void store_row(void *dst, const float *acc, int64_t c, int bf) {
    if (bf) { uint16_t *d = dst; for (int64_t i = 0; i < c; i++) d[i] = f2bf(acc[i]); }
    else { float *d = dst; for (int64_t i = 0; i < c; i++) d[i] = acc[i]; }
}

/* The rows of output pixel (n, y, x): bias, then every window row that reaches it. */
INLINE void pixel(float *acc, int64_t n, int64_t y, int64_t x, int64_t h, int64_t w,
                  int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                  int64_t c, const void *cols, const float *bias, void *out, int64_t ho,
                  int64_t wo, int bf) {
    for (int64_t i = 0; i < c; i++) acc[i] = bias ? bias[i] : 0.f;
    const size_t el = bf ? 2 : 4;
    for (int64_t a = 0; a < kh; a++) {
        const int64_t t = y + ph - a;
        if (t < 0 || t % sh || t / sh >= h) continue;
        for (int64_t b = 0; b < kw; b++) {
            const int64_t u = x + pw - b;
            if (u < 0 || u % sw || u / sw >= w) continue;
            const int64_t row = (((n * h + t / sh) * w + u / sw) * kh + a) * kw + b;
            add_row(acc, (const char *)cols + (size_t)(row * c) * el, c, bf);
        }
    }
    store_row((char *)out + (size_t)(((n * ho + y) * wo + x) * c) * el, acc, c, bf);
}

/* cols (N, H, W, KH, KW, C) and out (N, HO, WO, C), both contiguous and of one type (bf 1:
   bf16, 0: fp32); bias (C,) fp32 or NULL; stride (sh, sw), padding (ph, pw). Returns 0, or 1
   when it could not allocate its sums. */
int gankit_col2im(int64_t n, int64_t h, int64_t w, int64_t kh, int64_t kw, int64_t sh,
                  int64_t sw, int64_t ph, int64_t pw, int64_t c, int64_t ho, int64_t wo,
                  const void *cols, const float *bias, void *out, int bf) {
    int failed = 0;
    #pragma omp parallel reduction(|: failed)
    {
        float *acc = malloc(sizeof(float) * (size_t)c);
        if (!acc) failed = 1;
        #pragma omp for schedule(static)
        for (int64_t r = 0; r < n * ho; r++) {
            if (!acc) continue;
            for (int64_t x = 0; x < wo; x++) {
                if (bf) pixel(acc, r / ho, r % ho, x, h, w, kh, kw, sh, sw, ph, pw, c, cols,
                              bias, out, ho, wo, 1);
                else pixel(acc, r / ho, r % ho, x, h, w, kh, kw, sh, sw, ph, pw, c, cols, bias,
                           out, ho, wo, 0);
            }
        }
        free(acc);
    }
    return failed;
}
