/* Adam for the fused MLP step in bf16 (gankit/native/build.py builds it, native/adam.py calls it).

   One pass per tensor does what torch's sequence did in four: the gradient's sum of squares
   (for the logged gradient norm), torch's fused Adam update of the fp32 weight and moments,
   and the bf16 copy of the updated weight that the next GEMMs read. The gradient is read in
   bf16, as the step's GEMMs wrote it (no fp32 copy first), or in fp32 (D's head, embeddings).
   The call also advances the step counts first and writes each member's gradient norm after
   (three and one torch operations a net before: 10-30 us of Python each, per update).

   The update is torch 2.13's CPU `_fused_adam_` (aten/src/ATen/native/cpu/FusedAdamKernel.cpp)
   operation for operation, as its wheel was compiled, so that its numbers are torch's bit for
   bit on one thread (tests/native/test_adam.py holds them to it): 16 elements at a time
   in float with the multiply-adds torch's compiler fused, then its scalar tail, the constants
   from the step count in double. bf16 rounding is round to nearest even, as torch's float ->
   bf16 cast (vcvtneps2bf16; NaN payloads aside). Compiled with -ffp-contract=off: nothing
   else is fused. */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static inline __m512 load_bf16(const uint16_t *x) {
    __m256i h = _mm256_loadu_si256((const __m256i *)x);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

static inline float bf16_to_float(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static inline uint16_t float_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0; /* NaN, as c10::BFloat16 */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/* One tensor of n elements. torch's constants are its double ones rounded to float; exp_avg
   is its `lerp_(grad, 1 - beta1)` from the nearer end (weight below 0.5 or not) and
   exp_avg_sq's update one fused multiply-add each, where torch's compiler fused them. */
static float adam_one(float *p, float *m, float *v, const uint16_t *gl, const float *gf,
                      uint16_t *wl, int64_t n, double step, double lr, double beta1,
                      double beta2, double eps) {
    const float step_size = (float)(lr / (1 - pow(beta1, step)));
    const float bc2_sqrt = (float)sqrt(1 - pow(beta2, step));
    const float c1 = (float)(1 - beta1), c2 = (float)(1 - beta2);
    const float b2 = (float)beta2, e = (float)eps;
    const int near_m = fabsf(c1) < 0.5f; /* lerp from exp_avg, else from the gradient */
    const float lerp_w = near_m ? c1 : c1 - 1.0f;
    const __m512 W = _mm512_set1_ps(lerp_w), B2 = _mm512_set1_ps(b2), C2 = _mm512_set1_ps(c2);
    const __m512 S = _mm512_set1_ps(bc2_sqrt), E = _mm512_set1_ps(e);
    const __m512 L = _mm512_set1_ps(-step_size);
    __m512 acc = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m512 g = gl ? load_bf16(gl + i) : _mm512_loadu_ps(gf + i);
        acc = _mm512_add_ps(acc, _mm512_mul_ps(g, g));
        const __m512 m0 = _mm512_loadu_ps(m + i);
        const __m512 a = _mm512_fmadd_ps(W, _mm512_sub_ps(g, m0), near_m ? m0 : g);
        const __m512 b = _mm512_fmadd_ps(_mm512_mul_ps(C2, g), g,
                                         _mm512_mul_ps(_mm512_loadu_ps(v + i), B2));
        _mm512_storeu_ps(m + i, a);
        _mm512_storeu_ps(v + i, b);
        const __m512 denom = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(b), S), E);
        const __m512 w = _mm512_add_ps(_mm512_loadu_ps(p + i),
                                       _mm512_div_ps(_mm512_mul_ps(L, a), denom));
        _mm512_storeu_ps(p + i, w);
        _mm256_storeu_si256((__m256i *)(wl + i), (__m256i)_mm512_cvtneps_pbh(w));
    }
    float sum = _mm512_reduce_add_ps(acc);
    /* The scalar tail, as torch's compiled one runs it: its first 8 elements (when there are
       8) by the compiler's 8-wide loop, exp_avg_sq as in the vector loop above; the rest one
       by one, exp_avg_sq's multiply-add fused the other way round. exp_avg and the weight
       come out the same either way. */
    const int64_t wide_end = n - i >= 8 ? i + 8 : i;
    for (; i < n; i++) {
        const float g = gl ? bf16_to_float(gl[i]) : gf[i];
        sum += g * g;
        const float a = near_m ? fmaf(c1, g - m[i], m[i]) : fmaf(-(g - m[i]), 1.0f - c1, g);
        const float b = i < wide_end ? fmaf(c2 * g, g, v[i] * b2) : fmaf(v[i], b2, c2 * g * g);
        m[i] = a;
        v[i] = b;
        const float denom = sqrtf(b) / bc2_sqrt + e;
        p[i] = p[i] - step_size * a / denom;
        wl[i] = float_to_bf16(p[i]);
    }
    return sum;
}

