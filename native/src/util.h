/* Argument parsing and error helpers shared by the N-API bindings. */
#ifndef SNAP_UTIL_H
#define SNAP_UTIL_H

#include <node_api.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Evaluates an N-API call; on failure throws (unless an exception is already pending) and makes
 * the enclosing function return NULL. */
#define SNAP_CALL(env, call)                                      \
  do {                                                            \
    napi_status snap_status_ = (call);                            \
    if (snap_status_ != napi_ok) {                                \
      snap_throw_status((env), snap_status_, #call);              \
      return NULL;                                                \
    }                                                             \
  } while (0)

void snap_throw_status(napi_env env, napi_status status, const char *what);

/* In a binding: argc and argv[N] from the call; throws and returns NULL when fewer are given. */
#define SNAP_GET_ARGS(N)                                                             \
  size_t argc = (N);                                                                 \
  napi_value argv[(N)];                                                              \
  SNAP_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));              \
  if (argc < (N)) {                                                                  \
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "expected " #N " arguments");     \
    return NULL;                                                                     \
  }

/* Defines class `name` (constructor `ctor`, `count` methods) and sets it as exports[name];
 * returns exports, or NULL after throwing. */
napi_value snap_export_class(napi_env env, napi_value exports, const char *name, napi_callback ctor,
                             const napi_property_descriptor *methods, size_t count);
/* In a class constructor: true when called with `new`; otherwise throws a TypeError naming the
 * class, and the caller must return NULL. */
bool snap_called_with_new(napi_env env, napi_callback_info info, const char *name);

/* Throws an Error like Node's fs errors: message "CODE: description, syscall 'path'", and the
 * properties code ('ENOENT', ...), errno (negative, as in Node), syscall and path. */
void snap_throw_errno(napi_env env, int err, const char *syscall, const char *path);
/* The same error object, not thrown (to reject a promise); NULL after throwing if it cannot be made. */
napi_value snap_errno_error(napi_env env, int err, const char *syscall, const char *path);

/* The symbolic name of an errno value ("ENOTSUP" for EOPNOTSUPP on Linux, as libuv names it). */
const char *snap_errno_name(int err);

/* The following return true on success; on failure they have thrown a TypeError/RangeError that
 * names the argument, and the caller must return NULL. */

/* An integer given as a Number (a safe integer) or a BigInt, within [lo, hi]. */
bool snap_get_int64(napi_env env, napi_value v, const char *name, int64_t lo, int64_t hi,
                    int64_t *out);
/* A non-negative integer given as a Number (a safe integer) or a BigInt (up to 2^64 - 1). */
bool snap_get_uint64(napi_env env, napi_value v, const char *name, uint64_t *out);
/* A boolean. */
bool snap_get_bool(napi_env env, napi_value v, const char *name, bool *out);
/* The bytes of a Uint8Array (Buffer) without copying. */
bool snap_get_bytes(napi_env env, napi_value v, const char *name, uint8_t **data, size_t *len);
/* The elements of an Int32Array without copying. */
bool snap_get_int32s(napi_env env, napi_value v, const char *name, int32_t **data, size_t *len);
/* A path or name given as a Buffer/Uint8Array (any bytes but NUL) or a string (encoded as UTF-8),
 * returned as a malloc'ed NUL-terminated string the caller frees. */
bool snap_get_cstring(napi_env env, napi_value v, const char *name, char **out);

#endif
