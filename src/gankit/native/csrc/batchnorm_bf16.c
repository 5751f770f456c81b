/* BatchNorm in training mode over channels-last bf16 maps, with the activation that follows
   it (ReLU, LeakyReLU or none) in the same pass (gankit/native/build.py builds it,
   native/batchnorm.py calls it).

   A map of N images, C channels and H x W pixels laid out channels-last is P = N*H*W rows of C
   values. Forward: the per-channel mean and biased variance from one pass of sums of
   d = x - x0 and d * d, x0 being the channel's value in the first row (shifted data: the
   variance S2/P - (S1/P)^2 of values centred near their mean, without the cancellation of
   raw sums of squares); then y = act(x * scale + shift) with scale = w * invstd,
   shift = b - mean * scale, written in bf16; the running statistics updated as torch's
   BatchNorm updates them (the unbiased variance). Backward: with z = x * scale + shift
   recomputed exactly as the forward computed it, dz = dy where z > 0, else dy * slope;
   db = sum dz, dw = sum dz * xhat, dx = w * invstd * (dz - db / P - xhat * dw / P),
   xhat = (x - mean) * invstd: one pass for the sums, one for dx.

   Per-channel sums are taken over fixed pieces of ROWS rows in float and the pieces' sums
   added in double in piece order, so the result does not depend on the number of threads.
   The pieces run on torch's OpenMP threads (this library binds torch's libgomp). The loops
   over rows keep four sums per 16 channels (an add's latency, not its throughput, bounds one
   sum) and use masked loads and stores only for the last channels of a C that is not a
   multiple of 16. */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#define ROWS 256
#define INLINE static inline __attribute__((always_inline))

INLINE __m512 widen(__m256i h) {
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* 16 bf16 values as floats: all 16 (full) or the lanes of k */
INLINE __m512 load(const uint16_t *x, __mmask16 k, int full) {
    return widen(full ? _mm256_loadu_si256((const __m256i *)x) : _mm256_maskz_loadu_epi16(k, x));
}

INLINE void store(uint16_t *y, __mmask16 k, int full, __m512 v) {
    const __m256i h = (__m256i)_mm512_cvtneps_pbh(v);
    if (full) _mm256_storeu_si256((__m256i *)y, h);
    else _mm256_mask_storeu_epi16(y, k, h);
}

INLINE __m512 activate(__m512 z, float slope) {
    if (slope == 0.0f) return _mm512_max_ps(z, _mm512_setzero_ps());
    if (slope == 1.0f) return z;
    const __mmask16 neg = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LE_OQ);
    return _mm512_mask_mul_ps(z, neg, z, _mm512_set1_ps(slope));
}

/* dy through the activation's derivative at z */
INLINE __m512 through(__m512 g, __m512 z, float slope) {
    if (slope == 1.0f) return g;
    const __mmask16 neg = _mm512_cmp_ps_mask(z, _mm512_setzero_ps(), _CMP_LE_OQ);
    return _mm512_mask_mul_ps(g, neg, g, _mm512_set1_ps(slope));
}

INLINE __mmask16 lanes(int64_t c, int64_t C) {
    return C - c >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (C - c)) - 1u);
}

INLINE int64_t piece_end(int64_t q, int64_t P) {
    return (q + 1) * ROWS < P ? (q + 1) * ROWS : P;
}

/* Over rows r0..r1 of 16 channels at x: sum of d and of d * d, d = x - x0 */
INLINE void shifted_sums(const uint16_t *x, int64_t C, int64_t r0, int64_t r1, __mmask16 k,
                         int full, __m512 x0, __m512 *s1, __m512 *s2) {
    __m512 a[4], b[4];
    for (int j = 0; j < 4; j++) a[j] = b[j] = _mm512_setzero_ps();
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4)
        for (int j = 0; j < 4; j++) {
            const __m512 d = _mm512_sub_ps(load(x + (r + j) * C, k, full), x0);
            a[j] = _mm512_add_ps(a[j], d);
            b[j] = _mm512_fmadd_ps(d, d, b[j]);
        }
    for (; r < r1; r++) {
        const __m512 d = _mm512_sub_ps(load(x + r * C, k, full), x0);
        a[0] = _mm512_add_ps(a[0], d);
        b[0] = _mm512_fmadd_ps(d, d, b[0]);
    }
    *s1 = _mm512_add_ps(_mm512_add_ps(a[0], a[1]), _mm512_add_ps(a[2], a[3]));
    *s2 = _mm512_add_ps(_mm512_add_ps(b[0], b[1]), _mm512_add_ps(b[2], b[3]));
}

INLINE void normalize(const uint16_t *x, uint16_t *y, int64_t C, int64_t r0, int64_t r1,
                      __mmask16 k, int full, __m512 s, __m512 t, float slope) {
    for (int64_t r = r0; r < r1; r++)
        store(y + r * C, k, full, activate(_mm512_fmadd_ps(load(x + r * C, k, full), s, t), slope));
}

/* 16 channels' constants of the backward pass: z = x * s + t, xhat = (x - m) * is; the means
   of dz (mg) and of dz * xhat (mgx) */
