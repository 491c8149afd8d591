/* SHA-256 with updates on a libuv thread (sha256.c). */
#ifndef SNAP_SHA256_H
#define SNAP_SHA256_H

#include <node_api.h>

/* Adds the class Sha256 to exports; NULL after throwing on failure. */
napi_value snap_init_sha256(napi_env env, napi_value exports);

#endif
