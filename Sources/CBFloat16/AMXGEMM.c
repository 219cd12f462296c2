#include "CBFloat16.h"
#include "BFloat16Tiles.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#define AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512bf16")))
#define AMX_STEP AMX_TARGET __attribute__((noinline))

// Linux hands a process the 8 KB of tile registers only when it asks (arch/x86 xstate.c).
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

static pthread_once_t amxOnce = PTHREAD_ONCE_INIT;
static bool amxUsable;

static void probe_amx(void) {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return;
    bool tile = edx & (1u << 24), bf16 = edx & (1u << 22);
    // The packing below uses AVX512-BF16's conversions; every CPU with AMX has them.
    if (!tile || !bf16 || !synthd_bf16_available()) return;
    amxUsable = syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}

bool synthd_amx_available(void) {
    pthread_once(&amxOnce, probe_amx);
    return amxUsable;
}

typedef struct {
    uint8_t palette, startRow, reserved[14];
    uint16_t bytesPerRow[16];
    uint8_t rows[16];
} TileConfiguration;

/// c's block at (i0, j0) from `rowTiles` x `columnTiles` accumulated tiles (in `sums`, a
/// 32 x 32 block of row stride 32): alpha * sums + beta * c, within m x n.
AMX_STEP static void write_block(int rowTiles, int columnTiles, const float *sums, int i0, int j0,
                                   int m, int n, float alpha, float beta, float *c, int ldc) {
    __m512 a = _mm512_set1_ps(alpha), bt = _mm512_set1_ps(beta);
    for (int rt = 0; rt < rowTiles; rt++) {
        for (int r = 0; r < TILE; r++) {
            int i = i0 + rt * TILE + r;
            if (i >= m) break;
            for (int ct = 0; ct < columnTiles; ct++) {
                int j = j0 + ct * TILE;
                if (j >= n) break;
                __mmask16 mask = mask_of(n - j);
                __m512 value = _mm512_mul_ps(a, _mm512_loadu_ps(sums + (size_t)(rt * TILE + r) * 2 * TILE + ct * TILE));
                float *target = c + (size_t)i * ldc + j;
                if (beta != 0) value = _mm512_fmadd_ps(bt, _mm512_maskz_loadu_ps(mask, target), value);
                _mm512_mask_storeu_ps(target, mask, value);
            }
        }
    }
}

// Tile registers: 0-3 sums (2 x 2), 4-5 a, 6-7 b. _tile_* take constants, hence the macros.
// The sums start from zero or, when `start` is given, from c's tiles (beta = 1); they end in
// `target`'s tiles (c itself, or `sums` for write_block), row stride `stride` floats.
#define START(TILE_REGISTER, OFFSET)                                                                \
    if (start) _tile_loadd(TILE_REGISTER, start + (OFFSET), stride * 4); else _tile_zero(TILE_REGISTER);
#define PRODUCTS(ROWS, COLUMNS)                                                                     \
    START(0, 0)                                                                                     \
    if (COLUMNS > 1) { START(1, TILE) }                                                             \
    if (ROWS > 1) { START(2, (size_t)TILE * stride) }                                               \
    if (ROWS > 1 && COLUMNS > 1) { START(3, (size_t)TILE * stride + TILE) }                         \
    for (int kb = 0; kb < kBlocks; kb++) {                                                          \
        _tile_loadd(4, aTiles + (size_t)kb * TILE_ELEMENTS, 64);                                    \
        if (ROWS > 1) _tile_loadd(5, aTiles + ((size_t)kBlocks + kb) * TILE_ELEMENTS, 64);          \
        _tile_loadd(6, bTiles + (size_t)kb * TILE_ELEMENTS, 64);                                    \
        if (COLUMNS > 1) _tile_loadd(7, bTiles + ((size_t)kBlocks + kb) * TILE_ELEMENTS, 64);       \
        _tile_dpbf16ps(0, 4, 6);                                                                    \
        if (COLUMNS > 1) _tile_dpbf16ps(1, 4, 7);                                                   \
        if (ROWS > 1) _tile_dpbf16ps(2, 5, 6);                                                      \
        if (ROWS > 1 && COLUMNS > 1) _tile_dpbf16ps(3, 5, 7);                                       \
    }                                                                                               \
    _tile_stored(0, target, stride * 4);                                                            \
    if (COLUMNS > 1) _tile_stored(1, target + TILE, stride * 4);                                    \
    if (ROWS > 1) _tile_stored(2, target + (size_t)TILE * stride, stride * 4);                      \
    if (ROWS > 1 && COLUMNS > 1) _tile_stored(3, target + (size_t)TILE * stride + TILE, stride * 4);

