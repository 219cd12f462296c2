#include "CBFloat16.h"
#include "BFloat16Tiles.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)

// Why: a convolution's column matrix (im2col) was written in floats and then read again to
// pack it into b's tiles: two passes over a matrix four times the image (16 taps at stride 2),
// about a tenth of a bfloat16 training step. Here the tiles are written from the image itself.
// Only for the geometry of every training convolution of the DCGAN models: 4 x 4 kernel,
// stride 2, padding 1, the image twice the grid (`synthd_columns`).
//
// Column matrix: row p = (channel c, kh, kw) = 16 c + 4 kh + kw; column q = (image, gh, gw);
// element (p, q) = image[c][2 gh + kh - 1][2 gw + kw - 1], zero outside the image.

/// Image columns from x0 on that are inside the image, of `count` lanes (at most 16).
static inline __mmask16 inside(int x0, int count, int width) {
    int first = x0 < 0 ? -x0 : 0, end = width - x0 < count ? width - x0 : count;
    return end <= first ? 0 : (__mmask16)(mask_of(end) & ~mask_of(first));
}

/// `into` with lanes lane..<lane + count (count + lane <= 16) replaced by `count` floats of
/// image row y from column x0 on, zero outside the image. The masked load touches only the
/// image's own floats, so x0 = -1 and rows past the edge need no padded copy; and the values
/// stay in registers (masked stores read back at once stall store forwarding: twice slower).
TILES_TARGET __attribute__((always_inline)) static inline __m512 put_row(
    __m512 into, const float *plane, int height, int width, int y, int x0, int count, int lane) {
    __mmask16 lanes = (__mmask16)(mask_of(count) << lane);
    into = _mm512_maskz_mov_ps((__mmask16)~lanes, into);
    if (y < 0 || y >= height) return into;
    __mmask16 valid = (__mmask16)(inside(x0, count, width) << lane);
    return _mm512_mask_loadu_ps(into, valid, plane + (ptrdiff_t)y * width + x0 - lane);
}

/// Where one load's floats come from: a grid row's run of columns, at the tap (0, 0).
typedef struct { const float *plane; int y, x; } Piece;

/// `put_row` of a piece at tap (kh, kw).
TILES_TARGET __attribute__((always_inline)) static inline __m512 put_piece(
    __m512 into, Piece piece, int height, int width, int kh, int kw, int count, int lane) {
    return put_row(into, piece.plane, height, width, piece.y + kh, piece.x + kw, count, lane);
}

/// b = the column matrix (k = 16 channels, n = images x grid): a tile row is a pair of taps
/// (kw, kw + 1) of one (c, kh) for 16 columns, and along a grid row those pairs are
/// consecutive floats of an image row: (x[2 gw + kw - 1], x[2 gw + kw]). So 16 columns of a
/// grid row are 32 consecutive floats, converted in order; narrower grids take 16 columns
/// from 2 (8 wide) or 4 (4 wide) grid rows. Where each load starts is worked out once for the
/// 8 pairs of taps (the divisions cost more than the loads).
TILES_STEP static void pack_columns(synthd_columns g, const float *image, uint16_t *out) {
    int height = 2 * g.gridHeight, width = 2 * g.gridWidth, gridArea = g.gridHeight * g.gridWidth;
    int k = 16 * g.channels, kBlocks = (k + KBLOCK - 1) / KBLOCK, blocksPerImage = gridArea / TILE;
    // Floats of one grid row in a tile row's 32: two a column, 16 at most a load.
    int piece = 2 * g.gridWidth < TILE ? 2 * g.gridWidth : TILE, pieces = TILE / piece;
    size_t blockStride = (size_t)kBlocks * TILE_ELEMENTS;
    // Plane by plane (each read once, from L1); the tiles are written 64 bytes at a time.
    for (int n = 0; n < g.images; n++) {
        for (int c = 0; c < g.channels; c++) {
            const float *plane = image + ((size_t)n * g.channels + c) * height * width;
            for (int block = 0; block < blocksPerImage; block++) {
                int low[4][2], high[4][2];   // each load's (y, x) at tap (0, 0); pieces <= 4
                for (int i = 0; i < pieces; i++) {
                    int cell = block * TILE + i * piece / 2;
                    low[i][0] = 2 * (cell / g.gridWidth) - 1, low[i][1] = 2 * (cell % g.gridWidth) - 1;
                    cell += TILE / 2;
                    high[i][0] = 2 * (cell / g.gridWidth) - 1, high[i][1] = 2 * (cell % g.gridWidth) - 1;
                }
                uint16_t *tiles = out + ((size_t)n * blocksPerImage + block) * blockStride;
                for (int tapPair = 0; tapPair < 8; tapPair++) {
                    int kh = tapPair / 2, kw = 2 * (tapPair % 2), p = 16 * c + 4 * kh + kw;
                    __m512 lowValues = _mm512_setzero_ps(), highValues = _mm512_setzero_ps();
                    for (int i = 0; i < pieces; i++) {
                        lowValues = put_row(lowValues, plane, height, width, low[i][0] + kh, low[i][1] + kw, piece, i * piece);
                        highValues = put_row(highValues, plane, height, width, high[i][0] + kh, high[i][1] + kw, piece, i * piece);
                    }
                    uint16_t *pairRow = tiles + ((size_t)(p / KBLOCK) * TILE + (p % KBLOCK) / 2) * KBLOCK;
                    _mm512_store_si512(pairRow, (__m512i)_mm512_cvtne2ps_pbh(highValues, lowValues));
                }
            }
        }
    }
    // An odd channel count leaves the last k block's upper 8 pairs past k: zeros.
    if (g.channels % 2) {
        size_t columnBlocks = (size_t)g.images * blocksPerImage;
        for (size_t cb = 0; cb < columnBlocks; cb++)
            memset(out + (cb * kBlocks + kBlocks - 1) * TILE_ELEMENTS + 8 * KBLOCK, 0, 8 * KBLOCK * sizeof(uint16_t));
    }
}

