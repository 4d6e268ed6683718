/*
 * tlsbench: what a connect costs with and without TLS. Opens one connection
 * after another to a broker (MQTT CONNECT with a token, CONNACK, DISCONNECT)
 * or to the web front (GET / over HTTP/1.1), in one of three modes: plain
 * TCP, TLS with a full handshake each time, or TLS resuming the previous
 * session. Prints connects/s and the mean time per connect.
 *
 *   tlsbench mqtt|http plain|tls|resume HOST PORT SECONDS [CAFILE USER TOKEN]
 *
 * CAFILE is required for tls/resume (the server is verified against it);
 * USER and TOKEN for mqtt. Sequential on purpose: the figure is the cost of
 * one connect, not the server's throughput under many.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

enum mode { MODE_PLAIN, MODE_TLS, MODE_RESUME };

struct bench {
	int mqtt;
	enum mode mode;
	struct sockaddr_in addr;
	const char *host;
	SSL_CTX *ctx;
	SSL_SESSION *session;
	unsigned char req[4096];
	size_t req_len;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t put_str(unsigned char *p, const char *s)
{
	size_t n = strlen(s);
	p[0] = (unsigned char)(n >> 8);
	p[1] = (unsigned char)n;
	memcpy(p + 2, s, n);
	return n + 2;
}

/* The request written on every connection: an MQTT 3.1.1 CONNECT (clean
 * session, user and token) or an HTTP GET. Returns 0, -1 if too long. */
static int build_request(struct bench *b, const char *user, const char *token)
{
	unsigned char body[4000];
	size_t n = 0;

	if (!b->mqtt) {
		int w =
		    snprintf((char *)b->req, sizeof(b->req),
		             "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", b->host);
		b->req_len = (size_t)w;
		return w > 0 && (size_t)w < sizeof(b->req) ? 0 : -1;
	}
	if (strlen(user) + strlen(token) + 64 > sizeof(body))
		return -1;
	n += put_str(body + n, "MQTT");
	body[n++] = 4;    /* 3.1.1 */
	body[n++] = 0xC2; /* user, password, clean session */
	body[n++] = 0;
	body[n++] = 60;
	n += put_str(body + n, user);
	n += put_str(body + n, user);
	n += put_str(body + n, token);
	b->req[0] = 0x10;
	size_t h = 1, rem = n;
	do {
		unsigned char byte = rem % 128;
		rem /= 128;
		b->req[h++] = (unsigned char)(byte | (rem ? 0x80 : 0));
	} while (rem);
	memcpy(b->req + h, body, n);
	b->req_len = h + n;
	b->req[b->req_len++] = 0xE0; /* DISCONNECT, after the CONNACK is read */
	b->req[b->req_len++] = 0;
	return 0;
}

/* One connect: TCP (and TLS), the request, the answer's first bytes (a
 * CONNACK that accepts, or an HTTP 200). Returns 0 or -1. */
static int one(struct bench *b)
{
	unsigned char buf[4096];
	SSL *ssl = NULL;
	int rc = -1, one_flag = 1, got;
	size_t connect_len = b->mqtt ? b->req_len - 2 : b->req_len;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one_flag, sizeof(one_flag));
	if (connect(fd, (struct sockaddr *)&b->addr, sizeof(b->addr)) != 0)
		goto cleanup;
	if (b->mode != MODE_PLAIN) {
		ssl = SSL_new(b->ctx);
		if (ssl == NULL)
			goto cleanup;
		SSL_set_fd(ssl, fd);
		SSL_set_tlsext_host_name(ssl, b->host);
		SSL_set1_host(ssl, b->host);
		if (b->mode == MODE_RESUME && b->session)
			SSL_set_session(ssl, b->session);
		if (SSL_connect(ssl) != 1)
			goto cleanup;
	}
	got = ssl ? SSL_write(ssl, b->req, (int)connect_len) : (int)write(fd, b->req, connect_len);
	if (got != (int)connect_len)
		goto cleanup;
	got = ssl ? SSL_read(ssl, buf, sizeof(buf)) : (int)read(fd, buf, sizeof(buf));
	if (b->mqtt ? (got < 4 || buf[0] != 0x20 || buf[3] != 0)
	            : (got < 12 || memcmp(buf, "HTTP/1.1 200", 12) != 0))
		goto cleanup;
	if (b->mqtt) {
		if (ssl)
			SSL_write(ssl, b->req + connect_len, 2);
		else if (write(fd, b->req + connect_len, 2) != 2)
			goto cleanup;
	}
	if (ssl && b->mode == MODE_RESUME) {
		/* TLS 1.3 sends its ticket after the handshake: keep the newest */
		SSL_SESSION *s = SSL_get1_session(ssl);
		if (s) {
			SSL_SESSION_free(b->session);
			b->session = s;
		}
	}
	rc = 0;
