#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void snap_throw_status(napi_env env, napi_status status, const char *what) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) return;
  const napi_extended_error_info *info = NULL;
  const char *msg = NULL;
  if (napi_get_last_error_info(env, &info) == napi_ok && info && info->error_message)
    msg = info->error_message;
  char buf[512];
  snprintf(buf, sizeof buf, "snap_native: N-API call failed (%s): %s", msg ? msg : "unknown error",
           what);
  napi_throw_error(env, NULL, buf);
}

static const struct {
  int value;
  const char *name;
} ERRNO_NAMES[] = {
#define E(x) {x, #x},
#ifdef ENOTSUP
    E(ENOTSUP) /* before EOPNOTSUPP: the same value on Linux, and libuv/Node call it ENOTSUP */
#endif
    E(EPERM) E(ENOENT) E(ESRCH) E(EINTR) E(EIO) E(ENXIO) E(E2BIG) E(ENOEXEC) E(EBADF) E(ECHILD)
    E(EAGAIN) E(ENOMEM) E(EACCES) E(EFAULT) E(EBUSY) E(EEXIST) E(EXDEV) E(ENODEV) E(ENOTDIR)
    E(EISDIR) E(EINVAL) E(ENFILE) E(EMFILE) E(ENOTTY) E(ETXTBSY) E(EFBIG) E(ENOSPC) E(ESPIPE)
    E(EROFS) E(EMLINK) E(EPIPE) E(EDOM) E(ERANGE) E(EDEADLK) E(ENAMETOOLONG) E(ENOLCK) E(ENOSYS)
    E(ENOTEMPTY) E(ELOOP) E(EOVERFLOW) E(EILSEQ) E(EOPNOTSUPP) E(EDQUOT) E(ESTALE) E(ECANCELED)
    E(ETIMEDOUT) E(ENOTSOCK) E(ECONNREFUSED) E(ECONNRESET)
#ifdef ENOTBLK
    E(ENOTBLK)
#endif
#ifdef ENODATA
    E(ENODATA)
#endif
#ifdef ENOATTR
    E(ENOATTR)
#endif
#ifdef EFTYPE
    E(EFTYPE)
#endif
#ifdef ENOMEDIUM
    E(ENOMEDIUM)
#endif
#undef E
};

const char *snap_errno_name(int err) {
  for (size_t i = 0; i < sizeof ERRNO_NAMES / sizeof ERRNO_NAMES[0]; i++)
    if (ERRNO_NAMES[i].value == err) return ERRNO_NAMES[i].name;
  return "UNKNOWN";
}

static void set_str(napi_env env, napi_value obj, const char *key, const char *value) {
  napi_value v;
  if (napi_create_string_utf8(env, value, NAPI_AUTO_LENGTH, &v) == napi_ok)
    napi_set_named_property(env, obj, key, v);
}

napi_value snap_errno_error(napi_env env, int err, const char *syscall, const char *path) {
  const char *code = snap_errno_name(err);
  char desc[256];
  /* strerror's wording, lower-cased like libuv's ("no such file or directory"). */
  snprintf(desc, sizeof desc, "%s", strerror(err));
  if (desc[0] >= 'A' && desc[0] <= 'Z' && !(desc[1] >= 'A' && desc[1] <= 'Z')) desc[0] += 'a' - 'A';
  size_t cap = strlen(code) + strlen(desc) + strlen(syscall) + (path ? strlen(path) : 0) + 16;
  char *msg = malloc(cap);
  if (!msg) {
    napi_throw_error(env, code, "out of memory while reporting an error");
    return NULL;
  }
  if (path)
    snprintf(msg, cap, "%s: %s, %s '%s'", code, desc, syscall, path);
  else
    snprintf(msg, cap, "%s: %s, %s", code, desc, syscall);
  napi_value msg_v, code_v, error, errno_v;
  if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &msg_v) != napi_ok ||
      napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_v) != napi_ok ||
      napi_create_error(env, code_v, msg_v, &error) != napi_ok) {
    free(msg);
    napi_throw_error(env, code, "snap_native: could not create an error object");
    return NULL;
  }
  free(msg);
  if (napi_create_int32(env, -err, &errno_v) == napi_ok)
    napi_set_named_property(env, error, "errno", errno_v);
  set_str(env, error, "syscall", syscall);
  /* Invalid UTF-8 in a path shows as U+FFFD: the property is for people to read. */
  if (path) set_str(env, error, "path", path);
  return error;
}

napi_value snap_export_class(napi_env env, napi_value exports, const char *name, napi_callback ctor,
                             const napi_property_descriptor *methods, size_t count) {
  napi_value cls;
  SNAP_CALL(env, napi_define_class(env, name, NAPI_AUTO_LENGTH, ctor, NULL, count, methods, &cls));
  SNAP_CALL(env, napi_set_named_property(env, exports, name, cls));
  return exports;
}

bool snap_called_with_new(napi_env env, napi_callback_info info, const char *name) {
  napi_value target;
  napi_status st = napi_get_new_target(env, info, &target);
  if (st != napi_ok) {
    snap_throw_status(env, st, "napi_get_new_target");
    return false;
  }
  if (target != NULL) return true;
  char msg[128];
  snprintf(msg, sizeof msg, "%s must be called with new", name);
  napi_throw_type_error(env, "ERR_CONSTRUCT_CALL_REQUIRED", msg);
  return false;
}

void snap_throw_errno(napi_env env, int err, const char *syscall, const char *path) {
  napi_value error = snap_errno_error(env, err, syscall, path);
  if (error) napi_throw(env, error);
}

