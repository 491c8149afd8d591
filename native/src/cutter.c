/* The N-API class `Cutter` around fastcdc.c:
 *   new Cutter(min, avg, max, level, seed)   seed: bigint (or a safe non-negative integer)
 *   cutter.cut(buf, offset, length) -> [chunkLength, hash]   hash: bigint (u64)
 */
#include <stdlib.h>

#include "cutter.h"
#include "fastcdc.h"
#include "util.h"

static void cutter_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  free(data);
}

static napi_value cutter_new(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], self;
  if (!snap_called_with_new(env, info, "Cutter")) return NULL;
  SNAP_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  if (argc < 4) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS",
                          "new Cutter(min, avg, max, level, seed?) needs at least 4 arguments");
    return NULL;
  }
  int64_t min_size, avg_size, max_size, level;
  uint64_t seed = 0;
  if (!snap_get_int64(env, argv[0], "chunker min size", 0, INT64_MAX, &min_size)) return NULL;
  if (!snap_get_int64(env, argv[1], "chunker average size", 0, INT64_MAX, &avg_size)) return NULL;
  if (!snap_get_int64(env, argv[2], "chunker max size", 0, INT64_MAX, &max_size)) return NULL;
  if (!snap_get_int64(env, argv[3], "chunker normalization level", 0, 3, &level)) return NULL;
  if (argc >= 5) {
    napi_valuetype t;
    SNAP_CALL(env, napi_typeof(env, argv[4], &t));
    if (t != napi_undefined && !snap_get_uint64(env, argv[4], "chunker seed", &seed)) return NULL;
  }
  const char *problem = snap_cdc_check((uint64_t)min_size, (uint64_t)avg_size, (uint64_t)max_size,
                                       (uint32_t)level);
  if (problem) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", problem);
    return NULL;
  }
  snap_cdc *c = malloc(sizeof *c);
  if (!c) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  snap_cdc_init(c, (size_t)min_size, (size_t)avg_size, (size_t)max_size, (uint32_t)level, seed);
  napi_status st = napi_wrap(env, self, c, cutter_finalize, NULL, NULL);
  if (st != napi_ok) {
    free(c);
    snap_throw_status(env, st, "napi_wrap");
    return NULL;
  }
  return self;
}

static napi_value cutter_cut(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], self;
  SNAP_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  snap_cdc *c = NULL;
  if (napi_unwrap(env, self, (void **)&c) != napi_ok || c == NULL) {
    napi_throw_type_error(env, "ERR_INVALID_THIS", "cut() must be called on a Cutter");
    return NULL;
  }
  if (argc < 3) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "cut(buf, offset, length) needs 3 arguments");
    return NULL;
  }
  uint8_t *data;
  size_t len;
  int64_t offset, length;
  if (!snap_get_bytes(env, argv[0], "buf", &data, &len)) return NULL;
  if (!snap_get_int64(env, argv[1], "offset", 0, (int64_t)len, &offset)) return NULL;
  if (!snap_get_int64(env, argv[2], "length", 0, (int64_t)len - offset, &length)) return NULL;
  uint64_t hash;
  size_t n = snap_cdc_cut(c, data + offset, (size_t)length, &hash);
  napi_value result, n_v, hash_v;
  SNAP_CALL(env, napi_create_array_with_length(env, 2, &result));
  SNAP_CALL(env, napi_create_double(env, (double)n, &n_v));
  SNAP_CALL(env, napi_create_bigint_uint64(env, hash, &hash_v));
  SNAP_CALL(env, napi_set_element(env, result, 0, n_v));
  SNAP_CALL(env, napi_set_element(env, result, 1, hash_v));
  return result;
}

napi_value snap_init_cutter(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"cut", NULL, cutter_cut, NULL, NULL, NULL, napi_default_method, NULL},
  };
  return snap_export_class(env, exports, "Cutter", cutter_new, methods, sizeof methods / sizeof methods[0]);
}
