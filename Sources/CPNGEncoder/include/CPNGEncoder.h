#ifndef SYNTHD_CPNGENCODER_H
#define SYNTHD_CPNGENCODER_H

#include <stddef.h>
#include <stdint.h>

/// Encodes 8-bit grey (channels 1) or RGB (channels 3) pixels, rows of width * channels bytes,
/// as a PNG through libpng's full API, with zlib's memory level and compression level chosen
/// for small images (see Sources/Imaging/PNG.swift). libpng reports errors by longjmp; the
/// setjmp is here, so no jump crosses a Swift frame. On success returns 1 and sets *out (free
/// with free()) and *size; on failure returns 0 with libpng's message in `message`.
int synthd_png_encode(const uint8_t *pixels, int width, int height, int channels, int compressionLevel,
                      int memoryLevel, uint8_t **out, size_t *size, char *message, size_t messageCapacity);

#endif
