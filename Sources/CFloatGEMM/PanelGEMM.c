#include "CFloatGEMM.h"

#include <stdlib.h>
#include <string.h>

enum { PANEL = 16 };   // columns of a packed panel: two AVX2 registers, one AVX-512 register

size_t synthd_panel_packed_count(int k, int n) {
    return (size_t)((n + PANEL - 1) / PANEL) * PANEL * (size_t)k;
}

void synthd_panel_pack(const float *b, int ldb, int k, int n, float *packed) {
    for (int p = 0; p * PANEL < n; p++) {
        int columns = n - p * PANEL < PANEL ? n - p * PANEL : PANEL;
        float *panel = packed + (size_t)p * PANEL * k;
        if (columns == PANEL) {   // a constant size: inlined as vector moves, not a call per row
            for (int row = 0; row < k; row++)
                memcpy(panel + (size_t)row * PANEL, b + (size_t)row * ldb + p * PANEL, PANEL * sizeof(float));
            continue;
        }
        for (int row = 0; row < k; row++) {
            memcpy(panel + (size_t)row * PANEL, b + (size_t)row * ldb + p * PANEL, (size_t)columns * sizeof(float));
            memset(panel + (size_t)row * PANEL + columns, 0, (size_t)(PANEL - columns) * sizeof(float));
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>

/// Rows of a that a block keeps in L2 while every panel of b passes it (each panel, k x 64 bytes,
/// stays in L1 while the block's micro-tiles read it): a multiple of both kernels' row counts.
static int block_rows(int k) {
    int rows = (96 * 1024) / (k * (int)sizeof(float));
    rows -= rows % 12;
    return rows < 12 ? 12 : rows;
}

/// A partial panel (n not a multiple of 16): the micro-tile is stored to `spill` first and
/// `columns` of each row copied out.
static void copy_out(const float *spill, int rows, int columns, float *c, int ldc) {
    for (int r = 0; r < rows; r++) memcpy(c + (size_t)r * ldc, spill + r * PANEL, (size_t)columns * sizeof(float));
}

bool synthd_panel_available(synthd_panel_kernel kernel) {
    __builtin_cpu_init();
    switch (kernel) {
    case SYNTHD_PANEL_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case SYNTHD_PANEL_AVX512: return __builtin_cpu_supports("avx512f");
    }
    return false;
}

// ---- AVX2: 6 rows x one panel (two registers), 12 sums in registers ----

enum { ROWS2 = 6 };

__attribute__((target("avx2,fma"), always_inline)) static inline void tile_avx2(
    int rows, int k, const float *a, int lda, const float *panel, float *c, int ldc, int columns) {
    __m256 sums[ROWS2][2];
    for (int r = 0; r < ROWS2; r++) sums[r][0] = sums[r][1] = _mm256_setzero_ps();
    for (int i = 0; i < k; i++) {
        __m256 low = _mm256_loadu_ps(panel + i * PANEL), high = _mm256_loadu_ps(panel + i * PANEL + 8);
        for (int r = 0; r < rows; r++) {
            __m256 x = _mm256_broadcast_ss(a + (size_t)r * lda + i);
            sums[r][0] = _mm256_fmadd_ps(x, low, sums[r][0]);
            sums[r][1] = _mm256_fmadd_ps(x, high, sums[r][1]);
        }
    }
    if (columns == PANEL) {
        for (int r = 0; r < rows; r++) {
            _mm256_storeu_ps(c + (size_t)r * ldc, sums[r][0]);
            _mm256_storeu_ps(c + (size_t)r * ldc + 8, sums[r][1]);
        }
    } else {
        float spill[ROWS2 * PANEL];
        for (int r = 0; r < rows; r++) {
            _mm256_storeu_ps(spill + r * PANEL, sums[r][0]);
            _mm256_storeu_ps(spill + r * PANEL + 8, sums[r][1]);
        }
        copy_out(spill, rows, columns, c, ldc);
    }
}

__attribute__((target("avx2,fma"))) static void gemm_avx2(int m, int n, int k, const float *a, int lda,
                                                         const float *packed, float *c, int ldc) {
    int block = block_rows(k);
    for (int start = 0; start < m; start += block) {
        int end = start + block < m ? start + block : m;
        for (int p = 0; p * PANEL < n; p++) {
            const float *panel = packed + (size_t)p * PANEL * k;
            int columns = n - p * PANEL < PANEL ? n - p * PANEL : PANEL;
            for (int i = start; i < end; i += ROWS2) {
                const float *rows = a + (size_t)i * lda;
                float *corner = c + (size_t)i * ldc + p * PANEL;
                switch (end - i < ROWS2 ? end - i : ROWS2) {   // constant row counts: sums stay in registers
                case 6: tile_avx2(6, k, rows, lda, panel, corner, ldc, columns); break;
                case 5: tile_avx2(5, k, rows, lda, panel, corner, ldc, columns); break;
                case 4: tile_avx2(4, k, rows, lda, panel, corner, ldc, columns); break;
                case 3: tile_avx2(3, k, rows, lda, panel, corner, ldc, columns); break;
                case 2: tile_avx2(2, k, rows, lda, panel, corner, ldc, columns); break;
                default: tile_avx2(1, k, rows, lda, panel, corner, ldc, columns); break;
                }
            }
        }
    }
}

// ---- AVX-512: 12 rows x two panels (one register each), 24 sums in registers ----

enum { ROWS5 = 12 };

__attribute__((target("avx512f"), always_inline)) static inline void tile_avx512(
    int rows, int panels, int k, const float *a, int lda, const float *first, const float *second,
    float *c, int ldc, int columns) {
    __m512 sums[ROWS5][2];
    for (int r = 0; r < ROWS5; r++) sums[r][0] = sums[r][1] = _mm512_setzero_ps();
    for (int i = 0; i < k; i++) {
        __m512 left = _mm512_loadu_ps(first + i * PANEL);
        __m512 right = panels == 2 ? _mm512_loadu_ps(second + i * PANEL) : left;
        for (int r = 0; r < rows; r++) {
            __m512 x = _mm512_set1_ps(a[(size_t)r * lda + i]);
            sums[r][0] = _mm512_fmadd_ps(x, left, sums[r][0]);
            if (panels == 2) sums[r][1] = _mm512_fmadd_ps(x, right, sums[r][1]);
        }
    }
    // columns: of the last panel stored (16 for whole panels).
    __mmask16 last = columns >= PANEL ? 0xFFFF : (__mmask16)((1u << columns) - 1);
    for (int r = 0; r < rows; r++) {
        float *row = c + (size_t)r * ldc;
        if (panels == 2) {
            _mm512_storeu_ps(row, sums[r][0]);
            _mm512_mask_storeu_ps(row + PANEL, last, sums[r][1]);
        } else {
            _mm512_mask_storeu_ps(row, last, sums[r][0]);
        }
    }
}

#define TILE512(ROWS, PANELS) tile_avx512(ROWS, PANELS, k, rows, lda, first, second, corner, ldc, columns)
// Constant row and panel counts, so that the sums stay in registers.
#define ROWS_SWITCH(COUNT, PANELS) switch (COUNT) { \
    case 12: TILE512(12, PANELS); break; case 11: TILE512(11, PANELS); break; \
    case 10: TILE512(10, PANELS); break; case 9: TILE512(9, PANELS); break; \
    case 8: TILE512(8, PANELS); break; case 7: TILE512(7, PANELS); break; \
    case 6: TILE512(6, PANELS); break; case 5: TILE512(5, PANELS); break; \
    case 4: TILE512(4, PANELS); break; case 3: TILE512(3, PANELS); break; \
    case 2: TILE512(2, PANELS); break; default: TILE512(1, PANELS); break; }

__attribute__((target("avx512f"))) static void gemm_avx512(int m, int n, int k, const float *a, int lda,
                                                          const float *packed, float *c, int ldc) {
    int block = block_rows(k);
    for (int start = 0; start < m; start += block) {
        int end = start + block < m ? start + block : m;
        for (int p = 0; p * PANEL < n; p += 2) {
            const float *first = packed + (size_t)p * PANEL * k, *second = first + (size_t)PANEL * k;
            int panels = (p + 1) * PANEL < n ? 2 : 1;
            int columns = n - (p + panels - 1) * PANEL < PANEL ? n - (p + panels - 1) * PANEL : PANEL;
            for (int i = start; i < end; i += ROWS5) {
                const float *rows = a + (size_t)i * lda;
                float *corner = c + (size_t)i * ldc + p * PANEL;
                int count = end - i < ROWS5 ? end - i : ROWS5;
                if (panels == 2) { ROWS_SWITCH(count, 2) } else { ROWS_SWITCH(count, 1) }
            }
        }
    }
}

void synthd_panel_gemm(synthd_panel_kernel kernel, int m, int n, int k, const float *a, int lda,
                       const float *packed, float *c, int ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        for (int r = 0; r < m; r++) memset(c + (size_t)r * ldc, 0, (size_t)n * sizeof(float));
        return;
    }
    if (kernel == SYNTHD_PANEL_AVX512) gemm_avx512(m, n, k, a, lda, packed, c, ldc);
    else gemm_avx2(m, n, k, a, lda, packed, c, ldc);
}

#else

bool synthd_panel_available(synthd_panel_kernel kernel) { return false; }

void synthd_panel_gemm(synthd_panel_kernel kernel, int m, int n, int k, const float *a, int lda,
                       const float *packed, float *c, int ldc) {
    abort();   // synthd_panel_available() is false here: callers use OpenBLAS
}

#endif
