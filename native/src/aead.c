/* XChaCha20-Poly1305 (format-spec ch. 2.1) into caller-given memory:
 *   seal(key, nonce, input, output, tag)         output: input.length bytes (may be input itself)
 *   open(key, nonce, input, output, tag) -> bool false: not authentic; output holds garbage
 *
 * HChaCha20 derives the per-message subkey here; the bulk ChaCha20-Poly1305 is the OpenSSL that
 * Node links statically and exports (the same code node:crypto runs). Node's cipher API always
 * returns a new buffer: a blob's ciphertext then cost a fresh allocation (an mmap for a large blob,
 * with a page fault per 4 KiB) and a copy into the pack's memory. Sealing a 1 GiB backup took
 * 2 s of worker CPU through node:crypto, against ~0.6 s in place (see format-spec ch. 2.1). */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "aead.h"
#include "util.h"

#define KEY_SIZE 32
#define NONCE_SIZE 24
#define TAG_SIZE 16

static inline uint32_t rotl32(uint32_t v, int c) { return (v << c) | (v >> (32 - c)); }

static inline uint32_t load32_le(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline void store32_le(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

#define QUARTER(a, b, c, d)  \
  a += b, d = rotl32(d ^ a, 16); \
  c += d, b = rotl32(b ^ c, 12); \
  a += b, d = rotl32(d ^ a, 8);  \
  c += d, b = rotl32(b ^ c, 7)

/* HChaCha20 (draft-irtf-cfrg-xchacha, section 2.2): the subkey for a 24-byte nonce's first 16. */
static void hchacha20(const uint8_t key[KEY_SIZE], const uint8_t nonce16[16], uint8_t out[KEY_SIZE]) {
  uint32_t x[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};
  for (int i = 0; i < 8; i++) x[4 + i] = load32_le(key + 4 * i);
  for (int i = 0; i < 4; i++) x[12 + i] = load32_le(nonce16 + 4 * i);
  for (int round = 0; round < 10; round++) {
    QUARTER(x[0], x[4], x[8], x[12]);
    QUARTER(x[1], x[5], x[9], x[13]);
    QUARTER(x[2], x[6], x[10], x[14]);
    QUARTER(x[3], x[7], x[11], x[15]);
    QUARTER(x[0], x[5], x[10], x[15]);
    QUARTER(x[1], x[6], x[11], x[12]);
    QUARTER(x[2], x[7], x[8], x[13]);
    QUARTER(x[3], x[4], x[9], x[14]);
  }
  for (int i = 0; i < 4; i++) store32_le(out + 4 * i, x[i]);
  for (int i = 0; i < 4; i++) store32_le(out + 16 + 4 * i, x[12 + i]);
}

/* One cipher context per thread (each worker has its own N-API environment), reused by every call.
 * It is the addon's instance data: a second user of instance data must share a struct with it. */
static void ctx_finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  EVP_CIPHER_CTX_free(data);
}

static EVP_CIPHER_CTX *thread_ctx(napi_env env) {
  void *data = NULL;
  if (napi_get_instance_data(env, &data) == napi_ok && data) return data;
  EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
  if (!ctx) return NULL;
  if (napi_set_instance_data(env, ctx, ctx_finalize, NULL) != napi_ok) {
    EVP_CIPHER_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

typedef struct {
  uint8_t *key, *nonce, *input, *output, *tag;
  size_t key_len, nonce_len, input_len, output_len, tag_len;
} aead_args;

static bool get_args(napi_env env, napi_callback_info info, const char *usage, aead_args *a) {
  size_t argc = 5;
  napi_value argv[5];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return false;
  if (argc < 5) {
    napi_throw_type_error(env, "ERR_MISSING_ARGS", usage);
    return false;
  }
  if (!snap_get_bytes(env, argv[0], "key", &a->key, &a->key_len) ||
      !snap_get_bytes(env, argv[1], "nonce", &a->nonce, &a->nonce_len) ||
      !snap_get_bytes(env, argv[2], "input", &a->input, &a->input_len) ||
      !snap_get_bytes(env, argv[3], "output", &a->output, &a->output_len) ||
      !snap_get_bytes(env, argv[4], "tag", &a->tag, &a->tag_len))
    return false;
  if (a->key_len != KEY_SIZE || a->nonce_len != NONCE_SIZE || a->tag_len != TAG_SIZE) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "key, nonce and tag must be 32, 24 and 16 bytes");
    return false;
  }
  if (a->output_len < a->input_len) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "output is shorter than input");
    return false;
  }
  /* OpenSSL works in place only when output and input start at the same byte. */
  if (a->output != a->input && a->output < a->input + a->input_len &&
      a->input < a->output + a->input_len) {
    napi_throw_range_error(env, "ERR_OUT_OF_RANGE", "output overlaps input without being it");
    return false;
  }
  return true;
}

