#ifndef SNAP_SCANDIR_H
#define SNAP_SCANDIR_H
#include <node_api.h>
#include <stdbool.h>
bool snap_init_scandir(napi_env env, napi_value exports);
#endif
