#ifndef SYNTHD_CFLOATGEMM_H
#define SYNTHD_CFLOATGEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/// Float matrix products whose right operand was packed once, for Winograd's products in
/// training (Sources/Engine/Core/PanelGEMM.swift says where and why): OpenBLAS packs both
/// operands on every call, and with a few hundred rows a call that packing was 12% of a
/// two-thread step. Here the right operand (the transformed weights, the same for a whole
/// step) is packed when the weights change (by the transforms themselves, in this layout), and
/// the left one is read where it lies.

/// The kernels: AVX2 with FMA (8 floats a register, micro-tiles of 6 rows x 16 columns) and
/// AVX-512 (16 floats, 12 rows x 32 columns).
typedef enum { SYNTHD_PANEL_AVX2 = 1, SYNTHD_PANEL_AVX512 = 2 } synthd_panel_kernel;

/// Whether this CPU (and the OS, for AVX-512's registers) runs `kernel`.
bool synthd_panel_available(synthd_panel_kernel kernel);

/// Floats that `synthd_panel_pack` writes for a k x n right operand: panels of 16 columns
/// (n rounded up), each k rows of 16 floats.
size_t synthd_panel_packed_count(int k, int n);

/// Packs b (k x n, row stride ldb) into panels of 16 columns, the columns past n zero.
void synthd_panel_pack(const float *b, int ldb, int k, int n, float *packed);

/// As `synthd_panel_pack`, with b's columns in images of `columns_per_image` (a multiple of 16,
/// or n), `image_stride` floats apart: column j at b + (j / columns_per_image) * image_stride +
/// j % columns_per_image. A batch of NCHW maps (ldb = H*W = columns_per_image, image_stride =
/// C*H*W) is then the C x (images * H*W) matrix the columns path multiplies, packed with no
/// transposition first.
void synthd_panel_pack_images(const float *b, int ldb, int k, int n, int columns_per_image,
                              ptrdiff_t image_stride, float *packed);

/// c (m x n, row stride ldc) = a (m x k, row stride lda) . b, with b packed by
/// `synthd_panel_pack`; only on a CPU where `synthd_panel_available(kernel)`. Sums run over k
/// in order, one FMA at a time, as a naive loop's would in float.
void synthd_panel_gemm(synthd_panel_kernel kernel, int m, int n, int k, const float *a, int lda,
                       const float *packed, float *c, int ldc);

/// As `synthd_panel_gemm`, with c's columns in images as `synthd_panel_pack_images` reads b's
/// (columns_per_image a multiple of 16, or n), plus bias[row] after each sum when bias is not
/// NULL: a convolution over a batch writes its NCHW output (ldc = H*W, image_stride = C*H*W)
/// with its bias, where a product into a C x (images * H*W) matrix had to be transposed after.
/// With `a_packed`, a was packed by `synthd_panel_pack_a` (lda unused). With `accumulate`, the
/// sums go on from c's values (c += a . b, each chain continued: a weight gradient summed over
/// chunks is the one chain over all of them).
void synthd_panel_gemm_images(synthd_panel_kernel kernel, bool a_packed, int m, int n, int k, const float *a, int lda,
                              const float *packed, float *c, int ldc, int columns_per_image,
                              ptrdiff_t image_stride, const float *bias, bool accumulate);

/// Tiles first_tile..<end_tile of the channels x (images * cells) matrix of a batch of NCHW
/// maps (maps (images, channels, cells)), packed as `synthd_panel_pack_a` packs: a weight
/// gradient's left operand (dy, or a transposed convolution's x) without a transposition first.
void synthd_panel_pack_a_maps(const float *maps, int channels, int cells, int images, int first_tile, int end_tile,
                              float *packed);

/// Rows of a packed left-operand tile: one AVX-512 micro-tile, two AVX2 ones.
enum { SYNTHD_PANEL_TILE_ROWS = 12 };

/// Floats `synthd_panel_pack_a` writes for an m x k left operand: tiles of 12 rows (m rounded
/// up), each k x 12 floats.
size_t synthd_panel_packed_a_count(int m, int k);

/// Packs tiles first_tile..<end_tile of op(a) (m x k; a stored k x m, row stride lda, when
/// trans_a) into tiles of 12 rows, each depth's 12 floats consecutive (rows past m zero): the
/// micro-tiles then read one stream where they read 12 rows, which for a matrix wider than
/// 1 KiB fell into one L1 set (and down a column of a, each depth in another).
void synthd_panel_pack_a(bool trans_a, const float *a, int lda, int m, int k, int first_tile, int end_tile,
                         float *packed);

/// Whether `synthd_panel_im2col_k4s2` takes images of height x width: both even, a grid of a
/// multiple of 16 cells, 4, 8 or a multiple of 16 cells wide.
bool synthd_panel_im2col_k4s2_applies(int height, int width);

/// im2col of planes first_plane..<end_plane (plane c * images + b) of a batch of NCHW images
/// (images, channels, height, width) for a 4 x 4 kernel at stride 2 with padding 1 (a grid of
/// height/2 x width/2 cells), written in the panel kernel's panels of 16 columns: column
/// b * cells + cell, row c * 16 + kh * 4 + kw, at panels + (column / 16) * 16 * channels * 16 +
/// row * 16 + column % 16. Only where `synthd_panel_im2col_k4s2_applies(height, width)`.
void synthd_panel_im2col_k4s2(const float *image, int channels, int height, int width, int images,
                              int first_plane, int end_plane, float *panels);

/// Whether this CPU runs `synthd_half_panel_gemm` (AVX512-FP16, with AVX-512's BW, VL and DQ).
bool synthd_half_panel_available(void);

/// 32-bit words and scales that `synthd_half_panel_convert_a` writes for an m x k left operand.
size_t synthd_half_panel_halves_count(int m, int k);
size_t synthd_half_panel_scales_count(int m, int k);

/// Tiles first_tile..<end_tile of a left operand packed by `synthd_panel_pack_a` (m x k)
/// converted to the halves `synthd_half_panel_gemm` multiplies, each tile's blocks of depths
/// with their own scale: for a left operand that several products read (a layer's weights,
/// read by every chunk of a pass), converted once instead of by each product.
void synthd_half_panel_convert_a(const float *tiles, int m, int k, int first_tile, int end_tile, uint32_t *halves,
                                 float *scales);

/// As `synthd_panel_gemm_images`, but the products in half precision (HalfPanelGEMM.c says
/// how it scales and rounds): a in tiles (`a_tiles`) or rows (row stride lda), b packed by
/// `synthd_panel_pack` or `synthd_panel_im2col_k4s2`, on the calling thread. With `a_halves`
/// (and `a_scales`), a's tiles as `synthd_half_panel_convert_a` converted them (a is then
/// not read). Only where `synthd_half_panel_available()`; k > 0.
void synthd_half_panel_gemm(int m, int n, int k, const float *a, bool a_tiles, int lda, const uint32_t *a_halves,
                            const float *a_scales, const float *packed, float *c, int ldc, int columns_per_image,
                            ptrdiff_t image_stride, const float *bias, bool accumulate_c);

#endif
