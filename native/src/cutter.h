#ifndef SNAP_CUTTER_H
#define SNAP_CUTTER_H
#include <node_api.h>
napi_value snap_init_cutter(napi_env env, napi_value exports);
#endif
