/* Set-up check for the ngtcp2 1.x stack (run once per version by cmake/fetch-stack-1x.sh):
 * ngtcp2's BoringSSL crypto helper, built from the ngtcp2 1.x source against Android's
 * BoringSSL, links and runs with the Debian 13 libngtcp2 and libnghttp3.
 *
 * A client and a server ngtcp2_conn live in this one process and hand their packets to
 * each other in memory (no socket), with an in-memory self-signed certificate, until the
 * handshake is complete on both sides and confirmed by the client; then one 1-RTT stream
 * frame goes from the client to the server. That exercises every callback the helper
 * provides (Initial keys, recv_crypto_data, encrypt, decrypt, hp_mask, key installation).
 * Prints the versions and each step; exit status 0 on success, 1 with the failing step.
 */
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <ngtcp2/ngtcp2_crypto_boringssl.h>
#include <nghttp3/nghttp3.h>
#include <openssl/ssl.h>
#include <openssl/rand.h>
#include <openssl/ec_key.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#ifndef OPENSSL_IS_BORINGSSL
#  error "openssl/ssl.h is not BoringSSL's: put the Android include directory first"
#endif
#if NGTCP2_VERSION_NUM < 0x010000 || NGHTTP3_VERSION_NUM < 0x010000
#  error "this check is for ngtcp2 >= 1.0 and nghttp3 >= 1.0"
#endif

#define CHECK(x)                                                               \
  do {                                                                         \
    if (!(x)) {                                                                \
      fprintf(stderr, "selfcheck: FAILED at line %d: %s\n", __LINE__, #x);     \
      return 1;                                                                \
    }                                                                          \
  } while (0)

typedef struct {
  ngtcp2_crypto_conn_ref ref; /* SSL_get_app_data(ssl) points here */
  ngtcp2_conn *conn;
  SSL *ssl;
  int confirmed;
} peer;

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref) {
  return ((peer *)ref->user_data)->conn;
}

static void rand_cb(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx) {
  (void)ctx;
  RAND_bytes(dest, len);
}

static int new_cid(ngtcp2_conn *conn, ngtcp2_cid *cid, uint8_t *token,
                   size_t cidlen, void *user_data) {
  (void)conn;
  (void)user_data;
  RAND_bytes(cid->data, cidlen);
  cid->datalen = cidlen;
  RAND_bytes(token, NGTCP2_STATELESS_RESET_TOKENLEN);
  return 0;
}

static int handshake_confirmed(ngtcp2_conn *conn, void *user_data) {
  (void)conn;
  ((peer *)user_data)->confirmed = 1;
  return 0;
}

static ngtcp2_tstamp now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (ngtcp2_tstamp)ts.tv_sec * NGTCP2_SECONDS + (ngtcp2_tstamp)ts.tv_nsec;
}

static int select_h3(SSL *ssl, const uint8_t **out, uint8_t *outlen,
                     const uint8_t *in, unsigned inlen, void *arg) {
  unsigned i;
  (void)ssl;
  (void)arg;
  for (i = 0; i + 3 <= inlen; i += 1u + in[i]) {
    if (in[i] == 2 && memcmp(in + i + 1, "h3", 2) == 0) {
      *out = in + i + 1;
      *outlen = 2;
      return SSL_TLSEXT_ERR_OK;
    }
  }
  return SSL_TLSEXT_ERR_ALERT_FATAL;
}

/* An ECDSA P-256 key and a self-signed certificate for "localhost", valid for an hour. */
static int use_self_signed_cert(SSL_CTX *ctx) {
  int ok = 0;
  EC_KEY *ec = EC_KEY_new_by_curve_name(NID_X9_62_prime256v1);
  EVP_PKEY *pkey = EVP_PKEY_new();
  X509 *x = X509_new();
  X509_NAME *name;
  if (!ec || !pkey || !x || !EC_KEY_generate_key(ec) ||
      !EVP_PKEY_assign_EC_KEY(pkey, ec)) {
    EC_KEY_free(ec);
    goto out;
  }
  name = X509_get_subject_name(x);
  ok = X509_set_version(x, 2) &&
       ASN1_INTEGER_set(X509_get_serialNumber(x), 1) &&
       X509_gmtime_adj(X509_getm_notBefore(x), -60) &&
       X509_gmtime_adj(X509_getm_notAfter(x), 3600) &&
       X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                  (const uint8_t *)"localhost", -1, -1, 0) &&
       X509_set_issuer_name(x, name) && X509_set_pubkey(x, pkey) &&
       X509_sign(x, pkey, EVP_sha256()) && SSL_CTX_use_certificate(ctx, x) &&
       SSL_CTX_use_PrivateKey(ctx, pkey);
out:
  X509_free(x);
  EVP_PKEY_free(pkey);
  return ok;
}