typedef struct { __m512 s, t, m, is, mg, mgx; } Channels;

INLINE Channels channels(const float *scale, const float *shift, const float *mean,
                         const float *invstd, const float *mg, const float *mgx, int64_t c,
                         __mmask16 k) {
    Channels ch = {_mm512_maskz_loadu_ps(k, scale + c), _mm512_maskz_loadu_ps(k, shift + c),
                   _mm512_maskz_loadu_ps(k, mean + c), _mm512_maskz_loadu_ps(k, invstd + c),
                   mg ? _mm512_maskz_loadu_ps(k, mg + c) : _mm512_setzero_ps(),
                   mgx ? _mm512_maskz_loadu_ps(k, mgx + c) : _mm512_setzero_ps()};
    return ch;
}

/* Over rows r0..r1 of 16 channels: sum of dz and of dz * xhat */
INLINE void grad_sums(const uint16_t *x, const uint16_t *dy, int64_t C, int64_t r0, int64_t r1,
                      __mmask16 k, int full, Channels ch, float slope, __m512 *s1, __m512 *s2) {
    const __m512 s = ch.s, t = ch.t, m = ch.m, is = ch.is;
    __m512 a[4], b[4];
    for (int j = 0; j < 4; j++) a[j] = b[j] = _mm512_setzero_ps();
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4)
        for (int j = 0; j < 4; j++) {
            const __m512 xv = load(x + (r + j) * C, k, full);
            const __m512 g = through(load(dy + (r + j) * C, k, full),
                                     _mm512_fmadd_ps(xv, s, t), slope);
            a[j] = _mm512_add_ps(a[j], g);
            b[j] = _mm512_fmadd_ps(g, _mm512_mul_ps(_mm512_sub_ps(xv, m), is), b[j]);
        }
    for (; r < r1; r++) {
        const __m512 xv = load(x + r * C, k, full);
        const __m512 g = through(load(dy + r * C, k, full), _mm512_fmadd_ps(xv, s, t), slope);
        a[0] = _mm512_add_ps(a[0], g);
        b[0] = _mm512_fmadd_ps(g, _mm512_mul_ps(_mm512_sub_ps(xv, m), is), b[0]);
    }
    *s1 = _mm512_add_ps(_mm512_add_ps(a[0], a[1]), _mm512_add_ps(a[2], a[3]));
    *s2 = _mm512_add_ps(_mm512_add_ps(b[0], b[1]), _mm512_add_ps(b[2], b[3]));
}

INLINE void input_grad(const uint16_t *x, const uint16_t *dy, uint16_t *dx, int64_t C,
                       int64_t r0, int64_t r1, __mmask16 k, int full, Channels ch,
                       float slope) {
    const __m512 s = ch.s, t = ch.t, m = ch.m, is = ch.is, mg = ch.mg, mgx = ch.mgx;
    for (int64_t r = r0; r < r1; r++) {
        const __m512 xv = load(x + r * C, k, full);
        const __m512 g = through(load(dy + r * C, k, full), _mm512_fmadd_ps(xv, s, t), slope);
        const __m512 xh = _mm512_mul_ps(_mm512_sub_ps(xv, m), is);
        const __m512 d = _mm512_sub_ps(_mm512_sub_ps(g, mg), _mm512_mul_ps(xh, mgx));
        store(dx + r * C, k, full, _mm512_mul_ps(d, s));
    }
}

/* the pieces' sums added in double, in piece order */
static void combine(int64_t P, int64_t C, const float *sums, double *out) {
    const int64_t pieces = (P + ROWS - 1) / ROWS;
    for (int64_t c = 0; c < C; c++) out[c] = 0.0;
    for (int64_t q = 0; q < pieces; q++)
        for (int64_t c = 0; c < C; c++) out[c] += sums[q * C + c];
}

static void scale_shift(int64_t C, const float *w, const float *b, const float *mean,
                        const float *invstd, float *scale, float *shift) {
    for (int64_t c = 0; c < C; c++) {
        scale[c] = invstd[c] * (w ? w[c] : 1.0f);
        shift[c] = (b ? b[c] : 0.0f) - mean[c] * scale[c];
    }
}

