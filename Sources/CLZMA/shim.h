#include <lzma.h>
#include <stdlib.h>
#include <string.h>

/* A raw LZMA decoder for archives that store LZMA without the .xz container (a zip member of
   method 14, 7z's LZMA): `properties` are its 5 property bytes (lc/lp/pb, dictionary size),
   `size` the bytes it unpacks to. It ends at that size whether or not the data carries an end
   marker (liblzma's LZMA1EXT). The dictionary is never taken larger than the output: a
   damaged header's claim of 4 GiB costs no more memory than the member's own size. The macro
   filter id is out of Swift's reach, so this is C. */
static inline lzma_ret synthd_lzma_raw_decoder(lzma_stream *stream, const uint8_t *properties, size_t count, uint64_t size) {
    lzma_filter filters[2] = {{.id = LZMA_FILTER_LZMA1EXT, .options = NULL}, {.id = LZMA_VLI_UNKNOWN, .options = NULL}};
    lzma_ret ret = lzma_properties_decode(&filters[0], NULL, properties, count);
    if (ret != LZMA_OK) return ret;
    lzma_options_lzma *options = (lzma_options_lzma *)filters[0].options;
    if (options->dict_size > size) options->dict_size = size < LZMA_DICT_SIZE_MIN ? LZMA_DICT_SIZE_MIN : (uint32_t)size;
    options->ext_flags = LZMA_LZMA1EXT_ALLOW_EOPM;
    options->ext_size_low = (uint32_t)size;
    options->ext_size_high = (uint32_t)(size >> 32);
    ret = lzma_raw_decoder(stream, filters);
    free(options);
    return ret;
}
