/*
 * POSIX calls Node's fs lacks. Paths and xattr names are Buffers (any bytes but NUL) or strings
 * (UTF-8). Failures throw Errors shaped like Node's fs errors (code, errno, syscall, path).
 *
 *   utimensat(path, atimeSec, atimeNsec, mtimeSec, mtimeNsec, followSymlinks)
 *   llistxattr(path) -> Buffer[]          lgetxattr(path, name) -> Buffer
 *   lsetxattr(path, name, value, flags?)  lremovexattr(path, name)
 *   mkfifo(path, mode)                    mknod(path, mode, dev)
 *   makedev(major, minor) -> bigint       major(dev) -> number     minor(dev) -> number
 *   setMmapThreshold(bytes) -> boolean    (glibc mallopt; false where there is none)
 *   dropCache(fd) -> boolean               (posix_fadvise DONTNEED; false where it did nothing)
 */
#include "posix.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#ifdef __linux__
#include <sys/sysmacros.h>
#endif

#include "util.h"

static napi_value undefined(napi_env env) {
  napi_value u = NULL;
  napi_get_undefined(env, &u);
  return u;
}

/* Reads argv[0] as the path and argv[1] as the xattr name; false (having thrown) on bad input. */
static bool get_path_and_name(napi_env env, napi_value *argv, char **path, char **name) {
  if (!snap_get_cstring(env, argv[0], "path", path)) return false;
  if (!snap_get_cstring(env, argv[1], "name", name)) {
    free(*path);
    return false;
  }
  return true;
}

/* The end of a call that returns nothing: throws the errno of a failed call (r != 0) naming the
 * path, and frees the path either way. */
static napi_value finish(napi_env env, int r, int err, const char *syscall, char *path) {
  napi_value result = NULL;
  if (r != 0)
    snap_throw_errno(env, err, syscall, path);
  else
    result = undefined(env);
  free(path);
  return result;
}

/* xattr calls that never follow a symlink at the end of the path. */
ssize_t snap_llistxattr(const char *path, char *buf, size_t size) {
#ifdef __APPLE__
  return listxattr(path, buf, size, XATTR_NOFOLLOW);
#else
  return llistxattr(path, buf, size);
#endif
}
static ssize_t x_get(const char *path, const char *name, void *buf, size_t size) {
#ifdef __APPLE__
  return getxattr(path, name, buf, size, 0, XATTR_NOFOLLOW);
#else
  return lgetxattr(path, name, buf, size);
#endif
}
static int x_set(const char *path, const char *name, const void *value, size_t size, int flags) {
#ifdef __APPLE__
  return setxattr(path, name, value, size, 0, flags | XATTR_NOFOLLOW);
#else
  return lsetxattr(path, name, value, size, flags);
#endif
}
static int x_remove(const char *path, const char *name) {
#ifdef __APPLE__
  return removexattr(path, name, XATTR_NOFOLLOW);
#else
  return lremovexattr(path, name);
#endif
}

static napi_value js_utimensat(napi_env env, napi_callback_info info) {
  SNAP_GET_ARGS(6)
  int64_t asec, ansec, msec, mnsec;
  bool follow;
  if (!snap_get_int64(env, argv[1], "atimeSec", INT64_MIN, INT64_MAX, &asec)) return NULL;
  if (!snap_get_int64(env, argv[2], "atimeNsec", 0, 999999999, &ansec)) return NULL;
  if (!snap_get_int64(env, argv[3], "mtimeSec", INT64_MIN, INT64_MAX, &msec)) return NULL;
  if (!snap_get_int64(env, argv[4], "mtimeNsec", 0, 999999999, &mnsec)) return NULL;
  if (!snap_get_bool(env, argv[5], "followSymlinks", &follow)) return NULL;
  if ((int64_t)(time_t)asec != asec || (int64_t)(time_t)msec != msec) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "time is out of range for time_t");
    return NULL;
  }
  char *path;
  if (!snap_get_cstring(env, argv[0], "path", &path)) return NULL;
  struct timespec ts[2];
  ts[0].tv_sec = (time_t)asec;
  ts[0].tv_nsec = (long)ansec;
  ts[1].tv_sec = (time_t)msec;
  ts[1].tv_nsec = (long)mnsec;
  int r = utimensat(AT_FDCWD, path, ts, follow ? 0 : AT_SYMLINK_NOFOLLOW);
  return finish(env, r, errno, "utimensat", path);
}

