#ifndef SYNTHD_CFLOATGEMM_H
#define SYNTHD_CFLOATGEMM_H

#include <stdbool.h>
#include <stddef.h>

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

/// c (m x n, row stride ldc) = a (m x k, row stride lda) . b, with b packed by
/// `synthd_panel_pack`; only on a CPU where `synthd_panel_available(kernel)`. Sums run over k
/// in order, one FMA at a time, as a naive loop's would in float.
void synthd_panel_gemm(synthd_panel_kernel kernel, int m, int n, int k, const float *a, int lda,
                       const float *packed, float *c, int ldc);

#endif
