/*
 * POSIX port of the firmware client's platform header (fw_platform.h), so
 * the same core runs on the host against the real broker. errno is read
 * here, once, and turned into the FW_NET_* results. With fw_posix_use_tls
 * the stream is TLS over the same non-blocking socket (OpenSSL): the core
 * does not know, as it would not on an MCU with mbedTLS under its socket.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "fw_posix.h"

/* Waits until fd is ready for events or timeout_ms passed: 1, 0, -1. */
static int wait_fd(int fd, short events, uint32_t timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = events};
	int rc;
	do {
		rc = poll(&p, 1, timeout_ms > 0x7fffffff ? 0x7fffffff : (int)timeout_ms);
	} while (rc < 0 && errno == EINTR);
	if (rc < 0)
		return -1;
	return rc > 0;
}

/* A non-blocking connect to one address, finished within timeout_ms. */
static int connect_one(const struct addrinfo *ai, uint32_t timeout_ms)
{
	int fd =
	    socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (fd < 0)
		return -1;
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
		int err = 0;
		socklen_t len = sizeof(err);
		if (errno != EINPROGRESS || wait_fd(fd, POLLOUT, timeout_ms) != 1 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err != 0) {
			close(fd);
			return -1;
		}
	}
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int fw_posix_use_tls(struct fw_net *net, const char *cafile)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx == NULL)
		return -1;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
	    SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1) {
		SSL_CTX_free(ctx);
		return -1;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_free(net->tls_ctx);
	net->tls_ctx = ctx;
	return 0;
}

/* Waits for what OpenSSL wants after a call on net->tls returned ret: 1 when
 * the socket is ready for it, 0 on timeout, -1 for any error that waiting
 * cannot cure. */
static int tls_wait(struct fw_net *net, int ret, uint32_t timeout_ms)
{
	int e = SSL_get_error(net->tls, ret);
	if (e == SSL_ERROR_WANT_READ)
		return wait_fd(net->fd, POLLIN, timeout_ms);
	if (e == SSL_ERROR_WANT_WRITE)
		return wait_fd(net->fd, POLLOUT, timeout_ms);
	return -1;
}

/* The TLS handshake on the connected net->fd, verifying host (a name, or an
 * address the certificate must list). Returns 0, or -1 with net->tls set
 * for fw_net_close to free. */
static int tls_start(struct fw_net *net, const char *host, uint32_t timeout_ms)
{
	uint32_t start = fw_millis();
	unsigned char addr[16];
	SSL *ssl = SSL_new(net->tls_ctx);

	if (ssl == NULL)
		return -1;
	net->tls = ssl;
	if (SSL_set_fd(ssl, net->fd) != 1)
		return -1;
	if (inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1) {
		if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) != 1)
			return -1;
	} else if (SSL_set_tlsext_host_name(ssl, host) != 1 || SSL_set1_host(ssl, host) != 1) {
		return -1;
	}
	for (;;) {
		ERR_clear_error();
		int r = SSL_connect(ssl);
		if (r == 1)
			return 0;
		uint32_t spent = fw_millis() - start;
		if (spent >= timeout_ms || tls_wait(net, r, timeout_ms - spent) != 1)
			return -1;
	}
}

static int tls_send(struct fw_net *net, const uint8_t *buf, size_t len, uint32_t timeout_ms)
{
	uint32_t start = fw_millis();
	while (len > 0) {
		ERR_clear_error();
		int n = SSL_write(net->tls, buf, len > INT_MAX ? INT_MAX : (int)len);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (SSL_get_error(net->tls, n) == SSL_ERROR_ZERO_RETURN)
			return FW_NET_CLOSED;
		uint32_t spent = fw_millis() - start;
		if (spent >= timeout_ms || tls_wait(net, n, timeout_ms - spent) != 1)
			return FW_NET_ERROR;
	}
	return 0;
}

/* A readable socket may hold only part of a record (or a session ticket):
 * OpenSSL then wants more, which is a timeout to the core, not an error. */
