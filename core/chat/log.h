/*
 * Logging for the daemons and tools: one line per event on stderr with a
 * UTC timestamp and level. The broker plugin routes it through
 * mosquitto_log_printf instead by installing a sink.
 */
#ifndef CHAT_LOG_H
#define CHAT_LOG_H

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

typedef void (*log_sink_fn)(enum log_level level, const char *line);

void log_set_sink(log_sink_fn sink);
void log_set_level(enum log_level max);
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#endif