AMX_STEP static void block(int rowTiles, int columnTiles, int kBlocks, const uint16_t *aTiles,
                             const uint16_t *bTiles, const float *start, float *target, int stride) {
    if (rowTiles == 2 && columnTiles == 2) { PRODUCTS(2, 2) }
    else if (rowTiles == 2) { PRODUCTS(2, 1) }
    else if (columnTiles == 2) { PRODUCTS(1, 2) }
    else { PRODUCTS(1, 1) }
}

AMX_TARGET static void products(const uint16_t *packedA, const uint16_t *packedB, int m, int n, int k,
                                float alpha, float beta, float *c, int ldc) {
    int rowBlocks = (m + TILE - 1) / TILE, columnBlocks = (n + TILE - 1) / TILE, kBlocks = (k + KBLOCK - 1) / KBLOCK;

    TileConfiguration configuration;
    memset(&configuration, 0, sizeof configuration);
    configuration.palette = 1;
    for (int t = 0; t < 8; t++) { configuration.rows[t] = TILE; configuration.bytesPerRow[t] = 64; }
    _tile_loadconfig(&configuration);
    float sums[4 * TILE * TILE] __attribute__((aligned(64)));   // 2 x 2 tiles, row stride 32
    // Whole tiles of c take the sums straight from the tile registers (and start from c when
    // accumulating); edges and other scalings go through `sums`.
    bool direct = alpha == 1 && (beta == 0 || beta == 1);
    // Two column blocks outside, all rows inside: b's panel (2 x k x 32 bytes) stays in L2
    // while every row block of a passes it.
    for (int cb = 0; cb < columnBlocks; cb += 2) {
        int columnTiles = cb + 1 < columnBlocks ? 2 : 1;
        const uint16_t *bTiles = packedB + (size_t)cb * kBlocks * TILE_ELEMENTS;
        for (int rb = 0; rb < rowBlocks; rb += 2) {
            int rowTiles = rb + 1 < rowBlocks ? 2 : 1;
            const uint16_t *aTiles = packedA + (size_t)rb * kBlocks * TILE_ELEMENTS;
            if (direct && (rb + rowTiles) * TILE <= m && (cb + columnTiles) * TILE <= n) {
                float *corner = c + (size_t)rb * TILE * ldc + cb * TILE;
                block(rowTiles, columnTiles, kBlocks, aTiles, bTiles, beta == 1 ? corner : NULL, corner, ldc);
            } else {
                block(rowTiles, columnTiles, kBlocks, aTiles, bTiles, NULL, sums, 2 * TILE);
                write_block(rowTiles, columnTiles, sums, rb * TILE, cb * TILE, m, n, alpha, beta, c, ldc);
            }
        }
    }
    _tile_release();
}

AMX_TARGET void synthd_amx_gemm_packed(const uint16_t *packedA, bool transB, int m, int n, int k, float alpha,
                                       const float *b, int ldb, float beta, float *c, int ldc) {
    uint16_t *packedB = synthd_tiles_room(&synthd_tiles_thread_buffers()->right, synthd_tiles_count(n, k));
    synthd_tiles_pack_b(transB, k, n, b, ldb, packedB);
    products(packedA, packedB, m, n, k, alpha, beta, c, ldc);
}

AMX_TARGET void synthd_amx_gemm(bool transA, bool transB, int m, int n, int k, float alpha,
                                const float *a, int lda, const float *b, int ldb, float beta,
                                float *c, int ldc) {
    synthd_amx_gemm_packed(synthd_tiles_left(NULL, transA, m, k, a, lda), transB, m, n, k, alpha, b, ldb, beta, c, ldc);
}

AMX_TARGET void synthd_amx_gemm_columns(const uint16_t *packedA, bool transA, const float *a, int lda,
                                        synthd_columns g, bool transposed, const float *image,
                                        int m, float alpha, float beta, float *c, int ldc) {
    ColumnOperands operands = synthd_tiles_column_operands(packedA, transA, a, lda, g, transposed, image, m);
    products(operands.a, operands.b, m, operands.n, operands.k, alpha, beta, c, ldc);
}

#else

bool synthd_amx_available(void) { return false; }

void synthd_amx_gemm_packed(const uint16_t *packedA, bool transB, int m, int n, int k, float alpha,
                            const float *b, int ldb, float beta, float *c, int ldc) {
    abort();
}

void synthd_amx_gemm(bool transA, bool transB, int m, int n, int k, float alpha,
                     const float *a, int lda, const float *b, int ldb, float beta,
                     float *c, int ldc) {
    abort();   // synthd_amx_available() is false here: callers use Float GEMMs
}

void synthd_amx_gemm_columns(const uint16_t *packedA, bool transA, const float *a, int lda,
                             synthd_columns g, bool transposed, const float *image,
                             int m, float alpha, float beta, float *c, int ldc) {
    abort();
}

#endif
