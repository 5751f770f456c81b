/* C = act(A B + bias) as one oneDNN matmul primitive, made once for a shape, layout and type
 * and executed with new addresses at every call (gankit/native/onednn.py).
 *
 * torch reaches oneDNN through ideep, which builds the primitive's descriptors and looks it up
 * in a cache at every call: 25-40 us of a small bf16 GEMM's 30-50 (docs/speed.md). Here the
 * primitive and its memory objects are kept; a call sets four data handles and executes.
 * oneDNN (pip's onednn-cpu-gomp) runs on the OpenMP threads of the libgomp torch loaded.
 *
 * Each plan owns its scratchpad (oneDNN's user mode), so that two plans can run at once, one
 * per thread (`gankit_mm_run2`). */
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static dnnl_engine_t engine;
static dnnl_stream_t streams[2];  /* one per thread of gankit_mm_run2 */
static char error[256];

typedef struct {
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, bias, c, scratch;
    void *scratch_buf;
    int has_bias;
    /* a batched bias written into C's rows before the product is added (`gankit_mm_make`) */
    int64_t fill_nb, fill_m, fill_bytes, fill_batch_stride, fill_row_stride;
} plan_t;

const char *gankit_mm_error(void) { return error; }

static int failed(dnnl_status_t s, const char *what) {
    if (s == dnnl_success) return 0;
    snprintf(error, sizeof error, "oneDNN: %s failed (status %d)", what, (int)s);
    return 1;
}

#define TRY(call) do { if (failed((call), #call)) goto fail; } while (0)

static dnnl_data_type_t dtype(int code) { return code == 1 ? dnnl_bf16 : dnnl_f32; }

/* A (M, K), B (K, N) and C (M, N) with the given element strides, or with nb > 0 a batch
 * of nb of each (A (nb, M, K) ...; the strides of the batch axis first); types 0 f32, 1 bf16;
 * bias_type -1 for none, else a contiguous (N,) row (or (nb, N)) of that type; accumulate:
 * C's values added to the product before the activation (C = act(C + A B)), and with a batch
 * and a bias, the bias (C's type, C's rows contiguous) first written into each row of C: a
 * bias per batch member as oneDNN's bias took oneDNN 3.2 some 3,000x the product's time
 * (0.2 s for 4 x 64x138 -> 128 on one thread), and the sum post-op rounds the same; act 0 none,
 * 1 relu, 2 leaky relu (slope alpha), 3 tanh. Returns the plan, or NULL (gankit_mm_error
 * says why). */
