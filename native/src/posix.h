#ifndef SNAP_POSIX_H
#define SNAP_POSIX_H
#include <node_api.h>
napi_value snap_init_posix(napi_env env, napi_value exports);
#endif
