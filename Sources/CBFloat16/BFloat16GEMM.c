#include "CBFloat16.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define KERNEL_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#endif

bool synthd_bf16_available(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
#else
    return false;
#endif
}

static uint16_t to_bf16(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    bits += 0x7fff + ((bits >> 16) & 1);   // round to nearest, ties to even (no NaNs here)
    return (uint16_t)(bits >> 16);
}

float synthd_bf16_round(float value) {
    uint32_t bits = (uint32_t)to_bf16(value) << 16;
    float rounded;
    memcpy(&rounded, &bits, sizeof rounded);
    return rounded;
}

static int padded_columns(int n) { return (n + 15) / 16 * 16; }

size_t synthd_bf16_packed_count(int k, int n) { return (size_t)((k + 1) / 2) * padded_columns(n) * 2; }

#if defined(__x86_64__)
static int pack_vectors(const float *b, int ldb, int k, int n, uint16_t *packed);
static pthread_once_t availabilityOnce = PTHREAD_ONCE_INIT;
static bool vectorsAvailable;
static void noteAvailability(void) { vectorsAvailable = synthd_bf16_available(); }
#endif

void synthd_bf16_pack(const float *b, int ldb, int k, int n, uint16_t *packed) {
    int pairs = (k + 1) / 2, columns = padded_columns(n);
    int vectorColumns = 0;   // columns already packed by the vector path
#if defined(__x86_64__)
    pthread_once(&availabilityOnce, noteAvailability);   // callers pack from several threads
    if (vectorsAvailable) vectorColumns = pack_vectors(b, ldb, k, n, packed);
#endif
    for (int pair = 0; pair < pairs; pair++) {
        for (int j = vectorColumns; j < columns; j++) {
            for (int half = 0; half < 2; half++) {
                int row = 2 * pair + half;
                float value = row < k && j < n ? b[(size_t)row * ldb + j] : 0;
                packed[((size_t)pair * columns + j) * 2 + half] = to_bf16(value);
            }
        }
    }
}

size_t synthd_bf16_scratch_count(int m, int k) { return (size_t)m * ((k + 1) / 2) * 2 + 32; }

#if defined(__x86_64__)

/// The whole 16-column blocks of `synthd_bf16_pack`, 16 pairs a step (what packing a
/// convolution's columns for every batch needs); returns the columns it packed.
KERNEL_TARGET static int pack_vectors(const float *b, int ldb, int k, int n, uint16_t *packed) {
    int pairs = (k + 1) / 2, columns = padded_columns(n), whole = n / 16 * 16;
    // Interleaves 16 values of the pair's first row (indices 0-15) with 16 of its second (32-47).
    __m512i order = _mm512_set_epi16(47, 15, 46, 14, 45, 13, 44, 12, 43, 11, 42, 10, 41, 9, 40, 8,
                                     39, 7, 38, 6, 37, 5, 36, 4, 35, 3, 34, 2, 33, 1, 32, 0);
    for (int pair = 0; pair < pairs; pair++) {
        const float *first = b + (size_t)(2 * pair) * ldb, *second = first + ldb;
        bool hasSecond = 2 * pair + 1 < k;
        for (int j = 0; j < whole; j += 16) {
            __m256bh low = _mm512_cvtneps_pbh(_mm512_loadu_ps(first + j));
            __m256bh high = _mm512_cvtneps_pbh(hasSecond ? _mm512_loadu_ps(second + j) : _mm512_setzero_ps());
            __m512i both = _mm512_permutex2var_epi16(_mm512_castsi256_si512((__m256i)low), order,
                                                     _mm512_castsi256_si512((__m256i)high));
            _mm512_storeu_si512(packed + ((size_t)pair * columns + j) * 2, both);
        }
    }
    return whole;
}

/// Rows of a, rounded to bfloat16, each padded with zeros to an even length.
KERNEL_TARGET static void convert_rows(int m, int k, const float *a, int lda, uint16_t *out) {
    int stride = (k + 1) / 2 * 2;
    for (int i = 0; i < m; i++) {
        const float *row = a + (size_t)i * lda;
        uint16_t *target = out + (size_t)i * stride;
        int j = 0;
        for (; j + 32 <= k; j += 32) {
            __m512bh pair = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(row + j + 16), _mm512_loadu_ps(row + j));
            _mm512_storeu_si512(target + j, (__m512i)pair);
        }
        for (; j < stride; j++) target[j] = j < k ? to_bf16(row[j]) : 0;
    }
}

