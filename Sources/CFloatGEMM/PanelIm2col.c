#include "CFloatGEMM.h"

#include <stdlib.h>
#include <string.h>

// im2col into the panel kernel's panels for the DCGAN geometry (4 x 4 kernel, stride 2,
// padding 1), where every pass of the reference model's columns path lies.
//
// Why a kernel of its own: the general im2col (Sources/Engine/Core/Im2col.swift) computes each
// panel address per grid row of 4 or 8 floats, and it was 6% of an FP32 step on an Emerald
// Rapids, more than its writes cost. Here each padded image row is first split into its even
// and odd columns: tap (kh, kw) of cell (gh, gw) reads padded row 2 gh + kh at column
// 2 gw + kw, which is entry gw + kw / 2 of that row's even (kw even) or odd (kw odd) half. A
// tap's values for a grid row are then one contiguous run, and a panel's 16 cells of one
// channel (16 taps x 16 cells: 1 KiB of the output, contiguous) are copied as 16 runs of 16,
// 32 runs of 8 or 64 runs of 4 floats, of constant length.

enum { PANEL = 16, TAPS = 16 };

/// The even and odd columns of each padded row of one image plane (height + 2 rows, the first
/// and last zero): even[r][i] = padded[r][2i], odd[r][i] = padded[r][2i + 1], i in 0...gw,
/// where padded[r][j] = plane[r - 1][j - 1] inside and 0 on the border.
static void split_rows(const float *plane, int height, int width, float *even, float *odd) {
    int half = width / 2 + 1;
    memset(even, 0, (size_t)half * sizeof(float));
    memset(odd, 0, (size_t)half * sizeof(float));
    for (int r = 1; r <= height; r++) {
        const float *in = plane + (size_t)(r - 1) * width;
        float *e = even + (size_t)r * half, *o = odd + (size_t)r * half;
        e[0] = 0;
        for (int i = 1; i < half; i++) e[i] = in[2 * i - 1];
        for (int i = 0; i < half - 1; i++) o[i] = in[2 * i];
        o[half - 1] = 0;
    }
    memset(even + (size_t)(height + 1) * half, 0, (size_t)half * sizeof(float));
    memset(odd + (size_t)(height + 1) * half, 0, (size_t)half * sizeof(float));
}

/// One panel's block of one channel: 16 taps x 16 cells, cells first_cell... of the plane's grid
/// (grid_width wide). RUN: the floats copied at a time, grid_width or 16 when it is wider; a
/// constant at each call site, so that each copy is a few vector moves.
static inline __attribute__((always_inline)) void panel_block(float *block, const float *even, const float *odd,
                                                              int half, int grid_width, int first_cell, int run) {
    for (int tap = 0; tap < TAPS; tap++) {
        int kh = tap / 4, kw = tap % 4;
        const float *source = (kw & 1 ? odd : even) + (size_t)kh * half + kw / 2;
        float *line = block + tap * PANEL;
        for (int j = 0; j < PANEL; j += run) {
            int cell = first_cell + j, gh = cell / grid_width, gw = cell % grid_width;
            memcpy(line + j, source + (size_t)(2 * gh) * half + gw, (size_t)run * sizeof(float));
        }
    }
}

bool synthd_panel_im2col_k4s2_applies(int height, int width) {
    if (height < 2 || width < 2 || height % 2 || width % 2) return false;
    int grid_width = width / 2, cells = (height / 2) * grid_width;
    return cells % PANEL == 0 && (grid_width == 4 || grid_width == 8 || grid_width % PANEL == 0);
}

void synthd_panel_im2col_k4s2(const float *image, int channels, int height, int width, int images,
                              int first_plane, int end_plane, float *panels) {
    int half = width / 2 + 1, grid_width = width / 2, cells = (height / 2) * grid_width;
    size_t patch = (size_t)channels * TAPS, plane_area = (size_t)height * width;
    float *even = malloc(2 * (size_t)(height + 2) * half * sizeof(float));
    if (!even) abort();
    float *odd = even + (size_t)(height + 2) * half;
    for (int index = first_plane; index < end_plane; index++) {
        int c = index / images, b = index % images;
        split_rows(image + ((size_t)b * channels + c) * plane_area, height, width, even, odd);
        for (int first = 0; first < cells; first += PANEL) {
            size_t panel = ((size_t)b * cells + first) / PANEL;
            float *block = panels + panel * PANEL * patch + (size_t)c * TAPS * PANEL;
            if (grid_width == 4) panel_block(block, even, odd, half, 4, first, 4);
            else if (grid_width == 8) panel_block(block, even, odd, half, 8, first, 8);
            else panel_block(block, even, odd, half, grid_width, first, 16);
        }
    }
    free(even);
}
