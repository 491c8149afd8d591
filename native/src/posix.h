#ifndef SNAP_POSIX_H
#define SNAP_POSIX_H
#include <node_api.h>
#include <sys/types.h>
napi_value snap_init_posix(napi_env env, napi_value exports);
/* listxattr that does not follow a symlink at the end of the path (llistxattr on Linux). */
ssize_t snap_llistxattr(const char *path, char *buf, size_t size);
#endif