static void throw_fmt(napi_env env, bool range, const char *code, const char *fmt, const char *name) {
  char buf[256];
  snprintf(buf, sizeof buf, fmt, name);
  if (range)
    napi_throw_range_error(env, code, buf);
  else
    napi_throw_type_error(env, code, buf);
}

bool snap_get_int64(napi_env env, napi_value v, const char *name, int64_t lo, int64_t hi,
                    int64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  int64_t r;
  if (t == napi_number) {
    double d;
    if (napi_get_value_double(env, v, &d) != napi_ok) return false;
    if (!isfinite(d) || floor(d) != d || fabs(d) > 9007199254740991.0) {
      throw_fmt(env, true, "ERR_OUT_OF_RANGE", "%s must be an integer", name);
      return false;
    }
    r = (int64_t)d;
  } else if (t == napi_bigint) {
    bool lossless = false;
    if (napi_get_value_bigint_int64(env, v, &r, &lossless) != napi_ok) return false;
    if (!lossless) {
      throw_fmt(env, true, "ERR_OUT_OF_RANGE", "%s is out of range", name);
      return false;
    }
  } else {
    throw_fmt(env, false, "ERR_INVALID_ARG_TYPE", "%s must be a number or a bigint", name);
    return false;
  }
  if (r < lo || r > hi) {
    throw_fmt(env, true, "ERR_OUT_OF_RANGE", "%s is out of range", name);
    return false;
  }
  *out = r;
  return true;
}

bool snap_get_uint64(napi_env env, napi_value v, const char *name, uint64_t *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (t == napi_bigint) {
    /* napi_get_value_bigint_uint64 reports a negative BigInt as lossy: check the sign first. */
    int sign = 0;
    size_t words = 1;
    uint64_t word = 0;
    if (napi_get_value_bigint_words(env, v, &sign, &words, &word) != napi_ok) return false;
    bool lossless = false;
    uint64_t r;
    if (napi_get_value_bigint_uint64(env, v, &r, &lossless) != napi_ok) return false;
    if (sign || !lossless) {
      throw_fmt(env, true, "ERR_OUT_OF_RANGE", "%s must be between 0 and 2^64 - 1", name);
      return false;
    }
    *out = r;
    return true;
  }
  int64_t r;
  if (t != napi_number) {
    throw_fmt(env, false, "ERR_INVALID_ARG_TYPE", "%s must be a number or a bigint", name);
    return false;
  }
  if (!snap_get_int64(env, v, name, 0, INT64_MAX, &r)) return false;
  *out = (uint64_t)r;
  return true;
}

bool snap_get_bool(napi_env env, napi_value v, const char *name, bool *out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  if (t != napi_boolean) {
    throw_fmt(env, false, "ERR_INVALID_ARG_TYPE", "%s must be a boolean", name);
    return false;
  }
  return napi_get_value_bool(env, v, out) == napi_ok;
}

/* Whether v is a typed array (*is), and then its type and elements; false when N-API fails. */
static bool typed_array(napi_env env, napi_value v, bool *is, napi_typedarray_type *type, void **data, size_t *len) {
  if (napi_is_typedarray(env, v, is) != napi_ok) return false;
  return !*is || napi_get_typedarray_info(env, v, type, len, data, NULL, NULL) == napi_ok;
}

bool snap_get_bytes(napi_env env, napi_value v, const char *name, uint8_t **data, size_t *len) {
  bool is = false;
  napi_typedarray_type type;
  void *p = NULL;
  if (!typed_array(env, v, &is, &type, &p, len)) return false;
  if (is && (type == napi_uint8_array || type == napi_uint8_clamped_array || type == napi_int8_array)) {
    *data = p;
    return true;
  }
  throw_fmt(env, false, "ERR_INVALID_ARG_TYPE", "%s must be a Buffer or Uint8Array", name);
  return false;
}

bool snap_get_int32s(napi_env env, napi_value v, const char *name, int32_t **data, size_t *len) {
  bool is = false;
  napi_typedarray_type type;
  void *p = NULL;
  if (!typed_array(env, v, &is, &type, &p, len)) return false;
  if (is && type == napi_int32_array) {
    *data = p;
    return true;
  }
  throw_fmt(env, false, "ERR_INVALID_ARG_TYPE", "%s must be an Int32Array", name);
  return false;
}

bool snap_get_cstring(napi_env env, napi_value v, const char *name, char **out) {
  napi_valuetype t;
  if (napi_typeof(env, v, &t) != napi_ok) return false;
  char *s = NULL;
  size_t n = 0;
  if (t == napi_string) {
    if (napi_get_value_string_utf8(env, v, NULL, 0, &n) != napi_ok) return false;
    s = malloc(n + 1);
    if (!s) {
      napi_throw_error(env, "ENOMEM", "out of memory");
      return false;
    }
    if (napi_get_value_string_utf8(env, v, s, n + 1, &n) != napi_ok) {
      free(s);
      return false;
    }
  } else {
    bool is_ta = false;
    if (napi_is_typedarray(env, v, &is_ta) != napi_ok) return false;
    uint8_t *p = NULL;
    if (!is_ta) {
      throw_fmt(env, false, "ERR_INVALID_ARG_TYPE", "%s must be a string, Buffer or Uint8Array",
                name);
      return false;
    }
    if (!snap_get_bytes(env, v, name, &p, &n)) return false;
    s = malloc(n + 1);
    if (!s) {
      napi_throw_error(env, "ENOMEM", "out of memory");
      return false;
    }
    if (n) memcpy(s, p, n);
    s[n] = 0;
  }
  if (strlen(s) != n) {
    free(s);
    throw_fmt(env, false, "ERR_INVALID_ARG_VALUE", "%s must not contain NUL bytes", name);
    return false;
  }
  *out = s;
  return true;
}
