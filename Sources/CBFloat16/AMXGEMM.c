#include "CBFloat16.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#define AMX_TARGET __attribute__((target("amx-tile,amx-bf16,avx512f,avx512bw,avx512vl,avx512bf16")))
// The steps stay separate functions (noinline) so that profiles show what each costs.
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

// Packed operands, in 1 KB tiles that one tile load reads whole (64-byte rows):
//   a: [row block of 16][k block of 32][16 rows][32 bfloat16]
//   b: [column block of 16][k block of 32][16 pairs of k][16 columns][2 bfloat16] (VNNI)
// Padding (rows, columns, k) is zero, so edge tiles need no masks in the products.

typedef struct {
    uint8_t palette, startRow, reserved[14];
    uint16_t bytesPerRow[16];
    uint8_t rows[16];
} TileConfiguration;

enum { TILE = 16, KBLOCK = 32, TILE_ELEMENTS = TILE * KBLOCK };

/// Per-thread buffers for packed operands (b's, and a's when the caller did not pack it),
/// grown to the largest product the thread has done, freed when the thread ends. Why per
/// thread: the callers are `BLAS.gemmSerial`'s, many small products a step on pool threads,
/// and a malloc per product faulted fresh pages in every time. Why a key with a destructor
/// rather than _Thread_local: the pool's threads come and go (libdispatch retires idle ones),
/// and a long-running daemon would leak each one's buffers.
typedef struct { uint16_t *elements; size_t capacity; } Buffer;
typedef struct { Buffer left, right; } ThreadBuffers;

static pthread_key_t buffersKey;
static pthread_once_t buffersKeyOnce = PTHREAD_ONCE_INIT;

static void free_buffers(void *pointer) {
    ThreadBuffers *buffers = pointer;
    free(buffers->left.elements);
    free(buffers->right.elements);
    free(buffers);
}

static void make_buffers_key(void) {
    if (pthread_key_create(&buffersKey, free_buffers) != 0) abort();
}

static ThreadBuffers *thread_buffers(void) {
    pthread_once(&buffersKeyOnce, make_buffers_key);
    ThreadBuffers *buffers = pthread_getspecific(buffersKey);
    if (!buffers) {
        buffers = calloc(1, sizeof *buffers);
        if (!buffers || pthread_setspecific(buffersKey, buffers) != 0) abort();
    }
    return buffers;
}

static uint16_t *room(Buffer *buffer, size_t count) {
    if (count > buffer->capacity) {
        free(buffer->elements);
        buffer->capacity = count + count / 4;
        buffer->elements = aligned_alloc(64, (buffer->capacity * sizeof(uint16_t) + 63) / 64 * 64);
        if (!buffer->elements) abort();   // as Swift's own allocations: out of memory is fatal
    }
    return buffer->elements;
}

static inline __mmask16 mask_of(int count) {
    return count >= 16 ? 0xffff : count <= 0 ? 0 : (__mmask16)((1u << count) - 1);
}

/// 16 vectors of 16 words (`columns[c]`: column c of a tile, word r its row r) stored as
/// the tile's rows.
AMX_TARGET __attribute__((always_inline)) static inline void store_transposed(const __m512i columns[TILE], uint32_t *tile) {
    uint32_t words[TILE][TILE] __attribute__((aligned(64)));
    for (int c = 0; c < TILE; c++) _mm512_store_si512(words[c], columns[c]);
    for (int r = 0; r < TILE; r++)
        _mm512_storeu_si512(tile + r * TILE, _mm512_i32gather_epi32(
            _mm512_set_epi32(15 * 16, 14 * 16, 13 * 16, 12 * 16, 11 * 16, 10 * 16, 9 * 16, 8 * 16,
                             7 * 16, 6 * 16, 5 * 16, 4 * 16, 3 * 16, 2 * 16, 16, 0), &words[0][r], 4));
}

