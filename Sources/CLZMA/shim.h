#include <lzma.h>
#include <stdlib.h>
#include <string.h>

/* A raw LZMA or LZMA2 decoder for archives that store them without the .xz container (a zip
   member of method 14, a 7z folder), after x86 BCJ where `x86` says so (a 7z folder of BCJ and
   LZMA2, as py7zr writes by default). LZMA (`lzma2` 0): `properties` are its 5 bytes (lc/lp/pb,
   dictionary size) and it ends at `size` bytes whether or not the data carries an end marker
   (liblzma's LZMA1EXT); LZMA2: its one dictionary byte, and its own end marker. The dictionary
   is never taken larger than the output: a damaged header's claim of 4 GiB costs no more
   memory than the data's own size. The filter ids are macros out of Swift's reach, so this is C. */
static inline lzma_ret synthd_lzma_raw_decoder(lzma_stream *stream, int lzma2, int x86, const uint8_t *properties, size_t count,
                                               uint64_t size) {
    lzma_filter filters[3] = {{.id = LZMA_FILTER_X86, .options = NULL}, {.id = LZMA_VLI_UNKNOWN, .options = NULL},
                              {.id = LZMA_VLI_UNKNOWN, .options = NULL}};
    lzma_filter *coder = x86 ? &filters[1] : &filters[0];
    coder->id = lzma2 ? LZMA_FILTER_LZMA2 : LZMA_FILTER_LZMA1EXT;
    lzma_ret ret = lzma_properties_decode(coder, NULL, properties, count);
    if (ret != LZMA_OK) return ret;
    lzma_options_lzma *options = (lzma_options_lzma *)coder->options;
    if (options->dict_size > size) options->dict_size = size < LZMA_DICT_SIZE_MIN ? LZMA_DICT_SIZE_MIN : (uint32_t)size;
    if (!lzma2) {
        options->ext_flags = LZMA_LZMA1EXT_ALLOW_EOPM;
        options->ext_size_low = (uint32_t)size;
        options->ext_size_high = (uint32_t)(size >> 32);
    }
    ret = lzma_raw_decoder(stream, filters);
    free(options);
    return ret;
}
