/*
 * The intake journal (see journal.h). A record is
 *   "J <boot> <id> <topic length> <payload length> <mid>\n" topic payload "\n"
 * so payloads need no escaping; a record cut short by a kill (the last
 * one) is ignored when read back. <mid>, the broker's packet id, is absent
 * from the records of earlier versions (read as 0: never matched).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "journal.h"

#define RECORD_MAX (1024 * 1024) /* far above any post the broker lets in */

/* Reads a whole file into a malloc'd buffer (*len bytes); NULL with *len 0
 * when it does not exist or is empty. */
static char *slurp(const char *path, size_t *len)
{
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	char *buf = NULL;
	if (fstat(fd, &st) == 0 && st.st_size > 0 && (buf = malloc((size_t)st.st_size)) != NULL) {
		ssize_t n = read(fd, buf, (size_t)st.st_size);
		*len = n > 0 ? (size_t)n : 0;
	}
	close(fd);
	return buf;
}

/* Appends the well-formed records of buf to j->replay. */
static int parse(struct journal *j, const char *buf, size_t len)
{
	size_t at = 0;
	while (at < len) {
		const char *nl = memchr(buf + at, '\n', len - at);
		if (nl == NULL || nl - (buf + at) > 100)
			return 0;
		char head[128], boot[32];
		unsigned long long id, tlen, plen;
		int mid = 0;
		size_t hlen = (size_t)(nl - (buf + at));
		memcpy(head, buf + at, hlen);
		head[hlen] = '\0';
		if (sscanf(head, "J %16s %llu %llu %llu %d", boot, &id, &tlen, &plen, &mid) < 4 ||
		    tlen > 1024 || plen > RECORD_MAX)
			return 0;
		size_t body = hlen + 1, need = body + tlen + plen + 1;
		if (len - at < need || buf[at + need - 1] != '\n')
			return 0; /* cut short by a kill: everything before it counts */
		struct journal_record r = {.id = id, .mid = mid, .payload_len = plen};
		memcpy(r.boot, boot, strnlen(boot, sizeof(r.boot) - 1));
		r.topic = strndup(buf + at + body, tlen);
		r.payload = malloc(plen + 1);
		void *grown = realloc(j->replay, (j->nreplay + 1) * sizeof(*j->replay));
		if (r.topic == NULL || r.payload == NULL || grown == NULL) {
			free(r.topic);
			free(r.payload);
			if (grown)
				j->replay = grown;
			return -1;
		}
		memcpy(r.payload, buf + at + body + tlen, plen);
		r.payload[plen] = '\0';
		j->replay = grown;
		j->replay[j->nreplay++] = r;
		at += need;
	}
	return 0;
}

/* Writes all of buf to fd; -1 on an error (errno set). */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int journal_open(struct journal *j, const char *path, char *err, size_t errlen)
{
	unsigned char rnd[8];
	size_t old_len = 0, cur_len = 0;
	char *old = NULL, *cur = NULL;

	memset(j, 0, sizeof(*j));
	j->fd = j->lock_fd = -1;
	j->path = strdup(path);
	j->replay_path = malloc(strlen(path) + 8);
	if (j->path == NULL || j->replay_path == NULL)
		goto nomem;
	sprintf(j->replay_path, "%s.replay", path);
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		memset(rnd, 0, sizeof(rnd));
	for (int i = 0; i < 8; i++)
		snprintf(j->boot + 2 * i, 3, "%02x", rnd[i]);

	/* one bridge per journal: a second one would replay, and empty, what
	 * the first is still answering (the lock goes with the process) */
	j->lock_fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
	if (j->lock_fd < 0 || flock(j->lock_fd, LOCK_EX | LOCK_NB) != 0) {
		snprintf(err, errlen, "journal_file %s: %s", path,
		         errno == EWOULDBLOCK ? "in use by another bridge (each needs its own)"
		                              : strerror(errno));
		goto error;
	}
	/* what an earlier replay did not finish, then what the last process
	 * wrote: both go to the replay file, in that order, before the
	 * journal is emptied */
	old = slurp(j->replay_path, &old_len);
	cur = slurp(path, &cur_len);
	if (parse(j, old ? old : "", old_len) != 0 || parse(j, cur ? cur : "", cur_len) != 0)
		goto nomem;
	if (cur_len > 0) {
		char tmp[4096 + 16];
		snprintf(tmp, sizeof(tmp), "%s.tmp", j->replay_path);
		int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (fd < 0 || (old_len && write_all(fd, old, old_len) != 0) ||
		    write_all(fd, cur, cur_len) != 0 || fsync(fd) != 0 || close(fd) != 0 ||
		    rename(tmp, j->replay_path) != 0) {
			snprintf(err, errlen, "journal %s: %s", tmp, strerror(errno));
			if (fd >= 0)
				close(fd);
			goto error;
		}
	}
	j->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (j->fd < 0) {
		snprintf(err, errlen, "journal_file %s: %s", path, strerror(errno));
		goto error;
	}
	j->replay_left = j->nreplay;
	free(old);
	free(cur);
	return 0;

nomem:
	snprintf(err, errlen, "journal %s: out of memory", path);
error:
	free(old);
	free(cur);
	journal_close(j);
	return -1;
}

void journal_close(struct journal *j)
{
	if (j->fd >= 0)
		close(j->fd);
	if (j->lock_fd >= 0)
		close(j->lock_fd);
	for (size_t i = 0; i < j->nreplay; i++) {
		free(j->replay[i].topic);
		free(j->replay[i].payload);
	}
	free(j->replay);
	free(j->path);
	free(j->replay_path);
	memset(j, 0, sizeof(*j));
	j->fd = j->lock_fd = -1;
}

uint64_t journal_append(struct journal *j, int mid, const char *topic, const void *payload,
                        size_t len)
{
	char head[128];
	size_t tlen = strlen(topic);

	if (j->fd < 0 || tlen > 1024 || len > RECORD_MAX)
		return 0;
	uint64_t id = ++j->next_id;
	int n = snprintf(head, sizeof(head), "J %s %llu %zu %zu %d\n", j->boot,
	                 (unsigned long long)id, tlen, len, mid);
	struct iovec v[] = {
	    {head, (size_t)n}, {(void *)topic, tlen}, {(void *)payload, len}, {"\n", 1}};
	/* one writev: a record is whole in the file or (killed inside it) cut
	 * short and ignored */
	ssize_t want = (ssize_t)((size_t)n + tlen + len + 1);
	if (writev(j->fd, v, 4) != want)
		return 0;
	j->outstanding++;
	return id;
}

bool journal_redelivered(struct journal *j, int mid, const char *topic, const void *payload,
                         size_t len)
{
	for (size_t i = 0; mid != 0 && i < j->nreplay; i++) {
		struct journal_record *r = &j->replay[i];
		if (r->mid == mid && !r->redelivered && r->payload_len == len &&
		    strcmp(r->topic, topic) == 0 && memcmp(r->payload, payload, len) == 0) {
			r->redelivered = true;
			return true;
		}
	}
	return false;
}

void journal_done(struct journal *j)
{
	if (j->outstanding > 0 && --j->outstanding == 0 && j->fd >= 0) {
		/* nothing written is waiting: start the file over (O_APPEND
		 * writes land at the new end) */
		if (ftruncate(j->fd, 0) != 0) {
			/* the file only grows until the next quiet moment */
		}
	}
}

bool journal_replay_done(struct journal *j)
{
	if (j->replay_left == 0 || --j->replay_left > 0)
		return false;
	unlink(j->replay_path);
	return true;
}