cleanup:
	if (ssl) {
		SSL_shutdown(ssl);
		SSL_free(ssl);
	}
	close(fd);
	return rc;
}

int main(int argc, char **argv)
{
	struct bench b;
	struct addrinfo hints, *ai = NULL;
	int rc = 1;
	long ok = 0, failed = 0;

	memset(&b, 0, sizeof(b));
	if (argc < 6 || (strcmp(argv[1], "mqtt") && strcmp(argv[1], "http"))) {
		fprintf(stderr, "usage: tlsbench mqtt|http plain|tls|resume HOST PORT SECONDS "
		                "[CAFILE USER TOKEN]\n");
		return 2;
	}
	b.mqtt = strcmp(argv[1], "mqtt") == 0;
	b.mode = strcmp(argv[2], "tls") == 0      ? MODE_TLS
	         : strcmp(argv[2], "resume") == 0 ? MODE_RESUME
	                                          : MODE_PLAIN;
	b.host = argv[3];
	double seconds = atof(argv[5]);
	if ((b.mode != MODE_PLAIN && argc < 7) || (b.mqtt && argc < 9) || seconds <= 0) {
		fprintf(stderr, "tlsbench: tls needs CAFILE, mqtt needs USER TOKEN\n");
		return 2;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	if (getaddrinfo(b.host, argv[4], &hints, &ai) != 0 || ai == NULL) {
		fprintf(stderr, "tlsbench: cannot resolve %s\n", b.host);
		return 1;
	}
	memcpy(&b.addr, ai->ai_addr, sizeof(b.addr));
	freeaddrinfo(ai);
	if (build_request(&b, b.mqtt ? argv[7] : "", b.mqtt ? argv[8] : "") != 0) {
		fprintf(stderr, "tlsbench: request too long\n");
		return 1;
	}
	if (b.mode != MODE_PLAIN) {
		b.ctx = SSL_CTX_new(TLS_client_method());
		if (b.ctx == NULL || SSL_CTX_load_verify_locations(b.ctx, argv[6], NULL) != 1) {
			fprintf(stderr, "tlsbench: cannot load CA %s\n", argv[6]);
			goto cleanup;
		}
		SSL_CTX_set_verify(b.ctx, SSL_VERIFY_PEER, NULL);
		SSL_CTX_set_session_cache_mode(b.ctx, SSL_SESS_CACHE_CLIENT);
	}
	double t0 = now_s(), t = t0;
	while (t - t0 < seconds) {
		if (one(&b) == 0)
			ok++;
		else if (++failed > 10 && failed > ok) {
			fprintf(stderr, "tlsbench: most connects fail (%ld of %ld)\n", failed,
			        ok + failed);
			ERR_print_errors_fp(stderr);
			goto cleanup;
		}
		t = now_s();
	}
	printf("%s %s: %ld connects in %.1f s = %.0f connects/s, %.3f ms each (%ld failed)\n",
	       argv[1], argv[2], ok, t - t0, ok / (t - t0), ok ? (t - t0) * 1e3 / ok : 0.0, failed);
	rc = ok > 0 ? 0 : 1;
cleanup:
	SSL_SESSION_free(b.session);
	SSL_CTX_free(b.ctx);
	return rc;
}