void *gankit_mm_make(int64_t nb, int64_t M, int64_t K, int64_t N, const int64_t *as,
                     const int64_t *bs, const int64_t *cs, int a_type, int b_type, int c_type,
                     int bias_type, int accumulate, int act, float alpha) {
    plan_t *p = calloc(1, sizeof *p);
    dnnl_memory_desc_t amd = NULL, bmd = NULL, cmd = NULL, biasmd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t ops = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (!p) { snprintf(error, sizeof error, "out of memory"); return NULL; }
    if (!engine) {
        TRY(dnnl_engine_create(&engine, dnnl_cpu, 0));
        for (int i = 0; i < 2; i++)
            TRY(dnnl_stream_create(&streams[i], engine, dnnl_stream_default_flags));
    }
    int nd = nb > 0 ? 3 : 2, o = nb > 0;  /* o: where the matrix axes start */
    if (nb > 0 && accumulate && bias_type >= 0) {
        if (bias_type != c_type || cs[2] != 1) {
            snprintf(error, sizeof error, "a batched bias takes C's type and contiguous rows");
            free(p);
            return NULL;
        }
        p->fill_nb = nb;
        p->fill_m = M;
        p->fill_bytes = N * (c_type == 1 ? 2 : 4);
        p->fill_batch_stride = cs[0] * (c_type == 1 ? 2 : 4);
        p->fill_row_stride = cs[1] * (c_type == 1 ? 2 : 4);
        bias_type = -1;
    }
    dnnl_dims_t ad = {nb, M, K}, bd = {nb, K, N}, cd = {nb, M, N}, biasd = {nb, 1, N};
    dnnl_dims_t ast, bst, cst;
    for (int i = 0; i < nd; i++) { ast[i] = as[i]; bst[i] = bs[i]; cst[i] = cs[i]; }
    TRY(dnnl_memory_desc_create_with_strides(&amd, nd, ad + 1 - o, dtype(a_type), ast));
    TRY(dnnl_memory_desc_create_with_strides(&bmd, nd, bd + 1 - o, dtype(b_type), bst));
    TRY(dnnl_memory_desc_create_with_strides(&cmd, nd, cd + 1 - o, dtype(c_type), cst));
    if (bias_type >= 0)
        TRY(dnnl_memory_desc_create_with_tag(&biasmd, nd, biasd + 1 - o, dtype(bias_type),
                                             nb > 0 ? dnnl_abc : dnnl_ab));
    TRY(dnnl_primitive_attr_create(&attr));
    TRY(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    if (act || accumulate) {
        TRY(dnnl_post_ops_create(&ops));
        if (accumulate) TRY(dnnl_post_ops_append_sum(ops, 1.f, 0, dnnl_data_type_undef));
        if (act) {
            dnnl_alg_kind_t alg = act == 3 ? dnnl_eltwise_tanh : dnnl_eltwise_relu;
            TRY(dnnl_post_ops_append_eltwise(ops, alg, act == 2 ? alpha : 0.f, 0.f));
        }
        TRY(dnnl_primitive_attr_set_post_ops(attr, ops));
    }
    TRY(dnnl_matmul_primitive_desc_create(&pd, engine, amd, bmd, biasmd, cmd, attr));
    TRY(dnnl_primitive_create(&p->prim, pd));
    const_dnnl_memory_desc_t smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t scratch_bytes = smd ? dnnl_memory_desc_get_size(smd) : 0;
    if (scratch_bytes) {
        p->scratch_buf = aligned_alloc(64, (scratch_bytes + 63) / 64 * 64);
        if (!p->scratch_buf) { snprintf(error, sizeof error, "out of memory"); goto fail; }
        TRY(dnnl_memory_create(&p->scratch, smd, engine, p->scratch_buf));
    }
    TRY(dnnl_memory_create(&p->a, amd, engine, DNNL_MEMORY_NONE));
    TRY(dnnl_memory_create(&p->b, bmd, engine, DNNL_MEMORY_NONE));
    TRY(dnnl_memory_create(&p->c, cmd, engine, DNNL_MEMORY_NONE));
    if (biasmd) TRY(dnnl_memory_create(&p->bias, biasmd, engine, DNNL_MEMORY_NONE));
    p->has_bias = biasmd != NULL;
    goto done;
fail:
    if (p->prim) dnnl_primitive_destroy(p->prim);
    free(p->scratch_buf);
    free(p);
    p = NULL;
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (ops) dnnl_post_ops_destroy(ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (amd) dnnl_memory_desc_destroy(amd);
    if (bmd) dnnl_memory_desc_destroy(bmd);
    if (cmd) dnnl_memory_desc_destroy(cmd);
    if (biasmd) dnnl_memory_desc_destroy(biasmd);
    return p;
}

/* The plan's implementation (e.g. "brg:avx512_core_amx"), for the benchmark's header. */
const char *gankit_mm_impl(void *plan) {
    plan_t *p = plan;
    const_dnnl_primitive_desc_t pd;
    const char *impl = "?";
    if (dnnl_primitive_get_primitive_desc(p->prim, &pd) == dnnl_success)
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    return impl;
}

static int run_on(dnnl_stream_t stream, plan_t *p, void *a, void *b, void *bias, void *c) {
    for (int64_t j = 0; j < p->fill_nb; j++)
        for (int64_t r = 0; r < p->fill_m; r++)
            memcpy((char *)c + j * p->fill_batch_stride + r * p->fill_row_stride,
                   (const char *)bias + j * p->fill_bytes, (size_t)p->fill_bytes);
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, p->a}, {DNNL_ARG_WEIGHTS, p->b},
                               {DNNL_ARG_DST, p->c}};
    int nargs = 3;
    if (p->scratch) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, p->scratch};
    if (p->has_bias) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, p->bias};
    if (failed(dnnl_memory_set_data_handle(p->a, a), "setting A") ||
        failed(dnnl_memory_set_data_handle(p->b, b), "setting B") ||
        failed(dnnl_memory_set_data_handle(p->c, c), "setting C") ||
        (p->has_bias && failed(dnnl_memory_set_data_handle(p->bias, bias), "setting the bias")))
        return 1;
    if (failed(dnnl_primitive_execute(p->prim, stream, nargs, args), "execute"))
        return 1;
    return failed(dnnl_stream_wait(stream), "wait");
}

/* Execute a plan on these addresses; 0, or 1 (gankit_mm_error says why). */
int gankit_mm_run(void *plan, void *a, void *b, void *bias, void *c) {
    return run_on(streams[0], plan, a, b, bias, c);
}

/* Two independent products at once, one per OpenMP thread, each plan run by its thread alone
 * (oneDNN runs a primitive called inside a parallel region on the calling thread): for the
 * step's small GEMMs two threads on one product were barely faster than one (oneDNN 3.2,
 * the Intel Xeon with AMX, docs/speed.md), where two products side by side take about what
 * one takes alone. The plans are made for one thread and must be two different plans (each
 * holds its operands' memory objects); in sequence where one thread is all there is. */
int gankit_mm_run2(void *p1, void *a1, void *b1, void *bias1, void *c1,
                   void *p2, void *a2, void *b2, void *bias2, void *c2) {
    int r[2] = {0, 0};
    #pragma omp parallel num_threads(2)
    {
        const int t = omp_get_thread_num();
        if (omp_get_num_threads() < 2)  /* one thread here (or already inside a region) */
            r[0] = run_on(streams[0], p1, a1, b1, bias1, c1)
                   || run_on(streams[0], p2, a2, b2, bias2, c2);
        else if (t == 0)
            r[0] = run_on(streams[0], p1, a1, b1, bias1, c1);
        else
            r[1] = run_on(streams[1], p2, a2, b2, bias2, c2);
    }
    return r[0] || r[1];
}
