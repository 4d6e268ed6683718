/*
 * The web front's listeners: the plain one on http_host:http_port (loopback
 * by default: health checks, a TLS-terminating proxy on the same host), and
 * HTTPS/WSS on https_host:https_port when tls_cert_file is set. Both are
 * vhosts of one context serving the same protocols, so a browser gets the
 * same app, API and /mqtt on either.
 */
#include <string.h>

#include "chat/log.h"
#include "front.h"

/* Checks the TLS settings together (a certificate without its key is a
 * mistake to refuse at start, not a listener that silently stays plain).
 * Returns 0, or -1 after logging the key at fault. */
static int tls_settings_ok(const struct chat_config *cfg)
{
	if ((cfg->tls_cert_file == NULL) != (cfg->tls_key_file == NULL)) {
		log_msg(LOG_ERR, "%s: must be set together with %s",
		        cfg->tls_cert_file ? "tls_key_file" : "tls_cert_file",
		        cfg->tls_cert_file ? "tls_cert_file" : "tls_key_file");
		return -1;
	}
	if (cfg->tls_cert_file && cfg->https_port == cfg->http_port) {
		log_msg(LOG_ERR, "https_port: %ld is also http_port", cfg->https_port);
		return -1;
	}
	return 0;
}

/* Creates the vhosts on ctx (made with LWS_SERVER_OPTION_EXPLICIT_VHOSTS)
 * from the context's own creation info. Returns 0, or -1 after a log line
 * naming the listener that could not be made; lws_context_destroy frees any
 * vhost made before the failure. */
int front_listen(struct lws_context *ctx, const struct lws_context_creation_info *base,
                 const struct chat_config *cfg)
{
	struct lws_context_creation_info info = *base;

	if (tls_settings_ok(cfg) != 0)
		return -1;
	info.port = (int)cfg->http_port;
	info.iface = cfg->http_host;
	info.vhost_name = "wsfront";
	if (lws_create_vhost(ctx, &info) == NULL) {
		log_msg(LOG_ERR, "cannot listen on %s:%ld", cfg->http_host, cfg->http_port);
		return -1;
	}
	if (cfg->tls_cert_file == NULL)
		return 0;
	info.port = (int)cfg->https_port;
	/* lws binds every address when iface is NULL */
	info.iface = strcmp(cfg->https_host, "0.0.0.0") == 0 ? NULL : cfg->https_host;
	info.vhost_name = "wsfront-tls";
	info.ssl_cert_filepath = cfg->tls_cert_file;
	info.ssl_private_key_filepath = cfg->tls_key_file;
	/* TLS 1.2 and later only, as the broker's 8883 listener */
	info.ssl_options_set = SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 | SSL_OP_NO_TLSv1_1;
	/* the handlers speak HTTP/1.1 (and WebSocket over it): offer no h2 */
	info.alpn = "http/1.1";
	if (lws_create_vhost(ctx, &info) == NULL) {
		log_msg(LOG_ERR,
		        "cannot listen with TLS on %s:%ld (tls_cert_file %s, tls_key_file %s: "
		        "readable PEM files that match?)",
		        cfg->https_host, cfg->https_port, cfg->tls_cert_file, cfg->tls_key_file);
		return -1;
	}
	log_msg(LOG_INFO, "wsfront %s listening on https://%s:%ld/", cfg->node_name,
	        cfg->https_host, cfg->https_port);
	return 0;
}
