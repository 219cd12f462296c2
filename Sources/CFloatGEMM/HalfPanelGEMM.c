// The panel kernel's products in half precision, on CPUs with AVX512-FP16 (see
// CFloatGEMM.h, `SYNTHD_PANEL_AVX512_FP16`).
//
// Why: Intel's server cores issue two 512-bit FMAs a cycle whether their lanes are 16 floats or
// 32 halves, so half-precision products do twice the multiply-adds of Float ones. Where the VM
// hides AMX, this is the one way to train faster than Float on these cores: their AVX512-BF16
// dot products only tie with two Float FMAs and then pay for their packing
// (docs/performance.md).
//
// The operands arrive as the Float kernel takes them (tiles of 12 rows, panels of 16 columns)
// and are converted here, a depth block at a time, with a power of two per block of each
// (a tile's rows, a group's 64 columns) that puts the block's largest magnitude just below 16:
// products then stay below 256 and a run of 64 of them below half's 65504, and small values keep
// half's 11 significant bits far below where bfloat16's 8 would have lost them. Half sums run
// over 64 depths, then go into Float sums, scaled back: the rounding is that of 11-bit operands
// and 64-term half sums, smaller than bfloat16's operands'.

#include "CFloatGEMM.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum {
    PANEL = 16,                     // columns of the Float kernel's packed panel
    TILE = SYNTHD_PANEL_TILE_ROWS,  // rows of its packed tile, and of a micro-tile here
    GROUP = 64,                     // columns of a micro-tile: two registers of 32 halves
    HALF_RUN = 64,                  // depths summed in half precision before the Float sum
    A_DEPTH = 512,                  // depths of a block of tiles converted at a time
    A_BLOCK_BYTES = 512 * 1024,     // at most this much of them (L2), so that b's groups are converted once a block
    B_DEPTH = 128,                  // depths of a group converted at a time (16 KiB: L1)
};

size_t synthd_half_panel_halves_count(int m, int k) {
    return (size_t)((m + TILE - 1) / TILE) * TILE * (size_t)k;
}

size_t synthd_half_panel_scales_count(int m, int k) {
    return (size_t)((m + TILE - 1) / TILE) * (size_t)((k + A_DEPTH - 1) / A_DEPTH);
}

#if defined(__x86_64__)
#include <immintrin.h>

#define HALF_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512fp16")))

bool synthd_half_panel_available(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512fp16");
}

/// The power of two that brings `largest` just below 16 (1 for zero, or for values whose
/// largest is not finite: an infinity or NaN then reaches the sums as it would in Float).
/// Clamped so that the product of two scales stays a normal float.
static float scale_for(float largest) {
    if (!(largest > 0) || !isfinite(largest)) return 1;
    int exponent;
    frexpf(largest, &exponent);   // largest < 2^exponent
    int shift = 4 - exponent;
    if (shift > 60) shift = 60;
    if (shift < -60) shift = -60;
    return ldexpf(1, shift);
}

/// Whether `scale` serves a block whose largest magnitude is `largest`: it brings it into
/// [4, 16), at most two binades short of `scale_for`'s [8, 16) (values down to 1.5e-5 of the
/// largest stay normal halves, 3.8e-6 at best); a block of zeros takes any. A block's scale is
/// then usually its neighbour's, found in the pass that converts it, not in a pass before.
static bool scale_serves(float scale, float largest) {
    float scaled = largest * scale;
    return largest == 0 || (scaled >= 4 && scaled < 16);
}

HALF_TARGET static inline float largest_magnitude(const float *values, size_t count) {
    __m512 largest = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 16 <= count; i += 16) largest = _mm512_max_ps(largest, _mm512_abs_ps(_mm512_loadu_ps(values + i)));
    if (i < count) {
        __mmask16 rest = (__mmask16)((1u << (count - i)) - 1);
        largest = _mm512_max_ps(largest, _mm512_abs_ps(_mm512_maskz_loadu_ps(rest, values + i)));
    }
    return _mm512_reduce_max_ps(largest);
}

