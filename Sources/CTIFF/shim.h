#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <tiffio.h>

/* libtiff's tag getters and its error handlers are variadic (a va_list), which Swift cannot
   call or implement: these few helpers do it in C. Errors go to the reader's own buffer
   through TIFFOpenOptions (libtiff 4.5), never to the process-wide handlers, which print to
   standard error and would be shared by every thread decoding at once. */

typedef struct {
    char message[256];
} synthd_tiff_errors;

/* Keeps the first error (the cause; later ones are its consequences). Returning 1 keeps the
   global handler from also being called. */
static inline int synthd_tiff_error(TIFF *tiff, void *user, const char *module, const char *format, va_list arguments) {
    (void)tiff; (void)module;
    synthd_tiff_errors *errors = (synthd_tiff_errors *)user;
    if (errors->message[0] == 0) vsnprintf(errors->message, sizeof errors->message, format, arguments);
    return 1;
}

static inline int synthd_tiff_warning(TIFF *tiff, void *user, const char *module, const char *format, va_list arguments) {
    (void)tiff; (void)user; (void)module; (void)format; (void)arguments;
    return 1;
}

/* Options that route errors to `errors`, silence warnings and cap any one allocation. */
static inline TIFFOpenOptions *synthd_tiff_options(synthd_tiff_errors *errors, tmsize_t max_allocation) {
    TIFFOpenOptions *options = TIFFOpenOptionsAlloc();
    if (!options) return NULL;
    TIFFOpenOptionsSetErrorHandlerExtR(options, synthd_tiff_error, errors);
    TIFFOpenOptionsSetWarningHandlerExtR(options, synthd_tiff_warning, NULL);
    TIFFOpenOptionsSetMaxSingleMemAlloc(options, max_allocation);
    return options;
}

/* What decides how a TIFF is read: its size, and whether its colour is one grey channel. */
/* `first_extra`: the kind of the first extra sample (EXTRASAMPLE_ASSOCALPHA, ...), or 0xFFFF. */
static inline int synthd_tiff_describe(TIFF *tiff, uint32_t *width, uint32_t *height, uint16_t *photometric,
                                       uint16_t *samples_per_pixel, uint16_t *extra_samples, uint16_t *first_extra) {
    uint16_t count = 0;
    uint16_t *kinds = NULL;
    if (!TIFFGetField(tiff, TIFFTAG_IMAGEWIDTH, width) || !TIFFGetField(tiff, TIFFTAG_IMAGELENGTH, height)) return 0;
    if (!TIFFGetField(tiff, TIFFTAG_PHOTOMETRIC, photometric)) *photometric = 0xFFFF;
    TIFFGetFieldDefaulted(tiff, TIFFTAG_SAMPLESPERPIXEL, samples_per_pixel);
    if (!TIFFGetField(tiff, TIFFTAG_EXTRASAMPLES, &count, &kinds)) count = 0;
    *extra_samples = count;
    *first_extra = count > 0 && kinds ? kinds[0] : 0xFFFF;
    return 1;
}

/* Has libtiff's RGBA interface read an unassociated alpha as associated, which it copies as
   stored instead of multiplying the colour by it: the stored colours are what Pillow reads.
   Only the directory in memory changes (the file is opened read-only). */
static inline void synthd_tiff_read_alpha_as_associated(TIFF *tiff) {
    uint16_t count = 0;
    uint16_t *kinds = NULL;
    if (!TIFFGetField(tiff, TIFFTAG_EXTRASAMPLES, &count, &kinds) || count == 0 || !kinds) return;
    if (kinds[0] != EXTRASAMPLE_UNASSALPHA) return;
    uint16_t changed[8];
    if (count > 8) return;
    for (uint16_t i = 0; i < count; i++) changed[i] = kinds[i];
    changed[0] = EXTRASAMPLE_ASSOCALPHA;
    TIFFSetField(tiff, TIFFTAG_EXTRASAMPLES, count, changed);
}

/* Bits per sample (1 when absent, as TIFF says). */
static inline uint16_t synthd_tiff_bits(TIFF *tiff) {
    uint16_t bits = 1;
    TIFFGetFieldDefaulted(tiff, TIFFTAG_BITSPERSAMPLE, &bits);
    return bits;
}

/* The Orientation tag (1-8; 1 when absent): how the stored rows and columns are shown. */
static inline uint16_t synthd_tiff_orientation(TIFF *tiff) {
    uint16_t orientation = ORIENTATION_TOPLEFT;
    TIFFGetFieldDefaulted(tiff, TIFFTAG_ORIENTATION, &orientation);
    return orientation >= 1 && orientation <= 8 ? orientation : ORIENTATION_TOPLEFT;
}
