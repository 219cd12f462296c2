#ifndef SYNTHD_BFLOAT16_TILES_H
#define SYNTHD_BFLOAT16_TILES_H

// The packed-operand layout that both bfloat16 training kernels read (AMXGEMM.c's tiles and
// DotProductGEMM.c's vectors), the packing and the per-thread buffers. Private to CBFloat16.

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define TILES_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
// The steps stay separate functions (noinline) so that profiles show what each costs.
#define TILES_STEP TILES_TARGET __attribute__((noinline))

// Packed operands, in 1 KB tiles that one tile load reads whole (64-byte rows):
//   a: [row block of 16][k block of 32][16 rows][32 bfloat16]
//   b: [column block of 16][k block of 32][16 pairs of k][16 columns][2 bfloat16] (VNNI)
// Padding (rows, columns, k) is zero, so edge tiles need no masks in the products.

enum { TILE = 16, KBLOCK = 32, TILE_ELEMENTS = TILE * KBLOCK };

/// Elements of an operand of `rowsOrColumns` rows (a) or columns (b) and depth k, packed.
static inline size_t synthd_tiles_count(int rowsOrColumns, int k) {
    return (size_t)((rowsOrColumns + TILE - 1) / TILE) * ((k + KBLOCK - 1) / KBLOCK) * TILE_ELEMENTS;
}

static inline __mmask16 mask_of(int count) {
    return count >= 16 ? 0xffff : count <= 0 ? 0 : (__mmask16)((1u << count) - 1);
}

/// Per-thread buffers for packed operands (b's, and a's when the caller did not pack it),
/// grown to the largest product the thread has done, freed when the thread ends. Why per
/// thread: the callers are `BLAS.gemmSerial`'s, many small products a step on pool threads,
/// and a malloc per product faulted fresh pages in every time. Why a key with a destructor
/// rather than _Thread_local: the pool's threads come and go (libdispatch retires idle ones),
/// and a long-running daemon would leak each one's buffers.
typedef struct { uint16_t *elements; size_t capacity; } Buffer;
typedef struct { Buffer left, right; } ThreadBuffers;

/// The calling thread's buffers (freed when the thread ends).
ThreadBuffers *synthd_tiles_thread_buffers(void);
/// `buffer`, grown to at least `count` elements, 64-byte aligned.
uint16_t *synthd_tiles_room(Buffer *buffer, size_t count);

/// 16 vectors of 16 words (`columns[c]`: column c of a tile, word r its row r) stored as
/// the tile's rows: a 16 x 16 transpose in registers (words, pairs of words, 128-bit lanes,
/// then 256-bit halves), where 16 gathers from a copy in memory took three times as long.
TILES_TARGET __attribute__((always_inline)) static inline void synthd_tiles_store_transposed(const __m512i columns[TILE], uint32_t *tile) {
    __m512i r[TILE], t[TILE];
    for (int i = 0; i < TILE; i += 2) {
        t[i] = _mm512_unpacklo_epi32(columns[i], columns[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(columns[i], columns[i + 1]);
    }
    for (int i = 0; i < TILE; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_i32x4(r[i], r[i + 4], 0xdd);
        t[i + 8] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0x88);
        t[i + 12] = _mm512_shuffle_i32x4(r[i + 8], r[i + 12], 0xdd);
    }
    for (int i = 0; i < TILE / 2; i++) {
        _mm512_storeu_si512(tile + i * TILE, _mm512_shuffle_i32x4(t[i], t[i + 8], 0x88));
        _mm512_storeu_si512(tile + (i + 8) * TILE, _mm512_shuffle_i32x4(t[i], t[i + 8], 0xdd));
    }
}

// a's packing is public: synthd_bf16_tiles_pack_a (CBFloat16.h), for PackedLeftOperand.
/// b (k x n; stored n x k when transposed) into column-block tiles of k pairs.
void synthd_tiles_pack_b(bool transposed, int k, int n, const float *b, int ldb, uint16_t *out);

/// `packedA`, or op(a) packed into the calling thread's buffer when it is NULL.
const uint16_t *synthd_tiles_left(const uint16_t *packedA, bool transA, int m, int k, const float *a, int lda);

/// Both operands of a product whose b is a column matrix, packed, and its depth and columns.
typedef struct { const uint16_t *a, *b; int k, n; } ColumnOperands;
/// op(a) as `synthd_tiles_left` packs it, and `g`'s column matrix of `image` (or its
/// transpose) packed as b into the calling thread's buffer straight from the image
/// (ColumnTiles.c), for the kernels' `*_gemm_columns`. Only where `synthd_bf16_columns_fit(g)`.
ColumnOperands synthd_tiles_column_operands(const uint16_t *packedA, bool transA, const float *a, int lda,
                                            synthd_columns g, bool transposed, const float *image, int m);

#endif
#endif