/// 16 floats times `scale` as halves, each one repeated in both halves of a 32-bit lane: a
/// micro-tile then broadcasts a row's half with a plain 32-bit broadcast from memory, a load,
/// where a 16-bit broadcast also takes a shuffle port from the FMAs (1.3x Float where 1.8x was
/// possible, on an Emerald Rapids).
HALF_TARGET static inline __m512i doubled_halves(__m512 values, __m512 scale) {
    __m256i halves = _mm256_castph_si256(_mm512_cvtxps_ph(_mm512_mul_ps(values, scale)));
    __m512i lanes = _mm512_cvtepu16_epi32(halves);
    return _mm512_or_si512(lanes, _mm512_slli_epi32(lanes, 16));
}

/// One tile's depths (depth x 12 floats, contiguous) as doubled halves times `scale`;
/// returns the largest magnitude met.
HALF_TARGET static float convert_tile_run(const float *from, int depth, uint32_t *out, float scale) {
    __m512 factor = _mm512_set1_ps(scale), largest = _mm512_setzero_ps();
    for (int i = 0; i < depth; i++) {
        __m512 values = _mm512_maskz_loadu_ps(0x0FFF, from + (size_t)i * TILE);
        largest = _mm512_max_ps(largest, _mm512_abs_ps(values));
        _mm512_mask_storeu_epi32(out + (size_t)i * TILE, 0x0FFF, doubled_halves(values, factor));
    }
    return _mm512_reduce_max_ps(largest);
}

/// Tiles first..<first+count of a's depths k0..<k0+depth as doubled halves, [tile][depth][row],
/// one scale per tile. a in tiles (`synthd_panel_pack_a`, row stride 1, depth stride 12, tile
/// stride 12 k) or rows (row stride lda, depth stride 1).
HALF_TARGET static void convert_tiles(const float *a, bool tiles, int lda, int m, int k, int k0, int depth, int first,
                                      int count, uint32_t *to, float *scales, float *guess) {
    for (int t = 0; t < count; t++) {
        int tile = first + t, rows = m - tile * TILE < TILE ? m - tile * TILE : TILE;
        uint32_t *out = to + (size_t)t * depth * TILE;
        if (tiles) {
            const float *from = a + (size_t)tile * TILE * k + (size_t)k0 * TILE;   // depth x 12, contiguous
            // One pass with the last tile's scale, finding this one's largest value on the way;
            // a second only where that scale does not serve (as `convert_group`).
            float biggest = convert_tile_run(from, depth, out, *guess);
            if (!scale_serves(*guess, biggest)) {
                *guess = scale_for(biggest);
                convert_tile_run(from, depth, out, *guess);
            }
            scales[t] = *guess;
            continue;
        }
        float largest = 0;
        for (int r = 0; r < rows; r++) {
            float row = largest_magnitude(a + (size_t)(tile * TILE + r) * lda + k0, (size_t)depth);
            largest = row > largest || row != row ? row : largest;
        }
        float scale = scales[t] = scale_for(largest);
        for (int i = 0; i < depth; i++)
            for (int r = 0; r < TILE; r++) {
                _Float16 half = r < rows ? (_Float16)(a[(size_t)(tile * TILE + r) * lda + k0 + i] * scale) : (_Float16)0;
                uint16_t bits;
                memcpy(&bits, &half, sizeof bits);
                out[(size_t)i * TILE + r] = (uint32_t)bits | (uint32_t)bits << 16;
            }
    }
}

/// Where block `k0`'s converted tiles start: every block before it is A_DEPTH deep.
static size_t halves_block_offset(int tileCount, int k0) { return (size_t)tileCount * TILE * (size_t)k0; }