/// A rows x (16 vecs) block of c (a: rows of `aStride` bfloat16 pairs): for every pair of k, `vecs` vectors of packed b, and for
/// each row its pair of a broadcast into one dot-product per vector. Inlined with constant
/// `rows` and `vecs`, so the accumulators stay in registers.
KERNEL_TARGET __attribute__((always_inline)) static inline void block(
    int rows, int vecs, int pairs, const uint16_t *a, int aStride, const uint16_t *b, int bStride,
    float *c, int ldc, int columnsLeft) {
    __m512 sums[4][4];
    for (int i = 0; i < rows; i++)
        for (int v = 0; v < vecs; v++) sums[i][v] = _mm512_setzero_ps();
    for (int p = 0; p < pairs; p++) {
        const uint16_t *bp = b + (size_t)p * bStride;
        __m512bh columns[4];
        for (int v = 0; v < vecs; v++) columns[v] = (__m512bh)_mm512_loadu_si512(bp + 32 * v);
        for (int i = 0; i < rows; i++) {
            int pair;   // a's two values at 2p, 2p + 1 (memcpy: read as one 32-bit word without aliasing)
            memcpy(&pair, a + 2 * ((size_t)i * aStride + p), sizeof pair);
            __m512bh x = (__m512bh)_mm512_set1_epi32(pair);
            for (int v = 0; v < vecs; v++) sums[i][v] = _mm512_dpbf16_ps(sums[i][v], x, columns[v]);
        }
    }
    for (int i = 0; i < rows; i++) {
        for (int v = 0; v < vecs; v++) {
            int left = columnsLeft - 16 * v;
            float *target = c + (size_t)i * ldc + 16 * v;
            if (left >= 16) _mm512_storeu_ps(target, sums[i][v]);
            else if (left > 0) _mm512_mask_storeu_ps(target, (__mmask16)((1u << left) - 1), sums[i][v]);
        }
    }
}

/// Rows i..<i + rows (1 to 4) of c, across all columns: 64 at a time, then 16.
KERNEL_TARGET __attribute__((always_inline)) static inline void row_block(
    int rows, int n, int pairs, const uint16_t *a, int aStride, const uint16_t *packed, int bStride,
    float *c, int ldc) {
    int j = 0;
    for (; j + 64 <= n; j += 64) block(rows, 4, pairs, a, aStride, packed + 2 * j, bStride, c + j, ldc, n - j);
    for (; j < n; j += 16) block(rows, 1, pairs, a, aStride, packed + 2 * j, bStride, c + j, ldc, n - j);
}

KERNEL_TARGET void synthd_bf16_gemm(int m, int n, int k, const float *a, int lda, const uint16_t *packed,
                                    float *c, int ldc, uint16_t *scratch) {
    int pairs = (k + 1) / 2, bStride = padded_columns(n) * 2;
    convert_rows(m, k, a, lda, scratch);
    const uint16_t *rowsOfA = scratch;   // each row: `pairs` bfloat16 pairs
    int i = 0;
    for (; i + 4 <= m; i += 4)
        row_block(4, n, pairs, rowsOfA + (size_t)i * 2 * pairs, pairs, packed, bStride, c + (size_t)i * ldc, ldc);
    switch (m - i) {
    case 3: row_block(3, n, pairs, rowsOfA + (size_t)i * 2 * pairs, pairs, packed, bStride, c + (size_t)i * ldc, ldc); break;
    case 2: row_block(2, n, pairs, rowsOfA + (size_t)i * 2 * pairs, pairs, packed, bStride, c + (size_t)i * ldc, ldc); break;
    case 1: row_block(1, n, pairs, rowsOfA + (size_t)i * 2 * pairs, pairs, packed, bStride, c + (size_t)i * ldc, ldc); break;
    default: break;
    }
}

#else

void synthd_bf16_gemm(int m, int n, int k, const float *a, int lda, const uint16_t *packed,
                      float *c, int ldc, uint16_t *scratch) {
    abort();   // synthd_bf16_available() is false here: callers use Float GEMMs
}

#endif
