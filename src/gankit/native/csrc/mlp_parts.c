/* The fused MLP step's small elementwise work in C (gankit/native/build.py builds it,
   native/mlp_parts.py calls it, training/mlp_step.py uses it).

   Between its GEMMs report 000's MLP step ran some 40 small torch operations on 64-256-row
   tensors (the one-logit head, the BCE loss and its statistics, each activation's backward
   and bias gradient, the label embedding's gradient), each costing more in dispatch than in
   arithmetic. Here each group is one call:
   - gankit_head_d: D's head on [real; fake] features, the BCE loss's statistics, the
     logits' gradient, the head's weight and bias gradients, and the gradient back through
     the last hidden layer's dropout and activation (and that layer's bias gradient);
   - gankit_head_g: the same for the G step on the fake half (G's loss, no head gradients);
   - gankit_act_bwd: a layer's dropout and activation backward (in place or into a contiguous
     buffer), and its bias gradient;
   - gankit_embed_grad: a label embedding's gradient through the first Linear's columns;
   - gankit_g_input, gankit_d_input: G's input [z | label vector] and D's input
     [real; fake] | label vector, in the activation type;
   - gankit_run: a recorded sequence of these calls and of kept GEMMs (native/program.py).
   Activations, masks, and the gradients the GEMMs read are fp32 or bf16 (`bf`); the head,
   the logits and the loss in fp32, as the torch path computes them. Each bf16 result is
   rounded where torch's operation rounds it (round to nearest even). K members
   (the ensemble's stacked runs) are computed one after another, each with its own strides.
   Plain C written for the compiler's vectoriser (every inner loop branch-free over one row,
   the type and the activation fixed per instantiation), built for AVX-512 like the other
   kernels: where the rows went element by element the calls took 10x torch's operations. */
#pragma GCC optimize("O3")
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bf16.h"