HALF_TARGET void synthd_half_panel_convert_a(const float *tiles, int m, int k, int first_tile, int end_tile,
                                             uint32_t *halves, float *scales) {
    int tileCount = (m + TILE - 1) / TILE;
    for (int k0 = 0, block = 0; k0 < k; k0 += A_DEPTH, block++) {
        int depth = k - k0 < A_DEPTH ? k - k0 : A_DEPTH;
        for (int tile = first_tile; tile < end_tile; tile++) {
            const float *from = tiles + (size_t)tile * TILE * k + (size_t)k0 * TILE;
            // Each tile's own scale (a pass to find it first): the result then does not depend
            // on how threads split the tiles, and this runs once a pass, not once a product.
            float scale = scale_for(largest_magnitude(from, (size_t)depth * TILE));
            convert_tile_run(from, depth, halves + halves_block_offset(tileCount, k0) + (size_t)tile * depth * TILE, scale);
            scales[(size_t)block * tileCount + tile] = scale;
        }
    }
}

/// Columns group*64..<group*64+64 of b (panels of 16 from `synthd_panel_pack`) at depths
/// k0..<k0+depth as halves, [depth][64] (columns past n zero); returns the group's scale:
/// `guess` (the last group's) where it serves, found in the same pass, else its own in a second.
HALF_TARGET static float convert_group(const float *packed, int n, int k, int k0, int depth, int group, _Float16 *to,
                                       float guess) {
    const float *panels[4];
    for (int q = 0; q < 4; q++) {
        int panel = group * 4 + q;
        panels[q] = panel * PANEL < n ? packed + (size_t)panel * PANEL * k + (size_t)k0 * PANEL : NULL;
    }
    float scale = guess;
    for (int pass = 0; pass < 2; pass++) {
        __m512 factor = _mm512_set1_ps(scale), largest = _mm512_setzero_ps();
        for (int i = 0; i < depth; i++)
            for (int q = 0; q < 4; q++) {
                __m256i halves = _mm256_setzero_si256();
                if (panels[q]) {
                    __m512 values = _mm512_loadu_ps(panels[q] + (size_t)i * PANEL);
                    largest = _mm512_max_ps(largest, _mm512_abs_ps(values));
                    halves = _mm256_castph_si256(_mm512_cvtxps_ph(_mm512_mul_ps(values, factor)));
                }
                _mm256_store_si256((__m256i *)(to + (size_t)i * GROUP + q * PANEL), halves);
            }
        float biggest = _mm512_reduce_max_ps(largest);
        if (pass == 1 || scale_serves(scale, biggest)) break;
        scale = scale_for(biggest);
    }
    return scale;
}

/// sums (rows x 64 floats) += a . b over `depth`, in half runs of HALF_RUN, each run's sums
/// times `unscale` (1 / the two blocks' scales) into the Float sums; `fresh`: sums = a . b
/// (the first run stores where the others add).
HALF_TARGET __attribute__((always_inline)) static inline void tile_half(int rows, int depth, const uint32_t *a,
                                                                        const _Float16 *b, float *sums, __m512 unscale,
                                                                        bool fresh) {
    for (int run = 0; run < depth; run += HALF_RUN) {
        int end = run + HALF_RUN < depth ? run + HALF_RUN : depth;
        __m512h half[TILE][2];
        for (int r = 0; r < TILE; r++) half[r][0] = half[r][1] = _mm512_setzero_ph();
        for (int i = run; i < end; i++) {
            __m512h left = _mm512_load_ph(b + (size_t)i * GROUP), right = _mm512_load_ph(b + (size_t)i * GROUP + 32);
            for (int r = 0; r < rows; r++) {
                float pair;   // a row's half twice, broadcast as one 32-bit value
                memcpy(&pair, a + (size_t)i * TILE + r, sizeof pair);
                __m512h x = _mm512_castps_ph(_mm512_set1_ps(pair));
                half[r][0] = _mm512_fmadd_ph(x, left, half[r][0]);
                half[r][1] = _mm512_fmadd_ph(x, right, half[r][1]);
            }
        }
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < 2; j++) {
                __m512i bits = _mm512_castph_si512(half[r][j]);
                float *to = sums + r * GROUP + j * 32;
                __m512 low = _mm512_cvtxph_ps(_mm256_castsi256_ph(_mm512_castsi512_si256(bits)));
                __m512 high = _mm512_cvtxph_ps(_mm256_castsi256_ph(_mm512_extracti64x4_epi64(bits, 1)));
                if (fresh && run == 0) {
                    _mm512_store_ps(to, _mm512_mul_ps(low, unscale));
                    _mm512_store_ps(to + 16, _mm512_mul_ps(high, unscale));
                } else {
                    _mm512_store_ps(to, _mm512_fmadd_ps(low, unscale, _mm512_load_ps(to)));
                    _mm512_store_ps(to + 16, _mm512_fmadd_ps(high, unscale, _mm512_load_ps(to + 16)));
                }
            }
    }
}