static napi_value js_llistxattr(napi_env env, napi_callback_info info) {
  SNAP_GET_ARGS(1)
  char *path;
  if (!snap_get_cstring(env, argv[0], "path", &path)) return NULL;
  char *buf = NULL;
  ssize_t n;
  for (;;) {
    n = snap_llistxattr(path, NULL, 0);
    if (n < 0) break;
    if (n == 0) break;
    free(buf);
    buf = malloc((size_t)n);
    if (!buf) {
      errno = ENOMEM;
      n = -1;
      break;
    }
    n = snap_llistxattr(path, buf, (size_t)n);
    if (n >= 0 || errno != ERANGE) break; /* ERANGE: the list grew meanwhile; ask again */
  }
  if (n < 0) {
    snap_throw_errno(env, errno, "llistxattr", path);
    free(path);
    free(buf);
    return NULL;
  }
  free(path);
  napi_value result;
  napi_status st = napi_create_array(env, &result);
  uint32_t count = 0;
  for (ssize_t i = 0; st == napi_ok && i < n;) {
    size_t len = strnlen(buf + i, (size_t)(n - i));
    if (len > 0) {
      napi_value name;
      st = napi_create_buffer_copy(env, len, buf + i, NULL, &name);
      if (st == napi_ok) st = napi_set_element(env, result, count++, name);
    }
    i += (ssize_t)len + 1;
  }
  free(buf);
  SNAP_CALL(env, st);
  return result;
}

static napi_value js_lgetxattr(napi_env env, napi_callback_info info) {
  SNAP_GET_ARGS(2)
  char *path, *name;
  if (!get_path_and_name(env, argv, &path, &name)) return NULL;
  char *buf = NULL;
  ssize_t n;
  for (;;) {
    n = x_get(path, name, NULL, 0);
    if (n <= 0) break;
    free(buf);
    buf = malloc((size_t)n);
    if (!buf) {
      errno = ENOMEM;
      n = -1;
      break;
    }
    n = x_get(path, name, buf, (size_t)n);
    if (n >= 0 || errno != ERANGE) break;
  }
  free(name);
  if (n < 0) {
    snap_throw_errno(env, errno, "lgetxattr", path);
    free(path);
    free(buf);
    return NULL;
  }
  free(path);
  napi_value result;
  napi_status st = napi_create_buffer_copy(env, (size_t)n, n ? buf : "", NULL, &result);
  free(buf);
  SNAP_CALL(env, st);
  return result;
}

static napi_value js_lsetxattr(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  SNAP_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 3) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "lsetxattr(path, name, value, flags?)");
    return NULL;
  }
  uint8_t *value;
  size_t len;
  int64_t flags = 0;
  if (!snap_get_bytes(env, argv[2], "value", &value, &len)) return NULL;
  if (argc >= 4) {
    napi_valuetype t;
    SNAP_CALL(env, napi_typeof(env, argv[3], &t));
    if (t != napi_undefined && !snap_get_int64(env, argv[3], "flags", 0, 0x7fffffff, &flags))
      return NULL;
  }
  char *path, *name;
  if (!get_path_and_name(env, argv, &path, &name)) return NULL;
  int r = x_set(path, name, len ? (const void *)value : "", len, (int)flags);
  int err = errno;
  free(name);
  return finish(env, r, err, "lsetxattr", path);
}

static napi_value js_lremovexattr(napi_env env, napi_callback_info info) {
  SNAP_GET_ARGS(2)
  char *path, *name;
  if (!get_path_and_name(env, argv, &path, &name)) return NULL;
  int r = x_remove(path, name);
  int err = errno;
  free(name);
  return finish(env, r, err, "lremovexattr", path);
}

static napi_value js_mkfifo(napi_env env, napi_callback_info info) {
  SNAP_GET_ARGS(2)
  int64_t mode;
  if (!snap_get_int64(env, argv[1], "mode", 0, 07777, &mode)) return NULL;
  char *path;
  if (!snap_get_cstring(env, argv[0], "path", &path)) return NULL;
  int r = mkfifo(path, (mode_t)mode);
  return finish(env, r, errno, "mkfifo", path);
}