/// Rows x and y as bfloat16 pairs: word r is (x[r], y[r]).
AMX_TARGET __attribute__((always_inline)) static inline __m512i interleaved(__m512 x, __m512 y) {
    // Interleaves 16 values of x (indices 0-15) with 16 of y (32-47).
    const __m512i order = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8,
                                           39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
    __m256bh low = _mm512_cvtneps_pbh(x), high = _mm512_cvtneps_pbh(y);
    return _mm512_permutex2var_epi16(_mm512_castsi256_si512((__m256i)low), order,
                                     _mm512_castsi256_si512((__m256i)high));
}

/// a (m x k; stored k x m when transposed) into row-block tiles.
AMX_STEP static void pack_a(bool transposed, int m, int k, const float *a, int lda, uint16_t *out) {
    int rowBlocks = (m + TILE - 1) / TILE, kBlocks = (k + KBLOCK - 1) / KBLOCK;
    if (!transposed) {
        for (int i = 0; i < m; i++) {
            const float *row = a + (size_t)i * lda;
            uint16_t *tileRow = out + ((size_t)(i / TILE) * kBlocks * TILE + i % TILE) * KBLOCK;
            for (int kb = 0; kb < kBlocks; kb++) {
                int left = k - kb * KBLOCK;
                __m512 low = _mm512_maskz_loadu_ps(mask_of(left), row + kb * KBLOCK);
                __m512 high = _mm512_maskz_loadu_ps(mask_of(left - 16), row + kb * KBLOCK + 16);
                _mm512_storeu_si512(tileRow + (size_t)kb * TILE_ELEMENTS, (__m512i)_mm512_cvtne2ps_pbh(high, low));
            }
        }
        // The last block's rows past m.
        for (int i = m; i < rowBlocks * TILE; i++) {
            uint16_t *tileRow = out + ((size_t)(i / TILE) * kBlocks * TILE + i % TILE) * KBLOCK;
            for (int kb = 0; kb < kBlocks; kb++) memset(tileRow + (size_t)kb * TILE_ELEMENTS, 0, KBLOCK * sizeof(uint16_t));
        }
    } else {
        // Element (i, p) is a[p * lda + i]: two of a's rows (p, p + 1) give, for 16 values of
        // i, the pair words of one tile column; 16 such columns are then transposed.
        for (int rb = 0; rb < rowBlocks; rb++) {
            __mmask16 mask = mask_of(m - rb * TILE);
            for (int kb = 0; kb < kBlocks; kb++) {
                __m512i columns[TILE];
                for (int pair = 0; pair < TILE; pair++) {
                    int p = kb * KBLOCK + 2 * pair;
                    const float *first = a + (size_t)p * lda + rb * TILE;
                    __m512 x = p < k ? _mm512_maskz_loadu_ps(mask, first) : _mm512_setzero_ps();
                    __m512 y = p + 1 < k ? _mm512_maskz_loadu_ps(mask, first + lda) : _mm512_setzero_ps();
                    columns[pair] = interleaved(x, y);
                }
                store_transposed(columns, (uint32_t *)(out + ((size_t)rb * kBlocks + kb) * TILE_ELEMENTS));
            }
        }
    }
}

