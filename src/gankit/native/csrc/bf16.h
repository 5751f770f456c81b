/* bf16 <-> float as torch converts them, for the kernels written in plain C (mlp_parts.c,
   col2im.c): a bf16 is a float's upper 16 bits; a float rounds to the nearest even bf16, NaN
   to torch's quiet NaN. native/build.py hashes this file into every kernel's build key. */
#ifndef GANKIT_BF16_H
#define GANKIT_BF16_H
#include <stdint.h>

typedef union { uint32_t u; float f; } bits;

#define INLINE static inline __attribute__((always_inline))

INLINE float bf2f(uint16_t v) { bits c; c.u = (uint32_t)v << 16; return c.f; }

INLINE uint16_t f2bf(float f) {
    bits c; c.f = f;
    const uint32_t r = (c.u + 0x7fffu + ((c.u >> 16) & 1u)) >> 16;
    return (c.u & 0x7fffffffu) > 0x7f800000u ? 0x7fc0 : (uint16_t)r;
}
#endif
