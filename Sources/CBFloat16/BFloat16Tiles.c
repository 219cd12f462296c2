#include "CBFloat16.h"
#include "BFloat16Tiles.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)

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

ThreadBuffers *synthd_tiles_thread_buffers(void) {
    pthread_once(&buffersKeyOnce, make_buffers_key);
    ThreadBuffers *buffers = pthread_getspecific(buffersKey);
    if (!buffers) {
        buffers = calloc(1, sizeof *buffers);
        if (!buffers || pthread_setspecific(buffersKey, buffers) != 0) abort();
    }
    return buffers;
}

uint16_t *synthd_tiles_room(Buffer *buffer, size_t count) {
    if (count > buffer->capacity) {
        free(buffer->elements);
        buffer->capacity = count + count / 4;
        buffer->elements = aligned_alloc(64, (buffer->capacity * sizeof(uint16_t) + 63) / 64 * 64);
        if (!buffer->elements) abort();   // as Swift's own allocations: out of memory is fatal
    }
    return buffer->elements;
}

/// Rows x and y as bfloat16 pairs: word r is (x[r], y[r]).
TILES_TARGET __attribute__((always_inline)) static inline __m512i interleaved(__m512 x, __m512 y) {
    // Interleaves 16 values of x (indices 0-15) with 16 of y (32-47).
    const __m512i order = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8,
                                           39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
    __m256bh low = _mm512_cvtneps_pbh(x), high = _mm512_cvtneps_pbh(y);
    return _mm512_permutex2var_epi16(_mm512_castsi256_si512((__m256i)low), order,
                                     _mm512_castsi256_si512((__m256i)high));
}

/// a (m x k; stored k x m when transposed) into row-block tiles.
TILES_STEP void synthd_bf16_tiles_pack_a(bool transposed, int m, int k, const float *a, int lda, uint16_t *out) {
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
                synthd_tiles_store_transposed(columns, (uint32_t *)(out + ((size_t)rb * kBlocks + kb) * TILE_ELEMENTS));
            }
        }
    }
}

/// b (k x n; stored n x k when transposed) into column-block tiles of k pairs.
TILES_STEP void synthd_tiles_pack_b(bool transposed, int k, int n, const float *b, int ldb, uint16_t *out) {
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
                synthd_tiles_store_transposed(columns, (uint32_t *)(out + ((size_t)cb * kBlocks + kb) * TILE_ELEMENTS));
            }
        }
    }
}

const uint16_t *synthd_tiles_left(const uint16_t *packedA, bool transA, int m, int k, const float *a, int lda) {
    if (packedA) return packedA;
    uint16_t *packed = synthd_tiles_room(&synthd_tiles_thread_buffers()->left, synthd_tiles_count(m, k));
    synthd_bf16_tiles_pack_a(transA, m, k, a, lda, packed);
    return packed;
}

size_t synthd_bf16_tiles_packed_a_count(int m, int k) { return synthd_tiles_count(m, k); }

#else

size_t synthd_bf16_tiles_packed_a_count(int m, int k) { return 0; }

void synthd_bf16_tiles_pack_a(bool transA, int m, int k, const float *a, int lda, uint16_t *packed) { abort(); }

#endif