/// b = the column matrix's transpose (k = images x grid, n = 16 channels): a column block is
/// one channel's 16 taps, and a tap's 32 values of a k block are x[2 gw + kw - 1] for 32
/// consecutive columns: every other float of image rows, so 64 consecutive floats (a grid
/// row's run at a time, 16 a load) are loaded and the even ones kept, then converted to 16
/// pairs: a tile column. 16 taps are then transposed into the tile's rows. Grids are a
/// multiple of 16 cells, so a last, partial k block misses whole loads (zeros).
TILES_STEP static void pack_columns_transposed(synthd_columns g, const float *image, uint16_t *out) {
    int height = 2 * g.gridHeight, width = 2 * g.gridWidth, gridArea = g.gridHeight * g.gridWidth;
    int k = g.images * gridArea, kBlocks = (k + KBLOCK - 1) / KBLOCK;
    int piece = 2 * g.gridWidth < TILE ? 2 * g.gridWidth : TILE;   // floats a load: 8 columns at most
    int loads = 4 * TILE / piece;                                     // a k block's 64 floats
    const __m512i evens = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    for (int c = 0; c < g.channels; c++) {
        for (int kb = 0; kb < kBlocks; kb++) {
            Piece pieces[8];   // loads <= 8
            int present = 0;
            for (int i = 0; i < loads; i++) {
                int column = kb * KBLOCK + i * piece / 2;
                if (column >= k) break;
                int n = column / gridArea, cell = column % gridArea;
                pieces[i] = (Piece){image + ((size_t)n * g.channels + c) * height * width,
                                    2 * (cell / g.gridWidth) - 1, 2 * (cell % g.gridWidth) - 1};
                present++;
            }
            for (int i = present; i < 8; i++) pieces[i] = (Piece){image, -height - 4, 0};   // rows outside: zeros
            __m512i columns[TILE];
            for (int tap = 0; tap < TILE; tap++) {
                int kh = tap / 4, kw = tap % 4;
                // The 64 floats in four registers, whatever the loads (registers, not an array:
                // an array indexed at run time lives in memory and stalls store forwarding).
                __m512 raw0 = _mm512_setzero_ps(), raw1 = raw0, raw2 = raw0, raw3 = raw0;
                if (piece == TILE) {
                    raw0 = put_piece(raw0, pieces[0], height, width, kh, kw, TILE, 0);
                    raw1 = put_piece(raw1, pieces[1], height, width, kh, kw, TILE, 0);
                    raw2 = put_piece(raw2, pieces[2], height, width, kh, kw, TILE, 0);
                    raw3 = put_piece(raw3, pieces[3], height, width, kh, kw, TILE, 0);
                } else {
                    raw0 = put_piece(put_piece(raw0, pieces[0], height, width, kh, kw, 8, 0), pieces[1], height, width, kh, kw, 8, 8);
                    raw1 = put_piece(put_piece(raw1, pieces[2], height, width, kh, kw, 8, 0), pieces[3], height, width, kh, kw, 8, 8);
                    raw2 = put_piece(put_piece(raw2, pieces[4], height, width, kh, kw, 8, 0), pieces[5], height, width, kh, kw, 8, 8);
                    raw3 = put_piece(put_piece(raw3, pieces[6], height, width, kh, kw, 8, 0), pieces[7], height, width, kh, kw, 8, 8);
                }
                __m512 low = _mm512_permutex2var_ps(raw0, evens, raw1);
                __m512 high = _mm512_permutex2var_ps(raw2, evens, raw3);
                columns[tap] = (__m512i)_mm512_cvtne2ps_pbh(high, low);
            }
            synthd_tiles_store_transposed(columns, (uint32_t *)(out + ((size_t)c * kBlocks + kb) * TILE_ELEMENTS));
        }
    }
}

bool synthd_bf16_columns_fit(synthd_columns g) {
    int area = g.gridHeight * g.gridWidth;
    return g.images > 0 && g.channels > 0 && g.gridHeight > 0 && area % TILE == 0
        && (g.gridWidth == 4 || g.gridWidth == 8 || g.gridWidth % TILE == 0);
}

ColumnOperands synthd_tiles_column_operands(const uint16_t *packedA, bool transA, const float *a, int lda,
                                            synthd_columns g, bool transposed, const float *image, int m) {
    if (!synthd_bf16_columns_fit(g)) abort();   // the Swift side checks first (BFloat16Kernel)
    int patch = 16 * g.channels, columns = g.images * g.gridHeight * g.gridWidth;
    ColumnOperands operands = {NULL, NULL, transposed ? columns : patch, transposed ? patch : columns};
    uint16_t *packed = synthd_tiles_room(&synthd_tiles_thread_buffers()->right, synthd_tiles_count(operands.n, operands.k));
    if (transposed) pack_columns_transposed(g, image, packed);
    else pack_columns(g, image, packed);
    operands.b = packed;
    operands.a = synthd_tiles_left(packedA, transA, m, operands.k, a, lda);
    return operands;
}

#else

bool synthd_bf16_columns_fit(synthd_columns g) { return false; }

#endif
