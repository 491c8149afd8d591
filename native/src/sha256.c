/*
 * The N-API class `Sha256`: SHA-256 whose updates run on a libuv thread.
 *   new Sha256()
 *   hasher.update(parts) -> Promise<void>   parts: Uint8Array[]; one update at a time
 *   hasher.digest() -> Buffer (32 bytes)    once, with no update running
 *
 * A pack's name is the SHA-256 of its bytes (format-spec ch. 5). Hashed on the main thread, the
 * 680 MB of packs of a 1 GiB backup took ~0.5 s there, and the main thread is what limits a first
 * backup once the workers seal in place. Here it runs beside the write of the same bytes. The
 * digest is the OpenSSL SHA-256 that Node links (with SHA-NI where the CPU has it).
 */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

#include "sha256.h"
#include "util.h"

typedef struct {
  EVP_MD_CTX *ctx;
  bool busy;     /* an update is running on the thread pool */
  bool finished; /* digest() was called */
} hasher_t;

typedef struct {
  napi_async_work work;
  napi_deferred deferred;
  napi_ref self_ref;  /* keeps the hasher alive while the update runs */
  napi_ref parts_ref; /* and the parts' memory */
  hasher_t *h;
  size_t count;
  const uint8_t **data;
  size_t *len;
  bool failed;
} job_t;

static void hasher_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  hasher_t *h = data;
  EVP_MD_CTX_free(h->ctx);
  free(h);
}

static napi_value hasher_new(napi_env env, napi_callback_info info) {
  napi_value self;
  if (!snap_called_with_new(env, info, "Sha256")) return NULL;
  SNAP_CALL(env, napi_get_cb_info(env, info, NULL, NULL, &self, NULL));
  hasher_t *h = calloc(1, sizeof *h);
  if (h) h->ctx = EVP_MD_CTX_new();
  if (!h || !h->ctx || EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) != 1) {
    if (h) EVP_MD_CTX_free(h->ctx);
    free(h);
    napi_throw_error(env, "ERR_CRYPTO", "cannot set up SHA-256");
    return NULL;
  }
  napi_status st = napi_wrap(env, self, h, hasher_finalize, NULL, NULL);
  if (st != napi_ok) {
    hasher_finalize(env, h, NULL);
    snap_throw_status(env, st, "napi_wrap");
    return NULL;
  }
  return self;
}

static hasher_t *unwrap_idle(napi_env env, napi_value self, const char *what) {
  hasher_t *h = NULL;
  if (napi_unwrap(env, self, (void **)&h) != napi_ok || !h) {
    napi_throw_type_error(env, "ERR_INVALID_THIS", "not a Sha256");
    return NULL;
  }
  if (h->busy || h->finished) {
    char msg[96];
    snprintf(msg, sizeof msg, "Sha256.%s: %s", what, h->busy ? "an update is still running" : "digest() was already called");
    napi_throw_error(env, "ERR_INVALID_STATE", msg);
    return NULL;
  }
  return h;
}

static void execute(napi_env env, void *data) {
  (void)env;
  job_t *j = data;
  for (size_t i = 0; i < j->count && !j->failed; i++)
    if (EVP_DigestUpdate(j->h->ctx, j->data[i], j->len[i]) != 1) j->failed = true;
}

static void free_job(napi_env env, job_t *j) {
  if (j->work) napi_delete_async_work(env, j->work);
  if (j->self_ref) napi_delete_reference(env, j->self_ref);
  if (j->parts_ref) napi_delete_reference(env, j->parts_ref);
  free(j->data);
  free(j->len);
  free(j);
}

static void complete(napi_env env, napi_status status, void *data) {
  job_t *j = data;
  j->h->busy = false;
  napi_value undefined, err = NULL, msg;
  if (status != napi_ok || j->failed) {
    if (napi_create_string_utf8(env, "SHA-256 update failed", NAPI_AUTO_LENGTH, &msg) == napi_ok)
      napi_create_error(env, NULL, msg, &err);
    /* A hash that missed some bytes must not name anything. */
    j->h->finished = true;
    napi_reject_deferred(env, j->deferred, err);
  } else if (napi_get_undefined(env, &undefined) == napi_ok) {
    napi_resolve_deferred(env, j->deferred, undefined);
  }
  free_job(env, j);
}

static napi_value hasher_update(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], self, promise, name;
  SNAP_CALL(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  hasher_t *h = unwrap_idle(env, self, "update");
  if (!h) return NULL;
  bool is_array = false;
  if (argc < 1 || napi_is_array(env, argv[0], &is_array) != napi_ok || !is_array) {
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", "update(parts): parts must be an array of Uint8Arrays");
    return NULL;
  }
  uint32_t count;
  SNAP_CALL(env, napi_get_array_length(env, argv[0], &count));
  job_t *j = calloc(1, sizeof *j);
  if (j) {
    j->data = calloc(count ? count : 1, sizeof *j->data);
    j->len = calloc(count ? count : 1, sizeof *j->len);
  }
  if (!j || !j->data || !j->len) {
    if (j) free_job(env, j);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
  }
  j->h = h;
  j->count = count;
  for (uint32_t i = 0; i < count; i++) {
    napi_value part;
    uint8_t *p;
    if (napi_get_element(env, argv[0], i, &part) != napi_ok || !snap_get_bytes(env, part, "each part", &p, &j->len[i])) {
      free_job(env, j);
      return NULL;
    }
    j->data[i] = p;
  }
  napi_status st = napi_create_reference(env, self, 1, &j->self_ref);
  if (st == napi_ok) st = napi_create_reference(env, argv[0], 1, &j->parts_ref);
  if (st == napi_ok) st = napi_create_promise(env, &j->deferred, &promise);
  if (st == napi_ok) st = napi_create_string_utf8(env, "snap.Sha256.update", NAPI_AUTO_LENGTH, &name);
  if (st == napi_ok) st = napi_create_async_work(env, NULL, name, execute, complete, j, &j->work);
  if (st == napi_ok) st = napi_queue_async_work(env, j->work);
  if (st != napi_ok) {
    /* A created promise is left pending: nothing awaits it, since this call throws. */
    free_job(env, j);
    snap_throw_status(env, st, "Sha256.update");
    return NULL;
  }
  h->busy = true;
  return promise;
}

static napi_value hasher_digest(napi_env env, napi_callback_info info) {
  napi_value self, out;
  SNAP_CALL(env, napi_get_cb_info(env, info, NULL, NULL, &self, NULL));
  hasher_t *h = unwrap_idle(env, self, "digest");
  if (!h) return NULL;
  void *data;
  SNAP_CALL(env, napi_create_buffer(env, 32, &data, &out));
  unsigned int n = 0;
  h->finished = true;
  if (EVP_DigestFinal_ex(h->ctx, data, &n) != 1 || n != 32) {
    napi_throw_error(env, "ERR_CRYPTO", "SHA-256 digest failed");
    return NULL;
  }
  return out;
}

napi_value snap_init_sha256(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"update", NULL, hasher_update, NULL, NULL, NULL, napi_default_method, NULL},
      {"digest", NULL, hasher_digest, NULL, NULL, NULL, napi_default_method, NULL},
  };
  return snap_export_class(env, exports, "Sha256", hasher_new, methods, sizeof methods / sizeof methods[0]);
}
