/* readFiles: a batch of small files read and given their blob IDs in one call (readfiles.c). */
#ifndef SNAP_READFILES_H
#define SNAP_READFILES_H

#include <node_api.h>
#include <stdbool.h>

bool snap_init_readfiles(napi_env env, napi_value exports);

#endif
