/* An elementwise function of bf16 values through a table of its 65,536 results
   (gankit/native/build.py builds it, native/table.py fills the table and calls it).

   y[i] = table[x[i]]: 16 values at a time by a gather of 32-bit words at 2-byte steps (the
   table holds one spare entry, so the last word read stays inside it), keeping the low half
   of each. The table is filled by torch's own function, so the results are torch's bit for
   bit. Fixed pieces on torch's OpenMP threads. */
#include <immintrin.h>
#include <stdint.h>

#define PIECE 16384

void gankit_table_bf16(int64_t n, const uint16_t *x, uint16_t *y, const uint16_t *table) {
    const int64_t pieces = (n + PIECE - 1) / PIECE;
#pragma omp parallel for schedule(static) if (pieces > 1)
    for (int64_t q = 0; q < pieces; q++) {
        const int64_t end = (q + 1) * PIECE < n ? (q + 1) * PIECE : n;
        int64_t i = q * PIECE;
        for (; i + 16 <= end; i += 16) {
            const __m512i idx = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(x + i)));
            const __m512i w = _mm512_i32gather_epi32(idx, (const void *)table, 2);
            _mm256_storeu_si256((__m256i *)(y + i), _mm512_cvtepi32_epi16(w));
        }
        for (; i < end; i++) y[i] = table[x[i]];
    }
}