// One function per row count, each small: inlined into the whole product, the micro-tile's
// 24 half sums were once kept in registers and, after an unrelated change to the caller, stored
// to the stack after every FMA instead (0.7x the step). A function of its own keeps them in
// registers whatever the caller becomes.
#define DEFINE_TILE_HALF(ROWS)                                                                              \
    HALF_TARGET __attribute__((noinline)) static void tile_half_##ROWS(int depth, const uint32_t *a,          \
                                                                     const _Float16 *b, float *sums,         \
                                                                     __m512 unscale, bool fresh) {           \
        tile_half(ROWS, depth, a, b, sums, unscale, fresh);                                                  \
    }
DEFINE_TILE_HALF(1) DEFINE_TILE_HALF(2) DEFINE_TILE_HALF(3) DEFINE_TILE_HALF(4) DEFINE_TILE_HALF(5) DEFINE_TILE_HALF(6)
DEFINE_TILE_HALF(7) DEFINE_TILE_HALF(8) DEFINE_TILE_HALF(9) DEFINE_TILE_HALF(10) DEFINE_TILE_HALF(11) DEFINE_TILE_HALF(12)

#define TILE_HALF(ROWS) tile_half_##ROWS(runDepth, tileAt, groupHalves, tileSums, unscale, fresh)

