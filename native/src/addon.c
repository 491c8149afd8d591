/* snap_native: FastCDC-2020 chunking and a few POSIX calls Node lacks. See cutter.c, posix.c. */
#include <node_api.h>

#include "cutter.h"
#include "posix.h"

static napi_value init(napi_env env, napi_value exports) {
  if (!snap_init_cutter(env, exports)) return NULL;
  if (!snap_init_posix(env, exports)) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
