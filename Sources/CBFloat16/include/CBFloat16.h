#ifndef SYNTHD_CBFLOAT16_H
#define SYNTHD_CBFLOAT16_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/// Matrix products with bfloat16 operands and float sums, by AVX512-BF16's dot-product
/// instruction (twice the multiply-adds of a float FMA per cycle). Debian's OpenBLAS is built
/// without its bfloat16 GEMM (cblas_sbgemm), so the engine carries this one kernel; see
/// Sources/Engine/Core/BFloat16GEMM.swift for where it is used and why.

/// Whether this CPU (and the OS, which must save the 512-bit registers) runs the kernel.
bool synthd_bf16_available(void);

/// The float nearest to bfloat16 rounding of `value` (round to nearest, ties to even), as the
/// kernel rounds its operands: for references in tests.
float synthd_bf16_round(float value);

/// uint16 elements that `synthd_bf16_pack` writes for a k x n right operand.
size_t synthd_bf16_packed_count(int k, int n);

/// Packs b (k x n, row stride ldb, floats) for `synthd_bf16_gemm`: rows taken in pairs, each
/// column's two values side by side as bfloat16, columns padded to a multiple of 16 and a
/// missing last row with zeros.
void synthd_bf16_pack(const float *b, int ldb, int k, int n, uint16_t *packed);

/// uint16 elements of scratch that `synthd_bf16_gemm` needs for an m x k left operand.
size_t synthd_bf16_scratch_count(int m, int k);

/// c (m x n, row stride ldc) = a (m x k, row stride lda) . b, with b packed by
/// `synthd_bf16_pack`. Both operands are rounded to bfloat16; products are exact and summed in
/// float. Only on a CPU where `synthd_bf16_available()`.
void synthd_bf16_gemm(int m, int n, int k, const float *a, int lda, const uint16_t *packed,
                      float *c, int ldc, uint16_t *scratch);

/// AMX (Sapphire Rapids and later): whether the CPU has bfloat16 tiles and Linux granted this
/// process their state (arch_prctl ARCH_REQ_XCOMP_PERM, asked once here).
bool synthd_amx_available(void);

/// c (m x n, row stride ldc) = alpha * op(a) . op(b) + beta * c, as cblas_sgemm (row-major;
/// op(a) is m x k, stored k x m when transA; op(b) is k x n, stored n x k when transB), with
/// both operands rounded to bfloat16, exact products and float sums, by AMX tiles. Runs on the
/// calling thread. Only where `synthd_amx_available()`.
void synthd_amx_gemm(bool transA, bool transB, int m, int n, int k, float alpha,
                     const float *a, int lda, const float *b, int ldb, float beta,
                     float *c, int ldc);

/// uint16 elements of an m x k left operand packed by `synthd_bf16_tiles_pack_a`.
size_t synthd_bf16_tiles_packed_a_count(int m, int k);

/// op(a) (m x k; a stored k x m when transA) rounded to bfloat16 and laid out in tiles, once
/// for many `synthd_amx_gemm_packed` or `synthd_dot_gemm_packed` (a layer's weights across
/// the chunks of a batch): both kernels read the same layout.
void synthd_bf16_tiles_pack_a(bool transA, int m, int k, const float *a, int lda, uint16_t *packed);

/// `synthd_amx_gemm` with the left operand packed already.
void synthd_amx_gemm_packed(const uint16_t *packedA, bool transB, int m, int n, int k, float alpha,
                            const float *b, int ldb, float beta, float *c, int ldc);

/// `synthd_amx_gemm`'s contract (op(a) . op(b), bfloat16 operands, exact products, float
/// sums) by AVX512-BF16 dot products on the same packed tiles, for CPUs that have the
/// instruction but no AMX (AMD Zen 4, Intel Cooper Lake): twice a float FMA's multiply-adds
/// per cycle. Runs on the calling thread. Only where `synthd_bf16_available()`.
void synthd_dot_gemm(bool transA, bool transB, int m, int n, int k, float alpha,
                     const float *a, int lda, const float *b, int ldb, float beta,
                     float *c, int ldc);

/// `synthd_dot_gemm` with the left operand packed already (`synthd_bf16_tiles_pack_a`).
void synthd_dot_gemm_packed(const uint16_t *packedA, bool transB, int m, int n, int k, float alpha,
                            const float *b, int ldb, float beta, float *c, int ldc);

/// A batch of `images` images of `channels` planes, each twice the grid (2 gridHeight x
/// 2 gridWidth), convolved with 4 x 4 kernels at stride 2, padding 1: the geometry of every
/// training convolution of the DCGAN models, whose column matrix (im2col: row 16 c + 4 kh + kw,
/// column (image, gh, gw)) the two kernels below pack into tiles straight from the image.
typedef struct { int images, channels, gridHeight, gridWidth; } synthd_columns;

/// Whether the column kernels take `g`: grids of a multiple of 16 cells, 4, 8 or a multiple
/// of 16 wide.
bool synthd_bf16_columns_fit(synthd_columns g);

/// c (m x n, row stride ldc) = alpha * op(a) . b + beta * c, as `synthd_amx_gemm`, where b is
/// `g`'s column matrix of `image` (k = 16 channels, n = images x grid) or, with `transposed`,
/// its transpose (k = images x grid, n = 16 channels); op(a) as given, or packed already
/// (`packedA`, else NULL). No float column matrix is written. Only where
/// `synthd_bf16_columns_fit(g)`.
void synthd_amx_gemm_columns(const uint16_t *packedA, bool transA, const float *a, int lda,
                             synthd_columns g, bool transposed, const float *image,
                             int m, float alpha, float beta, float *c, int ldc);

/// `synthd_amx_gemm_columns` by AVX512-BF16 dot products.
void synthd_dot_gemm_columns(const uint16_t *packedA, bool transA, const float *a, int lda,
                             synthd_columns g, bool transposed, const float *image,
                             int m, float alpha, float beta, float *c, int ldc);

#endif
