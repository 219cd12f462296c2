#include "CFloatGEMM.h"

#include <stdlib.h>
#include <string.h>

enum { PANEL = 16 };   // columns of a packed panel: two AVX2 registers, one AVX-512 register
enum { A_TILE = SYNTHD_PANEL_TILE_ROWS };
enum { DEPTH_BLOCK = 256 };  // depths the AVX-512 kernel sums at a time (see gemm_avx512)

size_t synthd_panel_packed_count(int k, int n) {
    return (size_t)((n + PANEL - 1) / PANEL) * PANEL * (size_t)k;
}

void synthd_panel_pack(const float *b, int ldb, int k, int n, float *packed) {
    synthd_panel_pack_images(b, ldb, k, n, n, 0, packed);
}

void synthd_panel_pack_images(const float *b, int ldb, int k, int n, int columns_per_image,
                              ptrdiff_t image_stride, float *packed) {
    for (int p = 0; p * PANEL < n; p++) {
        int first = p * PANEL, columns = n - first < PANEL ? n - first : PANEL;
        const float *from = b + (ptrdiff_t)(first / columns_per_image) * image_stride + first % columns_per_image;
        float *panel = packed + (size_t)p * PANEL * k;
        if (columns == PANEL) {   // a constant size: inlined as vector moves, not a call per row
            for (int row = 0; row < k; row++)
                memcpy(panel + (size_t)row * PANEL, from + (size_t)row * ldb, PANEL * sizeof(float));
            continue;
        }
        for (int row = 0; row < k; row++) {
            memcpy(panel + (size_t)row * PANEL, from + (size_t)row * ldb, (size_t)columns * sizeof(float));
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

/// Where column `column` of c starts: images of `per_image` columns, `image_stride` apart.
typedef struct { float *c; int per_image; ptrdiff_t image_stride; } output_columns;

static inline float *column_start(output_columns out, int column) {
    return out.c + (ptrdiff_t)(column / out.per_image) * out.image_stride + column % out.per_image;
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

/// What a micro-tile fetches for the ones after it while it runs. In training the products'
/// operands were just written by the Winograd transforms (megabytes a pass), so they come from
/// L3 or memory, and a micro-tile that read them itself waited: on a Zen 2 (2026-12-06), with
/// 100 products' operands cycled as a pass does, the kernel ran at 59-81 GFLOP/s where warm
/// operands give 98-103, and with these fetches at 75-89.
typedef struct {
    const float *rows;   // the next micro-tile's rows of a (NULL: none, or they are warm)
    const float *panel, *panelEnd;   // this micro-tile's share of the next panel of b
} avx2_prefetch;

/// One depth of a micro-tile: its rows of a at depth i times the panel's row i, into the sums.
__attribute__((target("avx2,fma"), always_inline)) static inline void depth_avx2(
    int rows, const float *a, int rs, int ds, const float *panel, int i, __m256 sums[ROWS2][2]) {
    __m256 low = _mm256_loadu_ps(panel + i * PANEL), high = _mm256_loadu_ps(panel + i * PANEL + 8);
    for (int r = 0; r < rows; r++) {
        __m256 x = _mm256_broadcast_ss(a + (size_t)r * rs + (size_t)i * ds);
        sums[r][0] = _mm256_fmadd_ps(x, low, sums[r][0]);
        sums[r][1] = _mm256_fmadd_ps(x, high, sums[r][1]);
    }
}

__attribute__((target("avx2,fma"), always_inline)) static inline void tile_avx2(
    int rows, int k, const float *a, int rs, int ds, const float *panel, float *c, int ldc, int columns, const float *bias,
    bool accumulate, avx2_prefetch next) {
    __m256 sums[ROWS2][2];
    for (int r = 0; r < ROWS2; r++) sums[r][0] = sums[r][1] = _mm256_setzero_ps();
    if (accumulate) {   // c's sums so far: the chain goes on from them
        for (int r = 0; r < rows; r++) {
            float held[PANEL] = {0};
            memcpy(held, c + (size_t)r * ldc, (size_t)(columns < PANEL ? columns : PANEL) * sizeof(float));
            sums[r][0] = _mm256_loadu_ps(held);
            sums[r][1] = _mm256_loadu_ps(held + 8);
        }
    }
    int i = 0;
    for (; i + 16 <= k; i += 16) {   // 16 depths a round: as a's rows here each cross a cache line
        // The same line of each of the next micro-tile's rows, and two lines of the next panel
        // (prefetches never fault).
        if (next.rows)
            for (int r = 0; r < ROWS2; r++) _mm_prefetch((const char *)(next.rows + (size_t)r * rs + (size_t)i * ds), _MM_HINT_T0);
        _mm_prefetch((const char *)next.panel, _MM_HINT_T0);
        _mm_prefetch((const char *)(next.panel + 16), _MM_HINT_T0);
        if (next.panel + 32 < next.panelEnd) next.panel += 32;
        for (int j = 0; j < 16; j++) depth_avx2(rows, a, rs, ds, panel, i + j, sums);
    }
    for (; i < k; i++) depth_avx2(rows, a, rs, ds, panel, i, sums);
    if (bias) {   // after the sums, as c = a . b + bias in that order
        for (int r = 0; r < rows; r++) {
            __m256 value = _mm256_set1_ps(bias[r]);
            sums[r][0] = _mm256_add_ps(sums[r][0], value);
            sums[r][1] = _mm256_add_ps(sums[r][1], value);
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

__attribute__((target("avx2,fma"), always_inline)) static inline void gemm_avx2(int m, int n, int k, const float *a, int rs, int ds, int ts,
                                                         const float *packed, output_columns out, int ldc,
                                                         const float *bias, bool accumulate) {
    int block = block_rows(k);
    for (int start = 0; start < m; start += block) {
        int end = start + block < m ? start + block : m;
        for (int p = 0; p * PANEL < n; p++) {
            const float *panel = packed + (size_t)p * PANEL * k;
            int columns = n - p * PANEL < PANEL ? n - p * PANEL : PANEL;
            // The next panel is fetched in shares by this panel's micro-tiles; a's rows only while
            // the first panel passes them (then the block is in L2) and where they lie as rows
            // (a packed a is one stream, which the hardware's own prefetcher follows).
            const float *nextPanel = (p + 1) * PANEL < n ? panel + (size_t)PANEL * k : panel;
            size_t share = ((size_t)PANEL * k * ROWS2 + (end - start) - 1) / (end - start);
            for (int i = start; i < end; i += ROWS2) {
                const float *rows = ts ? a + (size_t)(i / A_TILE) * A_TILE * ts + (size_t)(i % A_TILE) * rs : a + (size_t)i * rs;
                const float *shareStart = nextPanel + (size_t)((i - start) / ROWS2) * share;
                avx2_prefetch next = { p == 0 && !ts && i + 2 * ROWS2 <= end ? rows + (size_t)ROWS2 * rs : NULL,
                                       shareStart, shareStart + share };
                float *corner = column_start(out, p * PANEL) + (size_t)i * ldc;
                const float *rowBias = bias ? bias + i : NULL;
                switch (end - i < ROWS2 ? end - i : ROWS2) {   // constant row counts: sums stay in registers
                case 6: tile_avx2(6, k, rows, rs, ds, panel, corner, ldc, columns, rowBias, accumulate, next); break;
                case 5: tile_avx2(5, k, rows, rs, ds, panel, corner, ldc, columns, rowBias, accumulate, next); break;
                case 4: tile_avx2(4, k, rows, rs, ds, panel, corner, ldc, columns, rowBias, accumulate, next); break;
                case 3: tile_avx2(3, k, rows, rs, ds, panel, corner, ldc, columns, rowBias, accumulate, next); break;
                case 2: tile_avx2(2, k, rows, rs, ds, panel, corner, ldc, columns, rowBias, accumulate, next); break;
                default: tile_avx2(1, k, rows, rs, ds, panel, corner, ldc, columns, rowBias, accumulate, next); break;
                }
            }
        }
    }
}

// ---- AVX-512: 12 rows x two panels (one register each), 24 sums in registers ----

enum { ROWS5 = 12 };

__attribute__((target("avx512f"), always_inline)) static inline void tile_avx512(
    int rows, int panels, int k, const float *a, int rs, int ds, const float *first, const float *second,
    float *c, float *cSecond, int ldc, int columns, const float *bias, bool accumulate) {
    // columns: of the last panel stored (16 for whole panels).
    __mmask16 last = columns >= PANEL ? 0xFFFF : (__mmask16)((1u << columns) - 1);
    __m512 sums[ROWS5][2];
    for (int r = 0; r < ROWS5; r++) sums[r][0] = sums[r][1] = _mm512_setzero_ps();
    if (accumulate) {   // the sums of the depths before, stored by the last block: the chain goes on
        for (int r = 0; r < rows; r++) {
            if (panels == 2) {
                sums[r][0] = _mm512_loadu_ps(c + (size_t)r * ldc);
                sums[r][1] = _mm512_maskz_loadu_ps(last, cSecond + (size_t)r * ldc);
            } else {
                sums[r][0] = _mm512_maskz_loadu_ps(last, c + (size_t)r * ldc);
            }
        }
    }
    for (int i = 0; i < k; i++) {
        __m512 left = _mm512_loadu_ps(first + i * PANEL);
        __m512 right = panels == 2 ? _mm512_loadu_ps(second + i * PANEL) : left;
        for (int r = 0; r < rows; r++) {
            __m512 x = _mm512_set1_ps(a[(size_t)r * rs + (size_t)i * ds]);
            sums[r][0] = _mm512_fmadd_ps(x, left, sums[r][0]);
            if (panels == 2) sums[r][1] = _mm512_fmadd_ps(x, right, sums[r][1]);
        }
    }
    if (bias) {   // after the sums, as c = a . b + bias in that order
        for (int r = 0; r < rows; r++) {
            __m512 value = _mm512_set1_ps(bias[r]);
            sums[r][0] = _mm512_add_ps(sums[r][0], value);
            if (panels == 2) sums[r][1] = _mm512_add_ps(sums[r][1], value);
        }
    }
    for (int r = 0; r < rows; r++) {
        float *row = c + (size_t)r * ldc;
        if (panels == 2) {
            _mm512_storeu_ps(row, sums[r][0]);
            _mm512_mask_storeu_ps(cSecond + (size_t)r * ldc, last, sums[r][1]);
        } else {
            _mm512_mask_storeu_ps(row, last, sums[r][0]);
        }
    }
}

#define TILE512(ROWS, PANELS) tile_avx512(ROWS, PANELS, depth, rows, rs, ds, first, second, corner, cornerSecond, \
                                              ldc, columns, rowBias, accumulate)
// Constant row and panel counts, so that the sums stay in registers.
#define ROWS_SWITCH(COUNT, PANELS) switch (COUNT) { \
    case 12: TILE512(12, PANELS); break; case 11: TILE512(11, PANELS); break; \
    case 10: TILE512(10, PANELS); break; case 9: TILE512(9, PANELS); break; \
    case 8: TILE512(8, PANELS); break; case 7: TILE512(7, PANELS); break; \
    case 6: TILE512(6, PANELS); break; case 5: TILE512(5, PANELS); break; \
    case 4: TILE512(4, PANELS); break; case 3: TILE512(3, PANELS); break; \
    case 2: TILE512(2, PANELS); break; default: TILE512(1, PANELS); break; }

__attribute__((target("avx512f"), always_inline)) static inline void gemm_avx512(int m, int n, int k, const float *a, int rs, int ds, int ts,
                                                          const float *packed, output_columns out, int ldc,
                                                          const float *bias, bool accumulateC) {
    // Depth blocks: a panel pair's block (DEPTH_BLOCK x 128 bytes) stays in L1 while the row
    // block's micro-tiles read it, where a whole depth of 1024-2048 came from L2 for each.
    for (int k0 = 0; k0 < k; k0 += DEPTH_BLOCK) {
        int depth = k - k0 < DEPTH_BLOCK ? k - k0 : DEPTH_BLOCK;
        bool accumulate = k0 > 0 || accumulateC, lastBlock = k0 + depth == k;
        int block = block_rows(depth);
        for (int start = 0; start < m; start += block) {
            int end = start + block < m ? start + block : m;
            for (int p = 0; p * PANEL < n; p += 2) {
                const float *first = packed + (size_t)p * PANEL * k + (size_t)k0 * PANEL, *second = first + (size_t)PANEL * k;
                int panels = (p + 1) * PANEL < n ? 2 : 1;
                int columns = n - (p + panels - 1) * PANEL < PANEL ? n - (p + panels - 1) * PANEL : PANEL;
                for (int i = start; i < end; i += ROWS5) {
                    const float *rows = (ts ? a + (size_t)(i / A_TILE) * A_TILE * ts + (size_t)(i % A_TILE) * rs
                                            : a + (size_t)i * rs) + (size_t)k0 * ds;
                    float *corner = column_start(out, p * PANEL) + (size_t)i * ldc;
                    float *cornerSecond = panels == 2 ? column_start(out, (p + 1) * PANEL) + (size_t)i * ldc : NULL;
                    const float *rowBias = bias && lastBlock ? bias + i : NULL;
                    int count = end - i < ROWS5 ? end - i : ROWS5;
                    if (panels == 2) { ROWS_SWITCH(count, 2) } else { ROWS_SWITCH(count, 1) }
                }
            }
        }
    }
}

// One copy of each kernel per layout of a, so that a's strides are constants where they can be.
__attribute__((target("avx512f"))) static void gemm_avx512_rows(int m, int n, int k, const float *a, int lda,
                                                               const float *packed, output_columns out, int ldc,
                                                               const float *bias, bool accumulate) {
    gemm_avx512(m, n, k, a, lda, 1, 0, packed, out, ldc, bias, accumulate);
}

__attribute__((target("avx512f"))) static void gemm_avx512_tiles(int m, int n, int k, const float *a,
                                                                const float *packed, output_columns out, int ldc,
                                                                const float *bias, bool accumulate) {
    gemm_avx512(m, n, k, a, 1, A_TILE, k, packed, out, ldc, bias, accumulate);
}

__attribute__((target("avx2,fma"))) static void gemm_avx2_rows(int m, int n, int k, const float *a, int lda,
                                                              const float *packed, output_columns out, int ldc,
                                                              const float *bias, bool accumulate) {
    gemm_avx2(m, n, k, a, lda, 1, 0, packed, out, ldc, bias, accumulate);
}

__attribute__((target("avx2,fma"))) static void gemm_avx2_tiles(int m, int n, int k, const float *a,
                                                               const float *packed, output_columns out, int ldc,
                                                               const float *bias, bool accumulate) {
    gemm_avx2(m, n, k, a, 1, A_TILE, k, packed, out, ldc, bias, accumulate);
}

void synthd_panel_pack_a_maps(const float *maps, int channels, int cells, int images, int first_tile, int end_tile,
                              float *packed) {
    size_t k = (size_t)cells * images;
    for (int tile = first_tile; tile < end_tile; tile++) {
        float *to = packed + (size_t)tile * A_TILE * k;
        for (int r = 0; r < A_TILE; r++) {
            int channel = tile * A_TILE + r;
            for (int image = 0; image < images; image++) {
                float *column = to + (size_t)image * cells * A_TILE + r;
                if (channel >= channels) {
                    for (int s = 0; s < cells; s++) column[(size_t)s * A_TILE] = 0;
                    continue;
                }
                const float *plane = maps + ((size_t)image * channels + channel) * cells;
                for (int s = 0; s < cells; s++) column[(size_t)s * A_TILE] = plane[s];
            }
        }
    }
}

size_t synthd_panel_packed_a_count(int m, int k) { return (size_t)((m + A_TILE - 1) / A_TILE) * A_TILE * (size_t)k; }

void synthd_panel_pack_a(bool trans_a, const float *a, int lda, int m, int k, int first_tile, int end_tile,
                         float *packed) {
    for (int tile = first_tile; tile < end_tile; tile++) {
        float *to = packed + (size_t)tile * A_TILE * k;
        int first = tile * A_TILE, rows = m - first < A_TILE ? m - first : A_TILE;
        if (trans_a && rows == A_TILE) {   // a constant size: a few vector moves, not a call per depth
            for (int i = 0; i < k; i++) memcpy(to + (size_t)i * A_TILE, a + (size_t)i * lda + first, A_TILE * sizeof(float));
        } else if (trans_a) {   // a stored k x m: a tile's 12 rows at one depth are consecutive floats
            for (int i = 0; i < k; i++) {
                memcpy(to + (size_t)i * A_TILE, a + (size_t)i * lda + first, (size_t)rows * sizeof(float));
                memset(to + (size_t)i * A_TILE + rows, 0, (size_t)(A_TILE - rows) * sizeof(float));
            }
        } else if (rows == A_TILE) {
            // Depth by depth, the 12 rows read as 12 streams and the tile written as one: row by
            // row, each of 12 passes wrote a float in every 48 bytes of a tile larger than L1.
            const float *from = a + (size_t)first * lda;
            for (int i = 0; i < k; i++)
                for (int r = 0; r < A_TILE; r++) to[(size_t)i * A_TILE + r] = from[(size_t)r * lda + i];
        } else {
            for (int r = 0; r < A_TILE; r++) {
                if (r >= rows) {
                    for (int i = 0; i < k; i++) to[(size_t)i * A_TILE + r] = 0;
                    continue;
                }
                const float *row = a + (size_t)(first + r) * lda;
                for (int i = 0; i < k; i++) to[(size_t)i * A_TILE + r] = row[i];
            }
        }
    }
}

void synthd_panel_gemm(synthd_panel_kernel kernel, int m, int n, int k, const float *a, int lda,
                       const float *packed, float *c, int ldc) {
    synthd_panel_gemm_images(kernel, false, m, n, k, a, lda, packed, c, ldc, n, 0, NULL, false);
}

void synthd_panel_gemm_images(synthd_panel_kernel kernel, bool a_packed, int m, int n, int k, const float *a, int lda,
                              const float *packed, float *c, int ldc, int columns_per_image,
                              ptrdiff_t image_stride, const float *bias, bool accumulate) {
    if (m <= 0 || n <= 0) return;
    output_columns out = { c, columns_per_image, image_stride };
    if (k <= 0 && accumulate) {
        if (bias) abort();   // no caller adds a bias to sums it goes on with
        return;
    }
    if (k <= 0) {
        for (int p = 0; p * PANEL < n; p++) {
            int columns = n - p * PANEL < PANEL ? n - p * PANEL : PANEL;
            float *corner = column_start(out, p * PANEL);
            for (int r = 0; r < m; r++)
                for (int j = 0; j < columns; j++) corner[(size_t)r * ldc + j] = bias ? bias[r] : 0;
        }
        return;
    }
    if (kernel == SYNTHD_PANEL_AVX512) {
        if (a_packed) gemm_avx512_tiles(m, n, k, a, packed, out, ldc, bias, accumulate);
        else gemm_avx512_rows(m, n, k, a, lda, packed, out, ldc, bias, accumulate);
    } else {
        if (a_packed) gemm_avx2_tiles(m, n, k, a, packed, out, ldc, bias, accumulate);
        else gemm_avx2_rows(m, n, k, a, lda, packed, out, ldc, bias, accumulate);
    }
}

#else

bool synthd_panel_available(synthd_panel_kernel kernel) { return false; }

size_t synthd_panel_packed_a_count(int m, int k) { return 0; }

void synthd_panel_pack_a_maps(const float *maps, int channels, int cells, int images, int first_tile, int end_tile,
                              float *packed) {
    abort();
}

void synthd_panel_pack_a(bool trans_a, const float *a, int lda, int m, int k, int first_tile, int end_tile,
                         float *packed) {
    abort();
}

void synthd_panel_gemm(synthd_panel_kernel kernel, int m, int n, int k, const float *a, int lda,
                       const float *packed, float *c, int ldc) {
    abort();   // synthd_panel_available() is false here: callers use OpenBLAS
}

void synthd_panel_gemm_images(synthd_panel_kernel kernel, bool a_packed, int m, int n, int k, const float *a, int lda,
                              const float *packed, float *c, int ldc, int columns_per_image,
                              ptrdiff_t image_stride, const float *bias, bool accumulate) {
    abort();
}

#endif
