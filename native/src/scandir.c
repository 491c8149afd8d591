/*
 * scanDir(path, xattrs?) -> Promise<{ names, nums, bigs, xattrs? }>: one directory's entries and
 * their lstat, read on a libuv thread. Backup walks every directory of a tree; lstatSync from JavaScript cost ~6 us per
 * entry on the main thread (0.43 s of an unchanged re-backup of 63k files). Here the syscalls run
 * beside the main thread, one fstatat per entry relative to the open directory.
 *
 * Result, for n entries (without "." and "..") sorted by raw name bytes, as tree nodes are:
 *   names: Buffer, the n names each followed by a NUL byte;
 *   nums:  Float64Array(n * 6): mode, uid, gid, nlink, size, errno (0, or the fstatat error: the
 *          entry vanished or cannot be stat'ed; its other fields are then 0);
 *   bigs:  BigInt64Array(n * 5): ino, dev, rdev (unsigned: read with BigInt.asUintN(64, x)),
 *          mtime ns, ctime ns (signed: times before 1970 are negative).
 *   xattrs: Int32Array(n), only when asked for: the size of each entry's xattr name list, so the
 *          walk lists the xattrs of only the entries that have some (a listxattr per file cost the
 *          main thread of a first backup ~3 us per file). 0 also where the file system has no
 *          xattrs (ENOTSUP, ENODATA, ENOSYS); -1 when the list could not be read (the walk asks
 *          again and reports why).
 * An error opening or reading the directory itself rejects with a Node-style error (code, errno,
 * syscall 'scandir', path).
 */
#include "scandir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "posix.h"
#include "util.h"

#define NUMS 6
#define BIGS 5

typedef struct {
  char *name;
  double nums[NUMS];
  int64_t bigs[BIGS];
  int32_t xattrs;
} entry_t;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  char *path;
  entry_t *entries;
  size_t count;
  size_t names_bytes;
  bool xattrs;
  int err;
} scan_t;

static int by_name(const void *a, const void *b) {
  /* strcmp compares as unsigned char: the order of Buffer.compare on the raw names. */
  return strcmp(((const entry_t *)a)->name, ((const entry_t *)b)->name);
}

static int64_t ns(struct timespec t) { return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec; }

/* Appends one entry (name copied); false when out of memory. */
static bool push(scan_t *s, size_t *cap, const char *name) {
  if (s->count == *cap) {
    size_t grown_cap = *cap ? *cap * 2 : 64;
    entry_t *grown = realloc(s->entries, grown_cap * sizeof(entry_t));
    if (!grown) return false;
    s->entries = grown;
    *cap = grown_cap;
  }
  entry_t *e = &s->entries[s->count];
  memset(e, 0, sizeof *e);
  e->name = strdup(name);
  if (!e->name) return false;
  s->count++;
  s->names_bytes += strlen(name) + 1;
  return true;
}

static void stat_entry(int dirfd, entry_t *e) {
  struct stat st;
  if (fstatat(dirfd, e->name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
    e->nums[5] = errno;
    return;
  }
  e->nums[0] = st.st_mode;
  e->nums[1] = st.st_uid;
  e->nums[2] = st.st_gid;
  e->nums[3] = (double)st.st_nlink;
  e->nums[4] = (double)st.st_size;
  e->bigs[0] = (int64_t)st.st_ino;
  e->bigs[1] = (int64_t)st.st_dev;
  e->bigs[2] = (int64_t)st.st_rdev;
  e->bigs[3] = ns(st.st_mtim);
  e->bigs[4] = ns(st.st_ctim);
}

/* The entry's xattr name list size (see the header comment); `path` is the directory's path and a
 * "/", with room for any name after it. */
static int32_t xattr_list_size(char *path, size_t dir_len, const char *name) {
  strcpy(path + dir_len, name);
  ssize_t n = snap_llistxattr(path, NULL, 0);
  if (n >= 0) return n > INT32_MAX ? INT32_MAX : (int32_t)n;
#ifdef ENOTSUP
  if (errno == ENOTSUP) return 0;
#endif
  if (errno == EOPNOTSUPP || errno == ENODATA || errno == ENOSYS) return 0;
  return -1;
}

static void execute(napi_env env, void *data) {
  scan_t *s = data;
  int fd = open(s->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    s->err = errno;
    return;
  }
  DIR *dir = fdopendir(fd);
  if (!dir) {
    s->err = errno;
    close(fd);
    return;
  }
  size_t cap = 0;
  /* The directory's path and a "/" (none after a trailing one), then each entry's name. */
  size_t dir_len = strlen(s->path);
  char *path = s->xattrs ? malloc(dir_len + 2 + NAME_MAX + 1) : NULL;
  if (s->xattrs && !path) {
    s->err = ENOMEM;
    closedir(dir);
    return;
  }
  if (path) {
    memcpy(path, s->path, dir_len);
    if (dir_len == 0 || path[dir_len - 1] != '/') path[dir_len++] = '/';
  }
  for (;;) {
    errno = 0;
    struct dirent *d = readdir(dir);
    if (!d) {
      s->err = errno;
      break;
    }
    if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0) continue;
    if (!push(s, &cap, d->d_name)) {
      s->err = ENOMEM;
      break;
    }
    entry_t *e = &s->entries[s->count - 1];
    stat_entry(fd, e);
    if (path && e->nums[5] == 0 && strlen(d->d_name) <= NAME_MAX) e->xattrs = xattr_list_size(path, dir_len, d->d_name);
  }
  free(path);
  closedir(dir);
  if (!s->err && s->count > 1) qsort(s->entries, s->count, sizeof(entry_t), by_name);
}