HALF_TARGET void synthd_half_panel_gemm(int m, int n, int k, const float *a, bool a_tiles, int lda,
                                        const uint32_t *a_halves, const float *a_scales, const float *packed,
                                        float *c, int ldc, int columns_per_image, ptrdiff_t image_stride,
                                        const float *bias, bool accumulate_c) {
    int tileCount = (m + TILE - 1) / TILE, groups = (n + GROUP - 1) / GROUP;
    // Blocks of tiles as even as A_BLOCK_BYTES allows: each block converts every group of b again.
    int firstDepth = k < A_DEPTH ? k : A_DEPTH;
    int most = (int)(A_BLOCK_BYTES / ((size_t)firstDepth * TILE * sizeof(uint32_t)));
    most = most < 1 ? 1 : most;
    int blocks = (tileCount + most - 1) / most, blockTiles = (tileCount + blocks - 1) / blocks;
    bool converted = a_halves != NULL;   // a's halves and scales given (`synthd_half_panel_convert_a`)
    uint32_t *tileBuffer = converted ? NULL : aligned_alloc(64, (size_t)blockTiles * firstDepth * TILE * sizeof(uint32_t) + 64);
    _Float16 *groupHalves = aligned_alloc(64, (size_t)B_DEPTH * GROUP * sizeof(_Float16));
    float *groupSums = aligned_alloc(64, (size_t)blockTiles * TILE * GROUP * sizeof(float));
    float *scaleBuffer = converted ? NULL : malloc((size_t)blockTiles * sizeof(float));
    if ((!converted && (!tileBuffer || !scaleBuffer)) || !groupHalves || !groupSums) abort();
    float tileGuess = 1, groupGuess = 1;   // the last block's scales, which usually serve the next
    for (int k0 = 0, block = 0; k0 < k; k0 += A_DEPTH, block++) {
        int depth = k - k0 < A_DEPTH ? k - k0 : A_DEPTH;
        bool continues = k0 > 0 || accumulate_c, lastBlock = k0 + depth == k;
        for (int firstTile = 0; firstTile < tileCount; firstTile += blockTiles) {
            int count = tileCount - firstTile < blockTiles ? tileCount - firstTile : blockTiles;
            int rows = m - firstTile * TILE < count * TILE ? m - firstTile * TILE : count * TILE;
            const uint32_t *tileHalves = tileBuffer;
            const float *scales = scaleBuffer;
            if (converted) {
                tileHalves = a_halves + halves_block_offset(tileCount, k0) + (size_t)firstTile * depth * TILE;
                scales = a_scales + (size_t)block * tileCount + firstTile;
            } else {
                convert_tiles(a, a_tiles, lda, m, k, k0, depth, firstTile, count, tileBuffer, scaleBuffer, &tileGuess);
            }
            for (int group = 0; group < groups; group++) {
                // Where each of the group's four 16-column panels lies in c, and how many of its columns exist.
                float *corners[4];
                __mmask16 masks[4];
                for (int q = 0; q < 4; q++) {
                    int column = group * GROUP + q * PANEL, left = n - column;
                    masks[q] = left <= 0 ? 0 : left >= PANEL ? 0xFFFF : (__mmask16)((1u << left) - 1);
                    corners[q] = left <= 0 ? NULL
                                           : c + (ptrdiff_t)(column / columns_per_image) * image_stride + column % columns_per_image;
                }
                if (continues)   // c's sums so far, which these go on from
                    for (int r = 0; r < rows; r++)
                        for (int q = 0; q < 4; q++)
                            _mm512_store_ps(groupSums + r * GROUP + q * PANEL,
                                            _mm512_maskz_loadu_ps(masks[q], corners[q] ? corners[q] + (size_t)(firstTile * TILE + r) * ldc : c));
                // Depth runs of B_DEPTH: the group's halves stay in L1 while every tile of the block reads them.
                for (int d0 = 0; d0 < depth; d0 += B_DEPTH) {
                    int runDepth = depth - d0 < B_DEPTH ? depth - d0 : B_DEPTH;
                    bool fresh = !continues && d0 == 0;
                    float groupScale = groupGuess = convert_group(packed, n, k, k0 + d0, runDepth, group, groupHalves, groupGuess);
                    for (int t = 0; t < count; t++) {
                        int tileRows = rows - t * TILE < TILE ? rows - t * TILE : TILE;
                        const uint32_t *tileAt = tileHalves + (size_t)t * depth * TILE + (size_t)d0 * TILE;
                        float *tileSums = groupSums + (size_t)t * TILE * GROUP;
                        __m512 unscale = _mm512_set1_ps(1 / (scales[t] * groupScale));
                        switch (tileRows) {   // constant row counts: the half sums stay in registers
                        case 12: TILE_HALF(12); break; case 11: TILE_HALF(11); break;
                        case 10: TILE_HALF(10); break; case 9: TILE_HALF(9); break;
                        case 8: TILE_HALF(8); break; case 7: TILE_HALF(7); break;
                        case 6: TILE_HALF(6); break; case 5: TILE_HALF(5); break;
                        case 4: TILE_HALF(4); break; case 3: TILE_HALF(3); break;
                        case 2: TILE_HALF(2); break; default: TILE_HALF(1); break;
                        }
                    }
                }
                for (int r = 0; r < rows; r++) {
                    int row = firstTile * TILE + r;
                    for (int q = 0; q < 4; q++) {
                        if (!masks[q]) continue;
                        __m512 sum = _mm512_load_ps(groupSums + r * GROUP + q * PANEL);
                        if (bias && lastBlock) sum = _mm512_add_ps(sum, _mm512_set1_ps(bias[row]));
                        _mm512_mask_storeu_ps(corners[q] + (size_t)row * ldc, masks[q], sum);
                    }
                }
            }
        }
    }
    free(tileBuffer);
    free(groupHalves);
    free(groupSums);
    free(scaleBuffer);
}

#else

bool synthd_half_panel_available(void) { return false; }

void synthd_half_panel_convert_a(const float *tiles, int m, int k, int first_tile, int end_tile, uint32_t *halves,
                                 float *scales) {
    abort();
}

void synthd_half_panel_gemm(int m, int n, int k, const float *a, bool a_tiles, int lda, const uint32_t *a_halves,
                            const float *a_scales, const float *packed, float *c, int ldc, int columns_per_image,
                            ptrdiff_t image_stride, const float *bias, bool accumulate_c) {
    abort();
}

#endif
