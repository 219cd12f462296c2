#include "CPNGEncoder.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

/// The growing output buffer and the error message, reached from libpng's callbacks.
typedef struct {
    uint8_t *bytes;
    size_t size, capacity;
    char *message;
    size_t messageCapacity;
    int failed;
} Output;

static void append(png_structp png, png_bytep data, size_t length) {
    Output *output = png_get_io_ptr(png);
    if (output->size + length > output->capacity) {
        size_t capacity = output->capacity * 2 > output->size + length ? output->capacity * 2 : output->size + length;
        uint8_t *grown = realloc(output->bytes, capacity);
        if (grown == NULL) png_error(png, "out of memory");
        output->bytes = grown;
        output->capacity = capacity;
    }
    memcpy(output->bytes + output->size, data, length);
    output->size += length;
}

static void flush(png_structp png) { (void)png; }

static void fail(png_structp png, png_const_charp text) {
    Output *output = png_get_error_ptr(png);
    if (output->messageCapacity > 0) {
        strncpy(output->message, text, output->messageCapacity - 1);
        output->message[output->messageCapacity - 1] = 0;
    }
    png_longjmp(png, 1);
}

static void warn(png_structp png, png_const_charp text) { (void)png; (void)text; }

int synthd_png_encode(const uint8_t *pixels, int width, int height, int channels, int compressionLevel,
                      int memoryLevel, uint8_t **out, size_t *size, char *message, size_t messageCapacity) {
    Output *output = calloc(1, sizeof(Output));
    if (output == NULL) return 0;
    output->message = message;
    output->messageCapacity = messageCapacity;
    output->capacity = (size_t)width * height * channels + height + 1024;
    output->bytes = malloc(output->capacity);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, output, fail, warn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (output->bytes == NULL || png == NULL || info == NULL) {
        if (messageCapacity > 0) strncpy(message, "out of memory", messageCapacity - 1);
        png_destroy_write_struct(&png, &info);
        free(output->bytes);
        free(output);
        return 0;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(output->bytes);
        free(output);
        return 0;
    }
    png_set_write_fn(png, output, append, flush);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_filter(png, PNG_FILTER_TYPE_BASE, PNG_FILTER_NONE);
    png_set_compression_level(png, compressionLevel);
    png_set_compression_mem_level(png, memoryLevel);
    png_write_info(png, info);
    for (int row = 0; row < height; row++) png_write_row(png, pixels + (size_t)row * width * channels);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    *out = output->bytes;
    *size = output->size;
    free(output);
    return 1;
}
