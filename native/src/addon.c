/* snap_native: FastCDC-2020 chunking, XChaCha20-Poly1305 into given memory, SHA-256 off the main
 * thread, a few POSIX calls Node lacks, a batched directory scan, and batched small-file reads. See
 * cutter.c, aead.c, sha256.c, posix.c, scandir.c, readfiles.c. */
#include <node_api.h>

#include "aead.h"
#include "cutter.h"
#include "posix.h"
#include "readfiles.h"
#include "scandir.h"
#include "sha256.h"

static napi_value init(napi_env env, napi_value exports) {
  if (!snap_init_cutter(env, exports)) return NULL;
  if (!snap_init_aead(env, exports)) return NULL;
  if (!snap_init_sha256(env, exports)) return NULL;
  if (!snap_init_posix(env, exports)) return NULL;
  if (!snap_init_scandir(env, exports)) return NULL;
  if (!snap_init_readfiles(env, exports)) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