INLINE float ld(const void *p, int64_t i, int bf) {
    return bf ? bf2f(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

INLINE void st(void *p, int64_t i, float v, int bf) {
    if (bf) ((uint16_t *)p)[i] = f2bf(v);
    else ((float *)p)[i] = v;
}

/* v rounded to the activation type (what a torch operation in that type stores) */
INLINE float rnd(float v, int bf) { return bf ? bf2f(f2bf(v)) : v; }

enum { ACT_NONE = 0, ACT_RELU = 1, ACT_LRELU = 2, ACT_TANH = 3 };

/* The gradient through an activation from its output y (torch's threshold_backward,
   leaky_relu_backward with the result, tanh_backward). */
INLINE float act_bwd(float g, float y, int act) {
    if (act == ACT_RELU) return y > 0.f ? g : 0.f;
    if (act == ACT_LRELU) return y > 0.f ? g : g * 0.2f;
    if (act == ACT_TANH) return g * fmaf(-y, y, 1.f);  /* torch: 1 - y^2 by one fused op */
    return g;
}

/* f(..., bf, act) with the type and the activation as constants (one instantiation each) */
#define BY_TYPE_AND_ACT(f, bf, act, ...) do {                                                 \
    if (bf) switch (act) {                                                                   \
        case ACT_RELU: f(__VA_ARGS__, 1, ACT_RELU); break;                                    \
        case ACT_LRELU: f(__VA_ARGS__, 1, ACT_LRELU); break;                                  \
        case ACT_TANH: f(__VA_ARGS__, 1, ACT_TANH); break;                                    \
        default: f(__VA_ARGS__, 1, ACT_NONE); }                                               \
    else switch (act) {                                                                      \
        case ACT_RELU: f(__VA_ARGS__, 0, ACT_RELU); break;                                    \
        case ACT_LRELU: f(__VA_ARGS__, 0, ACT_LRELU); break;                                  \
        case ACT_TANH: f(__VA_ARGS__, 0, ACT_TANH); break;                                    \
        default: f(__VA_ARGS__, 0, ACT_NONE); }                                               \
} while (0)

static inline float softplus(float x) { return x > 20.f ? x : log1pf(expf(x)); }
static inline float sigmoid(float x) { return 1.f / (1.f + expf(-x)); }

/* One row of a layer's backward: g (n, fp32 values of the activation type) times the dropout
   mask (or none), then through the activation from its output y, each rounded as torch's
   operation rounds it; stored into out and added to the bias gradient's sums acc (or none). */
INLINE void row_bwd(int64_t n, float *g, const void *mask, const void *y, void *out,
                    float *acc, int bf, int act) {
    if (mask)
        for (int64_t j = 0; j < n; j++) g[j] = rnd(g[j] * ld(mask, j, bf), bf);
    for (int64_t j = 0; j < n; j++) g[j] = rnd(act_bwd(g[j], ld(y, j, bf), act), bf);
    for (int64_t j = 0; j < n; j++) st(out, j, g[j], bf);
    if (acc)
        for (int64_t j = 0; j < n; j++) acc[j] += g[j];
}

/* logits l[r] = h[r] . w + b for `rows` rows of n features (fp32 sums in 16 lanes) */
INLINE void logits(int64_t rows, int64_t n, const void *h, const float *w, float b, float *l,
                   int bf) {
    for (int64_t r = 0; r < rows; r++) {
        float s[16] = {0.f};
        int64_t j = 0;
        for (; j + 16 <= n; j += 16)
            for (int t = 0; t < 16; t++) s[t] += ld(h, r * n + j + t, bf) * w[j + t];
        float sum = 0.f;
        for (int t = 0; t < 16; t++) sum += s[t];
        for (; j < n; j++) sum += ld(h, r * n + j, bf) * w[j];
        l[r] = sum + b;
    }
}

/* Back through the head and the last hidden layer: row r's gradient round(round(dl[r]) *
   wd[j]) (dl cast to the activation type, as the torch path casts it), then row_bwd into dh;
   the bias gradient db = the rows' sum (or none). g: n floats of scratch, acc: n more. */
INLINE void back_head(int64_t rows, int64_t n, const float *dl, const void *wd, const void *y,
                      const void *mask, void *dh, void *db, float *g, float *acc, int bf,
                      int act) {
    const size_t es = bf ? 2 : 4;
    if (db) memset(acc, 0, n * sizeof(float));
    for (int64_t r = 0; r < rows; r++) {
        const float d = rnd(dl[r], bf);
        for (int64_t j = 0; j < n; j++) g[j] = rnd(d * ld(wd, j, bf), bf);
        row_bwd(n, g, mask ? (const char *)mask + r * n * es : NULL,
                (const char *)y + r * n * es, (char *)dh + r * n * es, db ? acc : NULL, bf, act);
    }
    if (db)
        for (int64_t j = 0; j < n; j++) st(db, j, acc[j], bf);
}

INLINE void head_d(int64_t K, int64_t b, int64_t n, const void *h, const float *w,
                   const float *bias, const void *wd, const void *mask, float t_real,
                   float scale, float *l, float *stats, int64_t stats_stride, float *gw,
                   float *gb, void *dh, void *db, int bf, int act) {
    const int64_t rows = 2 * b;
    const size_t es = bf ? 2 : 4;
    float *scratch = malloc((2 * n + rows) * sizeof(float));
    float *g = scratch, *acc = scratch + n, *dl = scratch + 2 * n;
    for (int64_t k = 0; k < K; k++) {
        const char *hk = (const char *)h + k * rows * n * es;
        float *lk = l + k * rows;
        logits(rows, n, hk, w + k * n, bias[k], lk, bf);
        /* BCE with targets t_real (real half) and 0 (fake half): the loss's sum scaled, each
           half's mean sigmoid and share of logits on its side; dL/dl = (sigmoid(l) - t) * scale */
        float loss = 0.f, sig_r = 0.f, sig_f = 0.f, right_r = 0.f, right_f = 0.f;
        for (int64_t r = 0; r < rows; r++) {
            const float x = lk[r], t = r < b ? t_real : 0.f, s = sigmoid(x);
            loss += softplus(x) - t * x;
            if (r < b) { sig_r += s; right_r += x > 0.f; }
            else { sig_f += s; right_f += x < 0.f; }
            dl[r] = (s - t) * scale;
        }
        float *sk = stats + k * stats_stride;
        sk[0] = loss * scale;
        sk[1] = sig_r / b; sk[2] = sig_f / b; sk[3] = right_r / b; sk[4] = right_f / b;
        float *gwk = gw + k * n, gbk = 0.f;
        memset(gwk, 0, n * sizeof(float));
        for (int64_t r = 0; r < rows; r++) {
            gbk += dl[r];
            for (int64_t j = 0; j < n; j++) gwk[j] += dl[r] * ld(hk, r * n + j, bf);
        }
        gb[k] = gbk;
        back_head(rows, n, dl, (const char *)wd + k * n * es, hk,
                  mask ? (const char *)mask + k * rows * n * es : NULL,
                  (char *)dh + k * rows * n * es, db ? (char *)db + k * n * es : NULL, g, acc,
                  bf, act);
    }
    free(scratch);
}

/* D's step from its last hidden layer's features h (K, 2b, n) of [real; fake]: logits l
   (K, 2b), stats (K, >= 5 at stats_stride: the loss, mean sigmoid real/fake, share of
   real/fake called right), the head's gradients gw (K, n) and gb (K), and dh (K, 2b, n) = the
   gradient of that layer's Linear output, with its bias gradient db (K, n; or NULL).
   scale: d_scale / b. */
void gankit_head_d(int64_t K, int64_t b, int64_t n, int bf, const void *h, const float *w,
                   const float *bias, const void *wd, const void *mask, int act, float t_real,
                   float scale, float *l, float *stats, int64_t stats_stride, float *gw,
                   float *gb, void *dh, void *db) {
    BY_TYPE_AND_ACT(head_d, bf, act, K, b, n, h, w, bias, wd, mask, t_real, scale, l, stats,
                    stats_stride, gw, gb, dh, db);
}

INLINE void head_g(int64_t K, int64_t b, int64_t n, const void *h, const float *w,
                   const float *bias, const void *wd, const void *mask, int minimax, float *l,
                   int64_t l_stride, float *loss, int64_t loss_stride, void *dh, int bf,
                   int act) {
    const size_t es = bf ? 2 : 4;
    float *scratch = malloc((n + b) * sizeof(float));
    float *g = scratch, *dl = scratch + n;
    for (int64_t k = 0; k < K; k++) {
        const char *hk = (const char *)h + k * b * n * es;
        float *lk = l + k * l_stride;
        logits(b, n, hk, w + k * n, bias[k], lk, bf);
        float sum = 0.f;
        for (int64_t r = 0; r < b; r++) {
            const float x = lk[r], s = sigmoid(x);
            if (minimax) {  /* -mean softplus(l); d/dl = -sigmoid(l) / b */
                sum += softplus(x);
                dl[r] = s * (-1.f / b);
            } else {        /* mean softplus(-l); d/dl = (sigmoid(l) - 1) / b */
                sum += softplus(-x);
                dl[r] = (s - 1.f) * (1.f / b);
            }
        }
        loss[k * loss_stride] = minimax ? -(sum / b) : sum / b;
        back_head(b, n, dl, (const char *)wd + k * n * es, hk,
                  mask ? (const char *)mask + k * b * n * es : NULL,
                  (char *)dh + k * b * n * es, NULL, g, NULL, bf, act);
    }
    free(scratch);
}

/* The G step's D on the fake half: features h (K, b, n) -> logits into l (member stride
   l_stride), G's loss into loss (member stride loss_stride; minimax or nonsaturating), and dh
   (K, b, n) = the gradient of the last hidden layer's Linear output. */
void gankit_head_g(int64_t K, int64_t b, int64_t n, int bf, const void *h, const float *w,
                   const float *bias, const void *wd, const void *mask, int act, int minimax,
                   float *l, int64_t l_stride, float *loss, int64_t loss_stride, void *dh) {
    BY_TYPE_AND_ACT(head_g, bf, act, K, b, n, h, w, bias, wd, mask, minimax, l, l_stride, loss,
                    loss_stride, dh);
}

INLINE void layer_bwd(int64_t K, int64_t rows, int64_t n, void *dh, int64_t dh_k,
                      int64_t dh_r, const void *y, const void *mask, void *db, void *out,
                      int bf, int act) {
    const size_t es = bf ? 2 : 4;
    float *scratch = malloc(2 * n * sizeof(float));
    float *g = scratch, *acc = db ? scratch + n : NULL;
    for (int64_t k = 0; k < K; k++) {
        char *dk = (char *)dh + k * dh_k * es;
        char *ok = out ? (char *)out + k * rows * n * es : NULL;
        const char *yk = (const char *)y + k * rows * n * es;
        const char *mk = mask ? (const char *)mask + k * rows * n * es : NULL;
        if (acc) memset(acc, 0, n * sizeof(float));
        for (int64_t r = 0; r < rows; r++) {
            char *row = dk + r * dh_r * es;
            for (int64_t j = 0; j < n; j++) g[j] = ld(row, j, bf);
            row_bwd(n, g, mk ? mk + r * n * es : NULL, yk + r * n * es,
                    ok ? ok + r * n * es : row, acc, bf, act);
        }
        if (acc)
            for (int64_t j = 0; j < n; j++) st((char *)db + k * n * es, j, acc[j], bf);
    }
    free(scratch);
}

/* A layer's backward before its GEMMs: dh (K members at dh_k elements apart, rows at dh_r)
   times the dropout mask (K, rows, n; or NULL), through the activation from its output y
   (K, rows, n), in place, or into out (K, rows, n), contiguous, when not NULL (the GEMMs
   after it then read contiguous rows); the bias gradient db (K, n) = the rows' sum (or
   NULL). */
void gankit_act_bwd(int64_t K, int64_t rows, int64_t n, int bf, void *dh, int64_t dh_k,
                    int64_t dh_r, const void *y, const void *mask, int act, void *db,
                    void *out) {
    BY_TYPE_AND_ACT(layer_bwd, bf, act, K, rows, n, dh, dh_k, dh_r, y, mask, db, out);
}

INLINE void embed_grad(int64_t K, int64_t rows, int64_t out, int64_t E, int64_t C,
                       const void *dh, const int64_t *y, const void *w, int64_t w_k,
                       int64_t w_r, float *g, int bf) {
    const size_t es = bf ? 2 : 4;
    float *per = malloc(C * out * sizeof(float));
    for (int64_t k = 0; k < K; k++) {
        const char *dk = (const char *)dh + k * rows * out * es;
        const char *wk = (const char *)w + k * w_k * es;
        memset(per, 0, C * out * sizeof(float));
        for (int64_t r = 0; r < rows; r++) {
            const int64_t c = y[k * rows + r];
            if (c < 0 || c >= C) continue;  /* refused before, by the step's lookup */
            float *p = per + c * out;
            for (int64_t o = 0; o < out; o++) p[o] += ld(dk, r * out + o, bf);
        }
        float *gk = g + k * C * E;
        memset(gk, 0, C * E * sizeof(float));
        for (int64_t c = 0; c < C; c++)
            for (int64_t o = 0; o < out; o++) {
                const float v = per[c * out + o];
                for (int64_t e = 0; e < E; e++) gk[c * E + e] += v * ld(wk, o * w_r + e, bf);
            }
    }
    free(per);
}

/* A label embedding's gradient g (K, C, E) fp32: the first Linear's output gradient dh
   (K, rows, out) summed per class of y (K, rows), times the weight's columns that read the
   embedding, w (out, E per member: members w_k elements apart, rows w_r apart). */
void gankit_embed_grad(int64_t K, int64_t rows, int64_t out, int64_t E, int64_t C, int bf,
                       const void *dh, const int64_t *y, const void *w, int64_t w_k,
                       int64_t w_r, float *g) {
    if (bf) embed_grad(K, rows, out, E, C, dh, y, w, w_k, w_r, g, 1);
    else embed_grad(K, rows, out, E, C, dh, y, w, w_k, w_r, g, 0);
}

/* Row r of a label's vector (E values) into out at column offset: row y of member k's
   embedding table (fp32, C x E), or the one-hot vector of y when table is NULL. */
INLINE void label_row(int64_t E, int64_t C, int64_t k, int64_t y, const float *table, void *out,
                      int64_t at, int bf) {
    if (table)
        for (int64_t e = 0; e < E; e++) st(out, at + e, table[(k * C + y) * E + e], bf);
    else
        for (int64_t e = 0; e < E; e++) st(out, at + e, e == y ? 1.f : 0.f, bf);
}

/* 1 when some label of y (K x rows) is outside [0, C), else 0 */
static int bad_labels(int64_t n, const int64_t *y, int64_t C) {
    for (int64_t i = 0; i < n; i++)
        if (y[i] < 0 || y[i] >= C) return 1;
    return 0;
}

INLINE void g_input(int64_t K, int64_t b, int64_t nz, int64_t E, int64_t C, const float *z,
                    const int64_t *y, const float *table, void *xg, int bf) {
    const int64_t w = nz + E;
    for (int64_t k = 0; k < K; k++)
        for (int64_t r = 0; r < b; r++) {
            const int64_t row = (k * b + r) * w;
            const float *zr = z + (k * b + r) * nz;
            for (int64_t j = 0; j < nz; j++) st(xg, row + j, zr[j], bf);
            if (E) label_row(E, C, k, y[k * b + r], table, xg, row + nz, bf);
        }
}

/* G's input xg (K, b, nz + E): the noise z (K, b, nz; fp32) and each row's label vector (an
   embedding row of table (K, C, E), or one-hot with table NULL; E = 0: none). Returns 1, and
   writes nothing, when a label is outside [0, C). */
int gankit_g_input(int64_t K, int64_t b, int64_t nz, int64_t E, int64_t C, int bf,
                   const float *z, const int64_t *y, const float *table, void *xg) {
    if (E && bad_labels(K * b, y, C)) return 1;
    if (bf) g_input(K, b, nz, E, C, z, y, table, xg, 1);
    else g_input(K, b, nz, E, C, z, y, table, xg, 0);
    return 0;
}

INLINE void d_input(int64_t K, int64_t b, int64_t img, int64_t E, int64_t C, const float *x,
                    const void *fake, const int64_t *y, const float *table, void *xd,
                    int64_t *y2, int bf) {
    const int64_t w = img + E;
    for (int64_t k = 0; k < K; k++)
        for (int64_t r = 0; r < 2 * b; r++) {
            const int64_t row = (k * 2 * b + r) * w, src = (k * b + r % b) * img;
            if (r < b)
                for (int64_t j = 0; j < img; j++) st(xd, row + j, x[src + j], bf);
            else
                for (int64_t j = 0; j < img; j++) st(xd, row + j, ld(fake, src + j, bf), bf);
            if (E) {
                const int64_t c = y[k * b + r % b];
                y2[k * 2 * b + r] = c;
                label_row(E, C, k, c, table, xd, row + img, bf);
            }
        }
}

/* D's input xd (K, 2b, img + E): the real images x (K, b, img; fp32) over G's output fake
   (K, b, img; the activation type), each row followed by its label vector (an embedding row
   of table (K, C, E), or one-hot with table NULL; E = 0: none), and y2 (K, 2b) = [y; y].
   Returns 1, and writes nothing, when a label is outside [0, C). */
int gankit_d_input(int64_t K, int64_t b, int64_t img, int64_t E, int64_t C, int bf,
                   const float *x, const void *fake, const int64_t *y, const float *table,
                   void *xd, int64_t *y2) {
    if (E && bad_labels(K * b, y, C)) return 1;
    if (bf) d_input(K, b, img, E, C, x, fake, y, table, xd, y2, 1);
    else d_input(K, b, img, E, C, x, fake, y, table, xd, y2, 0);
    return 0;
}

/* ---- a recorded program (native/program.py) ------------------------------------------ */

enum { OP_MM = 1, OP_HEAD_D, OP_HEAD_G, OP_ACT_BWD, OP_EMBED_GRAD, OP_G_INPUT, OP_D_INPUT, OP_MM2 };
static const int64_t NARGS[] = {0, 6, 19, 16, 12, 12, 10, 12, 11};

typedef int (*mm_run_fn)(void *, void *, void *, void *, void *);
typedef int (*mm_run2_fn)(void *, void *, void *, void *, void *, void *, void *, void *,
                          void *, void *);

static inline float f32(int64_t w) { bits c; c.u = (uint32_t)w; return c.f; }

#define P(i) ((void *)a[i])

/* Run n words of recorded calls: per call its operation code, its number of arguments and the
   arguments (addresses and integers, floats as float32 bits; OP_MM: the address of
   native/onednn.py's gankit_mm_run, then its arguments; OP_MM2: the same of gankit_mm_run2).
   Returns 0; 1 when a GEMM failed (gankit_mm_error says why), 2 for a malformed program, 3
   for a label outside the classes. */
int gankit_run(int64_t n, const int64_t *w) {
    for (int64_t i = 0; i < n;) {
        const int64_t op = w[i], na = w[i + 1], *a = w + i + 2;
        if (op < OP_MM || op > OP_MM2 || na != NARGS[op] || i + 2 + na > n) return 2;
        switch (op) {
        case OP_MM:
            if (((mm_run_fn)a[0])(P(1), P(2), P(3), P(4), P(5))) return 1;
            break;
        case OP_MM2:
            if (((mm_run2_fn)a[0])(P(1), P(2), P(3), P(4), P(5), P(6), P(7), P(8), P(9), P(10)))
                return 1;
            break;
        case OP_HEAD_D:
            gankit_head_d(a[0], a[1], a[2], (int)a[3], P(4), P(5), P(6), P(7), P(8), (int)a[9],
                          f32(a[10]), f32(a[11]), P(12), P(13), a[14], P(15), P(16), P(17),
                          P(18));
            break;
        case OP_HEAD_G:
            gankit_head_g(a[0], a[1], a[2], (int)a[3], P(4), P(5), P(6), P(7), P(8), (int)a[9],
                          (int)a[10], P(11), a[12], P(13), a[14], P(15));
            break;
        case OP_ACT_BWD:
            gankit_act_bwd(a[0], a[1], a[2], (int)a[3], P(4), a[5], a[6], P(7), P(8), (int)a[9],
                           P(10), P(11));
            break;
        case OP_EMBED_GRAD:
            gankit_embed_grad(a[0], a[1], a[2], a[3], a[4], (int)a[5], P(6), P(7), P(8), a[9],
                              a[10], P(11));
            break;
        case OP_G_INPUT:
            if (gankit_g_input(a[0], a[1], a[2], a[3], a[4], (int)a[5], P(6), P(7), P(8), P(9)))
                return 3;
            break;
        case OP_D_INPUT:
            if (gankit_d_input(a[0], a[1], a[2], a[3], a[4], (int)a[5], P(6), P(7), P(8), P(9),
                               P(10), P(11)))
                return 3;
            break;
        }
        i += 2 + na;
    }
    return 0;
}