/* Sets up ctx for one message: subkey from HChaCha20, inner nonce = 4 zero bytes || nonce[16..24). */
static bool init_message(EVP_CIPHER_CTX *ctx, int encrypt, const aead_args *a) {
  uint8_t subkey[KEY_SIZE], inner[12] = {0};
  hchacha20(a->key, a->nonce, subkey);
  memcpy(inner + 4, a->nonce + 16, 8);
  bool ok = EVP_CipherInit_ex(ctx, EVP_chacha20_poly1305(), NULL, subkey, inner, encrypt) == 1;
  OPENSSL_cleanse(subkey, sizeof subkey);
  return ok;
}

/* EVP_*Update takes an int length: larger inputs go through in pieces. */
static bool update(EVP_CIPHER_CTX *ctx, uint8_t *out, const uint8_t *in, size_t len) {
  const size_t piece = (size_t)1 << 30;
  while (len > 0) {
    int n = (int)(len < piece ? len : piece), written = 0;
    if (EVP_CipherUpdate(ctx, out, &written, in, n) != 1 || written != n) return false;
    in += n, out += n, len -= (size_t)n;
  }
  return true;
}

static napi_value aead_seal(napi_env env, napi_callback_info info) {
  aead_args a;
  if (!get_args(env, info, "seal(key, nonce, input, output, tag) needs 5 arguments", &a)) return NULL;
  EVP_CIPHER_CTX *ctx = thread_ctx(env);
  int final_len = 0;
  if (!ctx || !init_message(ctx, 1, &a) || !update(ctx, a.output, a.input, a.input_len) ||
      EVP_CipherFinal_ex(ctx, a.output + a.input_len, &final_len) != 1 || final_len != 0 ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, TAG_SIZE, a.tag) != 1) {
    napi_throw_error(env, "ERR_CRYPTO", "ChaCha20-Poly1305 encryption failed");
    return NULL;
  }
  return NULL;
}

static napi_value aead_open(napi_env env, napi_callback_info info) {
  aead_args a;
  if (!get_args(env, info, "open(key, nonce, input, output, tag) needs 5 arguments", &a)) return NULL;
  EVP_CIPHER_CTX *ctx = thread_ctx(env);
  if (!ctx || !init_message(ctx, 0, &a) ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, TAG_SIZE, a.tag) != 1 ||
      !update(ctx, a.output, a.input, a.input_len)) {
    napi_throw_error(env, "ERR_CRYPTO", "ChaCha20-Poly1305 decryption failed");
    return NULL;
  }
  int final_len = 0;
  bool authentic = EVP_CipherFinal_ex(ctx, a.output + a.input_len, &final_len) == 1;
  napi_value result;
  if (napi_get_boolean(env, authentic, &result) != napi_ok) return NULL;
  return result;
}

napi_value snap_init_aead(napi_env env, napi_value exports) {
  napi_property_descriptor fns[] = {
      {"seal", NULL, aead_seal, NULL, NULL, NULL, napi_default_method, NULL},
      {"open", NULL, aead_open, NULL, NULL, NULL, napi_default_method, NULL},
  };
  SNAP_CALL(env, napi_define_properties(env, exports, sizeof fns / sizeof fns[0], fns));
  return exports;
}