/// b (k x n; stored n x k when transposed) into column-block tiles of k pairs.
AMX_STEP static void pack_b(bool transposed, int k, int n, const float *b, int ldb, uint16_t *out) {
    int columnBlocks = (n + TILE - 1) / TILE, kBlocks = (k + KBLOCK - 1) / KBLOCK;
    if (!transposed) {
        for (int kb = 0; kb < kBlocks; kb++) {
            for (int pair = 0; pair < TILE; pair++) {
                int row = kb * KBLOCK + 2 * pair;
                const float *first = b + (size_t)row * ldb, *second = first + ldb;
                bool hasFirst = row < k, hasSecond = row + 1 < k;
                for (int cb = 0; cb < columnBlocks; cb++) {
                    __mmask16 mask = mask_of(n - cb * TILE);
                    __m512 x = hasFirst ? _mm512_maskz_loadu_ps(mask, first + cb * TILE) : _mm512_setzero_ps();
                    __m512 y = hasSecond ? _mm512_maskz_loadu_ps(mask, second + cb * TILE) : _mm512_setzero_ps();
                    _mm512_storeu_si512(out + (((size_t)cb * kBlocks + kb) * TILE + pair) * KBLOCK, interleaved(x, y));
                }
            }
        }
    } else {
        // Element (p, j) is b[j * ldb + p]: a column's k values are contiguous, so 32 of them
        // convert to the 16 pairs of one tile column; 16 columns are then transposed as words.
        for (int cb = 0; cb < columnBlocks; cb++) {
            for (int kb = 0; kb < kBlocks; kb++) {
                int left = k - kb * KBLOCK;
                __m512i columns[TILE];
                for (int c = 0; c < TILE; c++) {
                    int j = cb * TILE + c;
                    if (j >= n) { columns[c] = _mm512_setzero_si512(); continue; }
                    const float *source = b + (size_t)j * ldb + kb * KBLOCK;
                    __m512 low = _mm512_maskz_loadu_ps(mask_of(left), source);
                    __m512 high = _mm512_maskz_loadu_ps(mask_of(left - 16), source + 16);
                    columns[c] = (__m512i)_mm512_cvtne2ps_pbh(high, low);
                }
                // columns[c] holds pair words 0-15 of column c; the tile wants row `pair`, column c.
                store_transposed(columns, (uint32_t *)(out + ((size_t)cb * kBlocks + kb) * TILE_ELEMENTS));
            }
        }
    }
}

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

static size_t tiles_count(int rowsOrColumns, int k) {
    return (size_t)((rowsOrColumns + TILE - 1) / TILE) * ((k + KBLOCK - 1) / KBLOCK) * TILE_ELEMENTS;
}

size_t synthd_amx_packed_a_count(int m, int k) { return tiles_count(m, k); }

void synthd_amx_pack_a(bool transA, int m, int k, const float *a, int lda, uint16_t *packed) {
    pack_a(transA, m, k, a, lda, packed);
}

AMX_TARGET void synthd_amx_gemm_packed(const uint16_t *packedA, bool transB, int m, int n, int k, float alpha,
                                       const float *b, int ldb, float beta, float *c, int ldc) {
    int rowBlocks = (m + TILE - 1) / TILE, columnBlocks = (n + TILE - 1) / TILE, kBlocks = (k + KBLOCK - 1) / KBLOCK;
    uint16_t *packedB = room(&thread_buffers()->right, tiles_count(n, k));
    pack_b(transB, k, n, b, ldb, packedB);

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

AMX_TARGET void synthd_amx_gemm(bool transA, bool transB, int m, int n, int k, float alpha,
                                const float *a, int lda, const float *b, int ldb, float beta,
                                float *c, int ldc) {
    uint16_t *packedA = room(&thread_buffers()->left, tiles_count(m, k));
    pack_a(transA, m, k, a, lda, packedA);
    synthd_amx_gemm_packed(packedA, transB, m, n, k, alpha, b, ldb, beta, c, ldc);
}

#else

bool synthd_amx_available(void) { return false; }

size_t synthd_amx_packed_a_count(int m, int k) { return 0; }

void synthd_amx_pack_a(bool transA, int m, int k, const float *a, int lda, uint16_t *packed) { abort(); }

void synthd_amx_gemm_packed(const uint16_t *packedA, bool transB, int m, int n, int k, float alpha,
                            const float *b, int ldb, float beta, float *c, int ldc) {
    abort();
}

void synthd_amx_gemm(bool transA, bool transB, int m, int n, int k, float alpha,
                     const float *a, int lda, const float *b, int ldb, float beta,
                     float *c, int ldc) {
    abort();   // synthd_amx_available() is false here: callers use Float GEMMs
}

#endif
