/* XChaCha20-Poly1305 sealing into caller-given memory (aead.c). */
#ifndef SNAP_AEAD_H
#define SNAP_AEAD_H

#include <node_api.h>

/* Adds seal() and open() to exports; NULL after throwing on failure. */
napi_value snap_init_aead(napi_env env, napi_value exports);

#endif