/* Work is cut into pieces of at most CHUNK elements (a multiple of 16) from the start of
   each member's slice, so that only a slice's last piece has a tail: what a piece computes,
   and the order its squared sums are added in, do not depend on the number of threads. */
#define CHUNK 16384

/* Add 1 to each distinct step count of the T tensors (tensors stepped together may share
   one), as torch's Adam does before its update. */
static void advance(int64_t T, const int64_t *ptrs) {
    for (int64_t t = 0; t < T; t++) {
        int seen = 0;
        for (int64_t u = 0; u < t && !seen; u++) seen = ptrs[7 * u + 6] == ptrs[7 * t + 6];
        if (!seen) *(float *)ptrs[7 * t + 6] += 1.0f;
    }
}

/* T stacked tensors of k members each, member j's slice at offset j * n[t] of every pointer.
   ptrs holds 7 addresses per tensor: weight, exp_avg, exp_avg_sq (fp32), gradient in bf16 or
   0, gradient in fp32 or 0, bf16 weight copy, step count (a float32 scalar, advanced here
   first). sums[t * k + j]: member j's sum of squared gradients of tensor t; norms[j * stride]:
   member j's gradient norm, the square root of its sums over the tensors added in order.
   Runs on the OpenMP threads of the process (torch's: this library is loaded after it and
   shares its libgomp). */
static void adam_all(int64_t T, int64_t k, const int64_t *ptrs, const int64_t *n, double lr,
                     double beta1, double beta2, double eps, float *sums);

void gankit_adam_bf16(int64_t T, int64_t k, const int64_t *ptrs, const int64_t *n,
                      double lr, double beta1, double beta2, double eps, float *sums,
                      float *norms, int64_t stride) {
    advance(T, ptrs);
    adam_all(T, k, ptrs, n, lr, beta1, beta2, eps, sums);
    for (int64_t j = 0; j < k; j++) {
        float s = 0.f;
        for (int64_t t = 0; t < T; t++) s += sums[t * k + j];
        norms[j * stride] = sqrtf(s);
    }
}

static void adam_all(int64_t T, int64_t k, const int64_t *ptrs, const int64_t *n, double lr,
                     double beta1, double beta2, double eps, float *sums) {
    int64_t items = 0;
    for (int64_t t = 0; t < T; t++) items += k * ((n[t] + CHUNK - 1) / CHUNK);
    int64_t *item_t = malloc(sizeof(int64_t) * 2 * (size_t)(items + 1));
    float *part = malloc(sizeof(float) * (size_t)(items + 1));
    if (!item_t || !part) { /* no memory for the plan: one piece per slice, in order */
        free(item_t); free(part);
        for (int64_t t = 0; t < T; t++) {
            const int64_t *q = ptrs + 7 * t;
            for (int64_t j = 0; j < k; j++) {
                const int64_t o = j * n[t];
                sums[t * k + j] = adam_one(
                    (float *)q[0] + o, (float *)q[1] + o, (float *)q[2] + o,
                    q[3] ? (const uint16_t *)q[3] + o : NULL,
                    q[4] ? (const float *)q[4] + o : NULL, (uint16_t *)q[5] + o, n[t],
                    *(const float *)q[6], lr, beta1, beta2, eps);
            }
        }
        return;
    }
    int64_t *item_off = item_t + items + 1;
    int64_t it = 0;
    for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < k; j++)
            for (int64_t c = 0; c < n[t]; c += CHUNK, it++) {
                item_t[it] = t;
                item_off[it] = j * n[t] + c;
            }
    #pragma omp parallel for schedule(static) if (items > 1)
    for (int64_t i = 0; i < items; i++) {
        const int64_t t = item_t[i], o = item_off[i];
        const int64_t len = (o % n[t]) + CHUNK < n[t] ? CHUNK : n[t] - o % n[t];
        const int64_t *q = ptrs + 7 * t;
        part[i] = adam_one(
            (float *)q[0] + o, (float *)q[1] + o, (float *)q[2] + o,
            q[3] ? (const uint16_t *)q[3] + o : NULL, q[4] ? (const float *)q[4] + o : NULL,
            (uint16_t *)q[5] + o, len, *(const float *)q[6], lr, beta1, beta2, eps);
    }
    it = 0;
    for (int64_t t = 0; t < T; t++)
        for (int64_t j = 0; j < k; j++) {
            float s = 0;
            for (int64_t c = 0; c < n[t]; c += CHUNK) s += part[it++];
            sums[t * k + j] = s;
        }
    free(item_t);
    free(part);
}
