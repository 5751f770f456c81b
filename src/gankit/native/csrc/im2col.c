/* The windows of a channels-last map, one row per output pixel (gankit/native/im2col.py:
   models/kernels.py's weight gradient of a strided convolution as one GEMM).

   x (N, H, W, C) contiguous; out (N, P, Q, KH, KW, C) contiguous: out[n, p, q, a, b] is the
   C values of x at (sh p + a - ph, sw q + b - pw), or zeros where that is outside x (the
   convolution's padding). Each is one copy of C contiguous elements; elements are moved,
   never computed on, so the result is exact for any element of `size` bytes. Plain C. */
#pragma GCC optimize("O3")
#include <stdint.h>
#include <string.h>

void gankit_im2col(int64_t n, int64_t h, int64_t w, int64_t c, int64_t p, int64_t q,
                   int64_t kh, int64_t kw, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                   int64_t size, const void *x, void *out) {
    const size_t row = (size_t)(c * size);
    #pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < n * p; t++) {
        const int64_t i = t / p, y0 = (t % p) * sh - ph;
        char *o = (char *)out + (size_t)t * q * kh * kw * row;
        for (int64_t j = 0; j < q; j++) {
            const int64_t x0 = j * sw - pw;
            for (int64_t a = 0; a < kh; a++) {
                const int64_t y = y0 + a;
                for (int64_t b = 0; b < kw; b++, o += row) {
                    const int64_t xx = x0 + b;
                    if (y < 0 || y >= h || xx < 0 || xx >= w) memset(o, 0, row);
                    else memcpy(o, (const char *)x + (size_t)((i * h + y) * w + xx) * row, row);
                }
            }
        }
    }
}
