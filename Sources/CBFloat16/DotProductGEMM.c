#include "CBFloat16.h"
#include "BFloat16Tiles.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)

// Why a second training kernel: CPUs with AVX512-BF16 but no AMX (AMD Zen 4) multiply
// bfloat16 pairs at twice a float FMA's rate, and OpenBLAS (Debian's 0.3.21) has no bfloat16
// GEMM. It reads AMX's packed tiles as they are: a tile row of b (16 columns x a pair of k) is
// one 512-bit vector, and a tile row of a holds a row's 32 values of k, so a pair is one
// 32-bit word to broadcast. Sharing the layout shares the packing and `PackedLeftOperand`.

enum { ROWS = 8, MAX_BLOCKS = 3 };   // a micro-tile: 8 rows x 3 column blocks (48 columns)

/// c's rows `rows` (at most ROWS, from a row group of `aRows`, rows 32 uint16 apart in each
/// tile) x `blocks` column blocks (from `bTiles`, `bBlockStride` apart): all of k in 24
/// registers, then alpha * sums + beta * c. Inlined with constant `blocks`.
TILES_TARGET __attribute__((always_inline)) static inline void micro_tile(
    int blocks, int kBlocks, const uint16_t *aRows, const uint16_t *bTiles, size_t bBlockStride,
    int rows, int columnsLeft, float alpha, float beta, float *c, int ldc) {
    __m512 sums[ROWS][MAX_BLOCKS];
    for (int r = 0; r < ROWS; r++)
        for (int v = 0; v < blocks; v++) sums[r][v] = _mm512_setzero_ps();
    for (int kb = 0; kb < kBlocks; kb++) {
        const uint16_t *a = aRows + (size_t)kb * TILE_ELEMENTS, *b = bTiles + (size_t)kb * TILE_ELEMENTS;
        for (int pair = 0; pair < TILE; pair++) {
            __m512bh columns[MAX_BLOCKS];
            for (int v = 0; v < blocks; v++)
                columns[v] = (__m512bh)_mm512_load_si512(b + v * bBlockStride + pair * 2 * TILE);
            for (int r = 0; r < ROWS; r++) {
                int word;   // row r's values at k = 2 pair, 2 pair + 1 (memcpy: no aliasing)
                memcpy(&word, a + r * KBLOCK + 2 * pair, sizeof word);
                __m512bh x = (__m512bh)_mm512_set1_epi32(word);
                for (int v = 0; v < blocks; v++) sums[r][v] = _mm512_dpbf16_ps(sums[r][v], x, columns[v]);
            }
        }
    }
    __m512 scale = _mm512_set1_ps(alpha), keep = _mm512_set1_ps(beta);
    for (int r = 0; r < rows; r++) {
        for (int v = 0; v < blocks; v++) {
            __mmask16 mask = mask_of(columnsLeft - v * TILE);
            float *target = c + (size_t)r * ldc + v * TILE;
            __m512 value = _mm512_mul_ps(scale, sums[r][v]);
            if (beta != 0) value = _mm512_fmadd_ps(keep, _mm512_maskz_loadu_ps(mask, target), value);
            _mm512_mask_storeu_ps(target, mask, value);
        }
    }
}

TILES_STEP static void products(const uint16_t *packedA, const uint16_t *packedB, int m, int n, int k,
                                float alpha, float beta, float *c, int ldc) {
    int columnBlocks = (n + TILE - 1) / TILE, kBlocks = (k + KBLOCK - 1) / KBLOCK;
    size_t blockStride = (size_t)kBlocks * TILE_ELEMENTS;   // one row or column block, all of k
    // Three column blocks outside, all rows inside: their panel of b (3 x k x 64 bytes) stays
    // in L1 or L2 while every row group of a passes it.
    for (int cb = 0; cb < columnBlocks; cb += MAX_BLOCKS) {
        int blocks = columnBlocks - cb < MAX_BLOCKS ? columnBlocks - cb : MAX_BLOCKS;
        const uint16_t *bTiles = packedB + cb * blockStride;
        for (int i = 0; i < m; i += ROWS) {
            // Rows past m in the last group are packed zeros: computed, not stored.
            const uint16_t *aRows = packedA + (size_t)(i / TILE) * blockStride + (size_t)(i % TILE) * KBLOCK;
            int rows = m - i < ROWS ? m - i : ROWS, left = n - cb * TILE;
            float *corner = c + (size_t)i * ldc + cb * TILE;
            switch (blocks) {
            case 3: micro_tile(3, kBlocks, aRows, bTiles, blockStride, rows, left, alpha, beta, corner, ldc); break;
            case 2: micro_tile(2, kBlocks, aRows, bTiles, blockStride, rows, left, alpha, beta, corner, ldc); break;
            default: micro_tile(1, kBlocks, aRows, bTiles, blockStride, rows, left, alpha, beta, corner, ldc); break;
            }
        }
    }
}

void synthd_dot_gemm_packed(const uint16_t *packedA, bool transB, int m, int n, int k, float alpha,
                            const float *b, int ldb, float beta, float *c, int ldc) {
    uint16_t *packedB = synthd_tiles_room(&synthd_tiles_thread_buffers()->right, synthd_tiles_count(n, k));
    synthd_tiles_pack_b(transB, k, n, b, ldb, packedB);
    products(packedA, packedB, m, n, k, alpha, beta, c, ldc);
}

void synthd_dot_gemm(bool transA, bool transB, int m, int n, int k, float alpha,
                     const float *a, int lda, const float *b, int ldb, float beta,
                     float *c, int ldc) {
    synthd_dot_gemm_packed(synthd_tiles_left(NULL, transA, m, k, a, lda), transB, m, n, k, alpha, b, ldb, beta, c, ldc);
}

void synthd_dot_gemm_columns(const uint16_t *packedA, bool transA, const float *a, int lda,
                             synthd_columns g, bool transposed, const float *image,
                             int m, float alpha, float beta, float *c, int ldc) {
    ColumnOperands operands = synthd_tiles_column_operands(packedA, transA, a, lda, g, transposed, image, m);
    products(operands.a, operands.b, m, operands.n, operands.k, alpha, beta, c, ldc);
}

#else

void synthd_dot_gemm_packed(const uint16_t *packedA, bool transB, int m, int n, int k, float alpha,
                            const float *b, int ldb, float beta, float *c, int ldc) {
    abort();
}

void synthd_dot_gemm(bool transA, bool transB, int m, int n, int k, float alpha,
                     const float *a, int lda, const float *b, int ldb, float beta,
                     float *c, int ldc) {
    abort();   // synthd_bf16_available() is false here: callers use float GEMMs
}

void synthd_dot_gemm_columns(const uint16_t *packedA, bool transA, const float *a, int lda,
                             synthd_columns g, bool transposed, const float *image,
                             int m, float alpha, float beta, float *c, int ldc) {
    abort();
}

#endif