static int tls_recv(struct fw_net *net, uint8_t *buf, size_t len, uint32_t timeout_ms)
{
	if (SSL_pending(net->tls) == 0) {
		int w = wait_fd(net->fd, POLLIN, timeout_ms);
		if (w <= 0)
			return w < 0 ? FW_NET_ERROR : FW_NET_TIMEOUT;
	}
	ERR_clear_error();
	int n = SSL_read(net->tls, buf, len > INT_MAX ? INT_MAX : (int)len);
	if (n > 0)
		return n;
	switch (SSL_get_error(net->tls, n)) {
	case SSL_ERROR_WANT_READ:
	case SSL_ERROR_WANT_WRITE:
		return FW_NET_TIMEOUT;
	case SSL_ERROR_ZERO_RETURN:
		return FW_NET_CLOSED;
	case SSL_ERROR_SYSCALL: /* EOF without close_notify: the peer went away */
		return ERR_peek_error() == 0 ? FW_NET_CLOSED : FW_NET_ERROR;
	default:
		return FW_NET_ERROR;
	}
}

int fw_net_open(struct fw_net *net, const char *host, uint16_t port, uint32_t timeout_ms)
{
	struct addrinfo hints, *res = NULL;
	char service[6];
	fw_net_close(net);
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(service, sizeof(service), "%u", port);
	if (getaddrinfo(host, service, &hints, &res) != 0)
		return FW_NET_ERROR;
	for (struct addrinfo *ai = res; ai && net->fd < 0; ai = ai->ai_next)
		net->fd = connect_one(ai, timeout_ms);
	freeaddrinfo(res);
	if (net->fd >= 0 && net->tls_ctx && tls_start(net, host, timeout_ms) != 0)
		fw_net_close(net);
	return net->fd < 0 ? FW_NET_ERROR : 0;
}

int fw_net_send(struct fw_net *net, const uint8_t *buf, size_t len, uint32_t timeout_ms)
{
	uint32_t start = fw_millis();
	if (net->fd < 0)
		return FW_NET_CLOSED;
	if (net->tls)
		return tls_send(net, buf, len, timeout_ms);
	while (len > 0) {
		ssize_t n = send(net->fd, buf, len, MSG_NOSIGNAL);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			uint32_t spent = fw_millis() - start;
			if (spent >= timeout_ms ||
			    wait_fd(net->fd, POLLOUT, timeout_ms - spent) != 1)
				return FW_NET_ERROR;
			continue;
		}
		return errno == EPIPE || errno == ECONNRESET ? FW_NET_CLOSED : FW_NET_ERROR;
	}
	return 0;
}

int fw_net_recv(struct fw_net *net, uint8_t *buf, size_t len, uint32_t timeout_ms)
{
	if (net->fd < 0)
		return FW_NET_CLOSED;
	if (net->tls)
		return tls_recv(net, buf, len, timeout_ms);
	int w = wait_fd(net->fd, POLLIN, timeout_ms);
	if (w < 0)
		return FW_NET_ERROR;
	if (w == 0)
		return FW_NET_TIMEOUT;
	if (len > 0x7fffffff)
		len = 0x7fffffff;
	ssize_t n;
	do {
		n = recv(net->fd, buf, len, 0);
	} while (n < 0 && errno == EINTR);
	if (n == 0)
		return FW_NET_CLOSED;
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? FW_NET_TIMEOUT : FW_NET_ERROR;
	return (int)n;
}

void fw_net_close(struct fw_net *net)
{
	if (net->tls) {
		SSL_shutdown(net->tls); /* best effort: the socket does not block */
		SSL_free(net->tls);
		net->tls = NULL;
	}
	if (net->fd >= 0) {
		close(net->fd);
		net->fd = -1;
	}
}

uint32_t fw_millis(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint32_t)((uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u);
}

uint32_t fw_random(void)
{
	static uint32_t state;
	while (state == 0) {
		if (getrandom(&state, sizeof(state), 0) != sizeof(state))
			state = (uint32_t)time(NULL) ^ (uint32_t)getpid() << 16;
	}
	/* xorshift32 */
	state ^= state << 13;
	state ^= state >> 17;
	state ^= state << 5;
	return state;
}