/* Returns 0, or -1 when out of memory (nothing written). */
int gankit_bn_forward(int64_t P, int64_t C, const uint16_t *x, const float *w, const float *b,
                      float slope, double eps, double momentum, float *running_mean,
                      float *running_var, uint16_t *y, float *mean, float *invstd) {
    const int64_t pieces = (P + ROWS - 1) / ROWS;
    float *sums = malloc(sizeof(float) * (2 * pieces * C + 2 * C));
    double *tot = malloc(sizeof(double) * 2 * C);
    if (!sums || !tot) { free(sums); free(tot); return -1; }
    float *sums2 = sums + pieces * C, *scale = sums2 + pieces * C, *shift = scale + C;
#pragma omp parallel for schedule(static) if (pieces > 1)
    for (int64_t q = 0; q < pieces; q++)
        for (int64_t c = 0; c < C; c += 16) {
            const __mmask16 k = lanes(c, C);
            const int full = k == 0xffff;
            const __m512 x0 = full ? load(x + c, k, 1) : load(x + c, k, 0);
            __m512 s1, s2;
            if (full) shifted_sums(x + c, C, q * ROWS, piece_end(q, P), k, 1, x0, &s1, &s2);
            else shifted_sums(x + c, C, q * ROWS, piece_end(q, P), k, 0, x0, &s1, &s2);
            _mm512_mask_storeu_ps(sums + q * C + c, k, s1);
            _mm512_mask_storeu_ps(sums2 + q * C + c, k, s2);
        }
    combine(P, C, sums, tot);
    combine(P, C, sums2, tot + C);
    for (int64_t c = 0; c < C; c++) {
        const uint32_t u = (uint32_t)x[c] << 16;
        float x0;
        __builtin_memcpy(&x0, &u, 4);
        const double m1 = tot[c] / P;
        double var = tot[C + c] / P - m1 * m1;
        if (var < 0) var = 0;
        mean[c] = (float)(x0 + m1);
        invstd[c] = (float)(1.0 / sqrt(var + eps));
        if (running_mean)
            running_mean[c] = (float)((1 - momentum) * running_mean[c] + momentum * mean[c]);
        if (running_var)
            running_var[c] = (float)((1 - momentum) * running_var[c]
                                     + momentum * (P > 1 ? var * P / (P - 1) : var));
    }
    scale_shift(C, w, b, mean, invstd, scale, shift);
#pragma omp parallel for schedule(static) if (pieces > 1)
    for (int64_t q = 0; q < pieces; q++)
        for (int64_t c = 0; c < C; c += 16) {
            const __mmask16 k = lanes(c, C);
            const __m512 s = _mm512_maskz_loadu_ps(k, scale + c);
            const __m512 t = _mm512_maskz_loadu_ps(k, shift + c);
            if (k == 0xffff)
                normalize(x + c, y + c, C, q * ROWS, piece_end(q, P), k, 1, s, t, slope);
            else
                normalize(x + c, y + c, C, q * ROWS, piece_end(q, P), k, 0, s, t, slope);
        }
    free(sums);
    free(tot);
    return 0;
}

/* dw and db (C floats) may be NULL (no affine); dx may be NULL (no input gradient).
   Returns 0, or -1 when out of memory (nothing written). */
int gankit_bn_backward(int64_t P, int64_t C, const uint16_t *x, const uint16_t *dy,
                       const float *w, const float *b, const float *mean, const float *invstd,
                       float slope, uint16_t *dx, float *dw, float *db) {
    const int64_t pieces = (P + ROWS - 1) / ROWS;
    float *sums = malloc(sizeof(float) * (2 * pieces * C + 4 * C));
    double *tot = malloc(sizeof(double) * 2 * C);
    if (!sums || !tot) { free(sums); free(tot); return -1; }
    float *sums2 = sums + pieces * C, *scale = sums2 + pieces * C, *shift = scale + C;
    float *k1 = shift + C, *k2 = k1 + C;
    scale_shift(C, w, b, mean, invstd, scale, shift);
#pragma omp parallel for schedule(static) if (pieces > 1)
    for (int64_t q = 0; q < pieces; q++)
        for (int64_t c = 0; c < C; c += 16) {
            const __mmask16 k = lanes(c, C);
            const Channels ch = channels(scale, shift, mean, invstd, NULL, NULL, c, k);
            __m512 s1, s2;
            if (k == 0xffff)
                grad_sums(x + c, dy + c, C, q * ROWS, piece_end(q, P), k, 1, ch, slope, &s1, &s2);
            else
                grad_sums(x + c, dy + c, C, q * ROWS, piece_end(q, P), k, 0, ch, slope, &s1, &s2);
            _mm512_mask_storeu_ps(sums + q * C + c, k, s1);
            _mm512_mask_storeu_ps(sums2 + q * C + c, k, s2);
        }
    combine(P, C, sums, tot);
    combine(P, C, sums2, tot + C);
    for (int64_t c = 0; c < C; c++) {
        if (db) db[c] = (float)tot[c];
        if (dw) dw[c] = (float)tot[C + c];
        k1[c] = (float)(tot[c] / P);        /* mean of dz */
        k2[c] = (float)(tot[C + c] / P);    /* mean of dz * xhat */
    }
    if (dx) {
#pragma omp parallel for schedule(static) if (pieces > 1)
        for (int64_t q = 0; q < pieces; q++)
            for (int64_t c = 0; c < C; c += 16) {
                const __mmask16 k = lanes(c, C);
                const Channels ch = channels(scale, shift, mean, invstd, k1, k2, c, k);
                const int64_t r0 = q * ROWS, r1 = piece_end(q, P);
                if (k == 0xffff) input_grad(x + c, dy + c, dx + c, C, r0, r1, k, 1, ch, slope);
                else input_grad(x + c, dy + c, dx + c, C, r0, r1, k, 0, ch, slope);
            }
    }
    free(sums);
    free(tot);
    return 0;
}
