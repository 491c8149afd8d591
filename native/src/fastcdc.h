/*
 * FastCDC-2020 content-defined chunking, bit-for-bit compatible with the `v2020` module of
 * fastcdc-rs (https://github.com/nlfiedler/fastcdc-rs, MIT): normalized chunking levels 0..3,
 * "rolling two bytes each time" with the GEAR and GEAR_LS (= GEAR << 1) tables, and the seeded
 * variant of `with_level_and_seed`. Pure C; no N-API in here.
 */
#ifndef SNAP_FASTCDC_H
#define SNAP_FASTCDC_H

#include <stddef.h>
#include <stdint.h>

/* Parameter limits. MINIMUM_MIN/MINIMUM_MAX, AVERAGE_MIN and MAXIMUM_MIN are fastcdc-rs's; snap
 * allows larger averages (16 MiB instead of 4 MiB) and maxima (64 MiB instead of 16 MiB). */
#define SNAP_CDC_MINIMUM_MIN 64u
#define SNAP_CDC_MINIMUM_MAX 1048576u
#define SNAP_CDC_AVERAGE_MIN 256u
#define SNAP_CDC_AVERAGE_MAX 16777216u
#define SNAP_CDC_MAXIMUM_MIN 1024u
#define SNAP_CDC_MAXIMUM_MAX 67108864u
/* Highest usable index into the MASKS table. */
#define SNAP_CDC_MASK_BITS_MAX 25u

typedef struct snap_cdc {
  uint64_t gear[256];
  uint64_t gear_ls[256];
  uint64_t mask_s, mask_l, mask_s_ls, mask_l_ls;
  size_t min_size, avg_size, max_size;
} snap_cdc;

/* Checks the parameters; returns NULL when they are acceptable, else a static message. */
const char *snap_cdc_check(uint64_t min_size, uint64_t avg_size, uint64_t max_size, uint32_t level);

/* Initializes `c`; the parameters must have passed snap_cdc_check. */
void snap_cdc_init(snap_cdc *c, size_t min_size, size_t avg_size, size_t max_size, uint32_t level,
                   uint64_t seed);

/* fastcdc-rs `cut_gear`: the length of the next chunk of src[0..len) and, in *hash, the gear hash
 * at the cut (0 when len <= min_size, since no byte is hashed then). */
size_t snap_cdc_cut(const snap_cdc *c, const uint8_t *src, size_t len, uint64_t *hash);

#endif