static void helper_callbacks(ngtcp2_callbacks *cb) {
  memset(cb, 0, sizeof(*cb));
  cb->recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
  cb->encrypt = ngtcp2_crypto_encrypt_cb;
  cb->decrypt = ngtcp2_crypto_decrypt_cb;
  cb->hp_mask = ngtcp2_crypto_hp_mask_cb;
  cb->recv_retry = ngtcp2_crypto_recv_retry_cb;
  cb->update_key = ngtcp2_crypto_update_key_cb;
  cb->delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  cb->delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb->get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
  cb->version_negotiation = ngtcp2_crypto_version_negotiation_cb;
  cb->rand = rand_cb;
  cb->get_new_connection_id = new_cid;
  cb->handshake_confirmed = handshake_confirmed;
}

int main(void) {
  struct sockaddr_in caddr, saddr;
  ngtcp2_path cpath, spath;
  ngtcp2_path_storage ps;
  ngtcp2_pkt_info pi, rpi;
  ngtcp2_callbacks ccb, scb;
  ngtcp2_settings cs, ss;
  ngtcp2_transport_params cp, sp;
  ngtcp2_cid dcid, scid, sscid;
  ngtcp2_version_cid vc;
  ngtcp2_pkt_hd hd;
  ngtcp2_vec vec;
  ngtcp2_ssize n, datalen;
  SSL_CTX *cctx, *sctx;
  peer cli, srv;
  uint8_t buf[1500];
  const uint8_t *alpn;
  unsigned alpnlen;
  int64_t stream_id;
  int round, rv;

  printf("selfcheck: ngtcp2 %s (built against %s), nghttp3 %s (built against %s)\n",
         ngtcp2_version(0)->version_str, NGTCP2_VERSION,
         nghttp3_version(0)->version_str, NGHTTP3_VERSION);
  CHECK(strcmp(ngtcp2_version(0)->version_str, NGTCP2_VERSION) == 0);
  CHECK(strcmp(nghttp3_version(0)->version_str, NGHTTP3_VERSION) == 0);

  memset(&caddr, 0, sizeof(caddr));
  caddr.sin_family = AF_INET;
  caddr.sin_port = htons(40001);
  caddr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  saddr = caddr;
  saddr.sin_port = htons(40002);
  memset(&cpath, 0, sizeof(cpath));
  cpath.local.addr = (ngtcp2_sockaddr *)&caddr;
  cpath.local.addrlen = sizeof(caddr);
  cpath.remote.addr = (ngtcp2_sockaddr *)&saddr;
  cpath.remote.addrlen = sizeof(saddr);
  spath.local = cpath.remote;
  spath.remote = cpath.local;
  spath.user_data = NULL;
  memset(&rpi, 0, sizeof(rpi));

  /* The client: an SSL_CTX configured by the helper, a client ngtcp2_conn. */
  cctx = SSL_CTX_new(TLS_method());
  CHECK(cctx != NULL);
  CHECK(ngtcp2_crypto_boringssl_configure_client_context(cctx) == 0);
  memset(&cli, 0, sizeof(cli));
  cli.ref.get_conn = get_conn;
  cli.ref.user_data = &cli;
  cli.ssl = SSL_new(cctx);
  CHECK(cli.ssl != NULL);
  SSL_set_app_data(cli.ssl, &cli.ref);
  SSL_set_connect_state(cli.ssl);
  CHECK(SSL_set_alpn_protos(cli.ssl, (const uint8_t *)"\x02h3", 3) == 0);
  CHECK(SSL_set_tlsext_host_name(cli.ssl, "localhost") == 1);

  dcid.datalen = 18;
  scid.datalen = 17;
  RAND_bytes(dcid.data, dcid.datalen);
  RAND_bytes(scid.data, scid.datalen);
  helper_callbacks(&ccb);
  ccb.client_initial = ngtcp2_crypto_client_initial_cb;
  ngtcp2_settings_default(&cs);
  cs.initial_ts = now();
  ngtcp2_transport_params_default(&cp);
  cp.initial_max_streams_bidi = 4;
  cp.initial_max_data = 1 << 20;
  cp.initial_max_stream_data_bidi_local = 1 << 18;
  CHECK(ngtcp2_conn_client_new(&cli.conn, &dcid, &scid, &cpath,
                               NGTCP2_PROTO_VER_V1, &ccb, &cs, &cp, NULL,
                               &cli) == 0);
  ngtcp2_conn_set_tls_native_handle(cli.conn, cli.ssl);

  /* Its first packet: a padded long-header Initial of QUIC v1. */
  ngtcp2_path_storage_zero(&ps);
  n = ngtcp2_conn_write_pkt(cli.conn, &ps.path, &pi, buf, sizeof(buf), now());
  CHECK(n >= 1200);
  CHECK(ngtcp2_pkt_decode_version_cid(&vc, buf, (size_t)n, 0) == 0);
  CHECK(vc.version == NGTCP2_PROTO_VER_V1);
  CHECK((buf[0] & 0xf0) == 0xc0);
  printf("selfcheck: client's first packet: a %zd-byte QUIC v1 Initial\n", (ssize_t)n);

  /* The server, made from that Initial. */
  CHECK(ngtcp2_accept(&hd, buf, (size_t)n) == 0);
  sctx = SSL_CTX_new(TLS_method());
  CHECK(sctx != NULL);
  CHECK(ngtcp2_crypto_boringssl_configure_server_context(sctx) == 0);
  CHECK(use_self_signed_cert(sctx));
  SSL_CTX_set_alpn_select_cb(sctx, select_h3, NULL);
  memset(&srv, 0, sizeof(srv));
  srv.ref.get_conn = get_conn;
  srv.ref.user_data = &srv;
  srv.ssl = SSL_new(sctx);
  CHECK(srv.ssl != NULL);
  SSL_set_app_data(srv.ssl, &srv.ref);
  SSL_set_accept_state(srv.ssl);

  helper_callbacks(&scb);
  scb.recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
  ngtcp2_settings_default(&ss);
  ss.initial_ts = now();
  ngtcp2_transport_params_default(&sp);
  sp.original_dcid = hd.dcid;
  sp.original_dcid_present = 1;
  sp.initial_max_streams_bidi = 4;
  sp.initial_max_data = 1 << 20;
  sp.initial_max_stream_data_bidi_remote = 1 << 18;
  sscid.datalen = 16;
  RAND_bytes(sscid.data, sscid.datalen);
  CHECK(ngtcp2_conn_server_new(&srv.conn, &hd.scid, &sscid, &spath, hd.version,
                               &scb, &ss, &sp, NULL, &srv) == 0);
  ngtcp2_conn_set_tls_native_handle(srv.conn, srv.ssl);
  CHECK(ngtcp2_conn_read_pkt(srv.conn, &spath, &rpi, buf, (size_t)n, now()) == 0);

  /* Hand packets back and forth until both sides are done. */
  for (round = 0; round < 16; ++round) {
    peer *from[2] = {&srv, &cli}, *to[2] = {&cli, &srv};
    ngtcp2_path *to_path[2] = {&cpath, &spath};
    int d;
    if (cli.confirmed && ngtcp2_conn_get_handshake_completed(srv.conn)) {
      break;
    }
    for (d = 0; d < 2; ++d) {
      for (;;) {
        ngtcp2_path_storage_zero(&ps);
        n = ngtcp2_conn_write_pkt(from[d]->conn, &ps.path, &pi, buf,
                                  sizeof(buf), now());
        CHECK(n >= 0);
        if (n == 0) {
          break;
        }
        rv = ngtcp2_conn_read_pkt(to[d]->conn, to_path[d], &rpi, buf,
                                  (size_t)n, now());
        if (rv != 0) {
          fprintf(stderr, "selfcheck: FAILED: ngtcp2_conn_read_pkt: %s\n",
                  ngtcp2_strerror(rv));
          return 1;
        }
      }
    }
  }
  CHECK(ngtcp2_conn_get_handshake_completed(cli.conn));
  CHECK(ngtcp2_conn_get_handshake_completed(srv.conn));
  CHECK(cli.confirmed);
  SSL_get0_alpn_selected(cli.ssl, &alpn, &alpnlen);
  CHECK(alpnlen == 2 && memcmp(alpn, "h3", 2) == 0);
  printf("selfcheck: handshake complete on both sides and confirmed (%s, ALPN h3)\n",
         SSL_CIPHER_get_name(SSL_get_current_cipher(cli.ssl)));

  /* One 1-RTT STREAM frame with FIN, client to server. */
  CHECK(ngtcp2_conn_open_bidi_stream(cli.conn, &stream_id, NULL) == 0);
  vec.base = (uint8_t *)"ping";
  vec.len = 4;
  ngtcp2_path_storage_zero(&ps);
  n = ngtcp2_conn_writev_stream(cli.conn, &ps.path, &pi, buf, sizeof(buf),
                                &datalen, NGTCP2_WRITE_STREAM_FLAG_FIN,
                                stream_id, &vec, 1, now());
  CHECK(n > 0 && datalen == 4);
  CHECK(ngtcp2_conn_read_pkt(srv.conn, &spath, &rpi, buf, (size_t)n, now()) == 0);
  printf("selfcheck: 1-RTT stream data client -> server: ok\n");

  ngtcp2_conn_del(cli.conn);
  ngtcp2_conn_del(srv.conn);
  SSL_free(cli.ssl);
  SSL_free(srv.ssl);
  SSL_CTX_free(cctx);
  SSL_CTX_free(sctx);
  printf("selfcheck: OK\n");
  return 0;
}