static void release(scan_t *s) {
  for (size_t i = 0; i < s->count; i++) free(s->entries[i].name);
  free(s->entries);
  free(s->path);
  free(s);
}

static napi_value result(napi_env env, scan_t *s) {
  napi_value obj, names, nums_ab, nums, bigs_ab, bigs, xattrs_ab = NULL, xattrs = NULL;
  void *names_data, *nums_data, *bigs_data, *xattrs_data = NULL;
  /* napi_create_buffer refuses a zero length on some Node versions: give empty results one byte. */
  SNAP_CALL(env, napi_create_buffer(env, s->names_bytes ? s->names_bytes : 1, &names_data, &names));
  SNAP_CALL(env, napi_create_arraybuffer(env, s->count * NUMS * sizeof(double), &nums_data, &nums_ab));
  SNAP_CALL(env, napi_create_typedarray(env, napi_float64_array, s->count * NUMS, nums_ab, 0, &nums));
  SNAP_CALL(env, napi_create_arraybuffer(env, s->count * BIGS * sizeof(int64_t), &bigs_data, &bigs_ab));
  SNAP_CALL(env, napi_create_typedarray(env, napi_bigint64_array, s->count * BIGS, bigs_ab, 0, &bigs));
  if (s->xattrs) {
    SNAP_CALL(env, napi_create_arraybuffer(env, s->count * sizeof(int32_t), &xattrs_data, &xattrs_ab));
    SNAP_CALL(env, napi_create_typedarray(env, napi_int32_array, s->count, xattrs_ab, 0, &xattrs));
  }
  char *np = names_data;
  for (size_t i = 0; i < s->count; i++) {
    size_t len = strlen(s->entries[i].name) + 1;
    memcpy(np, s->entries[i].name, len);
    np += len;
    memcpy((double *)nums_data + i * NUMS, s->entries[i].nums, sizeof s->entries[i].nums);
    memcpy((int64_t *)bigs_data + i * BIGS, s->entries[i].bigs, sizeof s->entries[i].bigs);
    if (xattrs_data) ((int32_t *)xattrs_data)[i] = s->entries[i].xattrs;
  }
  napi_value count;
  SNAP_CALL(env, napi_create_uint32(env, (uint32_t)s->count, &count));
  SNAP_CALL(env, napi_create_object(env, &obj));
  SNAP_CALL(env, napi_set_named_property(env, obj, "count", count));
  SNAP_CALL(env, napi_set_named_property(env, obj, "names", names));
  SNAP_CALL(env, napi_set_named_property(env, obj, "nums", nums));
  SNAP_CALL(env, napi_set_named_property(env, obj, "bigs", bigs));
  if (xattrs) SNAP_CALL(env, napi_set_named_property(env, obj, "xattrs", xattrs));
  return obj;
}

static void complete(napi_env env, napi_status status, void *data) {
  scan_t *s = data;
  napi_value value = NULL;
  bool ok = false;
  if (status != napi_ok) {
    napi_value msg;
    if (napi_create_string_utf8(env, "snap_native: scanDir was cancelled", NAPI_AUTO_LENGTH, &msg) == napi_ok)
      napi_create_error(env, NULL, msg, &value);
  } else if (s->err) {
    value = snap_errno_error(env, s->err, "scandir", s->path);
  } else {
    value = result(env, s);
    ok = value != NULL;
  }
  /* Making the result or the error threw: reject with that exception. */
  if (!value) napi_get_and_clear_last_exception(env, &value);
  if (ok)
    napi_resolve_deferred(env, s->deferred, value);
  else
    napi_reject_deferred(env, s->deferred, value);
  napi_delete_async_work(env, s->work);
  release(s);
}

static napi_value scan_dir(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], promise, name;
  SNAP_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 1) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", "expected 1 argument");
    return NULL;
  }
  bool xattrs = false;
  if (argc >= 2) {
    napi_valuetype t;
    SNAP_CALL(env, napi_typeof(env, argv[1], &t));
    if (t != napi_undefined) SNAP_CALL(env, napi_get_value_bool(env, argv[1], &xattrs));
  }
  scan_t *s = calloc(1, sizeof *s);
  if (!s) {
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  s->xattrs = xattrs;
  if (!snap_get_cstring(env, argv[0], "path", &s->path)) {
    free(s);
    return NULL;
  }
  napi_status st = napi_create_promise(env, &s->deferred, &promise);
  if (st == napi_ok) st = napi_create_string_utf8(env, "snap.scanDir", NAPI_AUTO_LENGTH, &name);
  if (st == napi_ok) st = napi_create_async_work(env, NULL, name, execute, complete, s, &s->work);
  if (st == napi_ok) st = napi_queue_async_work(env, s->work);
  if (st != napi_ok) {
    snap_throw_status(env, st, "scanDir");
    free(s->path);
    free(s);
    return NULL;
  }
  return promise;
}

bool snap_init_scandir(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "scanDir", NAPI_AUTO_LENGTH, scan_dir, NULL, &fn) != napi_ok) return false;
  return napi_set_named_property(env, exports, "scanDir", fn) == napi_ok;
}