static napi_value js_mknod(napi_env env, napi_callback_info info) {
  SNAP_GET_ARGS(3)
  int64_t mode;
  uint64_t dev;
  if (!snap_get_int64(env, argv[1], "mode", 0, 0xffffffffLL, &mode)) return NULL;
  if (!snap_get_uint64(env, argv[2], "dev", &dev)) return NULL;
  if ((uint64_t)(dev_t)dev != dev) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "dev is out of range for dev_t");
    return NULL;
  }
  char *path;
  if (!snap_get_cstring(env, argv[0], "path", &path)) return NULL;
  int r = mknod(path, (mode_t)mode, (dev_t)dev);
  return finish(env, r, errno, "mknod", path);
}

static napi_value js_makedev(napi_env env, napi_callback_info info) {
  SNAP_GET_ARGS(2)
  int64_t maj, min;
  if (!snap_get_int64(env, argv[0], "major", 0, 0xffffffffLL, &maj)) return NULL;
  if (!snap_get_int64(env, argv[1], "minor", 0, 0xffffffffLL, &min)) return NULL;
  napi_value result;
  SNAP_CALL(env, napi_create_bigint_uint64(
                     env, (uint64_t)makedev((unsigned int)maj, (unsigned int)min), &result));
  return result;
}

static napi_value major_minor(napi_env env, napi_callback_info info, bool want_major) {
  SNAP_GET_ARGS(1)
  uint64_t dev;
  if (!snap_get_uint64(env, argv[0], "dev", &dev)) return NULL;
  napi_value result;
  SNAP_CALL(env, napi_create_double(
                     env, want_major ? (double)major((dev_t)dev) : (double)minor((dev_t)dev),
                     &result));
  return result;
}
static napi_value js_major(napi_env env, napi_callback_info info) {
  return major_minor(env, info, true);
}
static napi_value js_minor(napi_env env, napi_callback_info info) {
  return major_minor(env, info, false);
}

/* Backups allocate and free thousands of 0.5-8 MiB buffers from several threads. glibc raises its
 * mmap threshold to the largest block freed so far (up to 32 MiB), after which such buffers come
 * from the arenas, and freed arena memory is rarely returned to the system: peak RSS measured
 * 460-520 MiB for a 1 GiB backup whose live buffers never exceeded 140 MiB. A fixed threshold
 * keeps large buffers in their own mappings, unmapped when freed. */
static napi_value js_set_mmap_threshold(napi_env env, napi_callback_info info) {
  SNAP_GET_ARGS(1);
  int64_t bytes;
  if (!snap_get_int64(env, argv[0], "bytes", 4096, 32 << 20, &bytes)) return NULL;
  bool done = false;
#ifdef __GLIBC__
  done = mallopt(M_MMAP_THRESHOLD, (int)bytes) == 1;
#endif
  napi_value result;
  SNAP_CALL(env, napi_get_boolean(env, done, &result));
  return result;
}

/* A backup writes its data packs once and reads them back only for a restore or a check. Left in
 * the page cache they evict what the server itself uses, and every pack needs page-cache pages of
 * its own: a first backup of 1 GiB into a fresh repository spent 2.1-3.2 s of system time, mostly
 * copying into and clearing new pages. Dropping each synced pack's pages lets the next pack reuse
 * them (in a test writing 41 packs of 16 MiB: 0.23-0.27 s of system time against 1.16-1.84 s),
 * as borg does for its segment files. Clean pages only: call it after fsync. */
static napi_value js_drop_cache(napi_env env, napi_callback_info info) {
  SNAP_GET_ARGS(1);
  int64_t fd;
  if (!snap_get_int64(env, argv[0], "fd", 0, INT32_MAX, &fd)) return NULL;
  bool done = false;
#ifdef POSIX_FADV_DONTNEED
  done = posix_fadvise((int)fd, 0, 0, POSIX_FADV_DONTNEED) == 0;
#endif
  napi_value result;
  SNAP_CALL(env, napi_get_boolean(env, done, &result));
  return result;
}

napi_value snap_init_posix(napi_env env, napi_value exports) {
#define FN(name, fn) {name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL}
  napi_property_descriptor props[] = {
      FN("utimensat", js_utimensat), FN("llistxattr", js_llistxattr),
      FN("lgetxattr", js_lgetxattr), FN("lsetxattr", js_lsetxattr),
      FN("lremovexattr", js_lremovexattr), FN("mkfifo", js_mkfifo),
      FN("mknod", js_mknod), FN("makedev", js_makedev),
      FN("major", js_major), FN("minor", js_minor),
      FN("setMmapThreshold", js_set_mmap_threshold), FN("dropCache", js_drop_cache),
  };
#undef FN
  SNAP_CALL(env, napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}
