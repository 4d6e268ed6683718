/* The MQTT stream follower of mqttscan.h. */
#include <string.h>

#include "mqttscan.h"

void mqttscan_init(struct mqttscan *s)
{
	memset(s, 0, sizeof(*s));
	s->connack_code = -1;
}

static size_t packet_done(struct mqttscan *s)
{
	s->packets[s->type]++;
	s->state = 0;
	return 1;
}

size_t mqttscan_feed(struct mqttscan *s, const unsigned char *p, size_t len)
{
	size_t done = 0, i = 0;

	while (i < len && !s->malformed) {
		if (s->state == 0) {
			s->type = p[i++] >> 4;
			s->length = 0;
			s->shift = 0;
			s->pos = 0;
			s->state = 1;
		} else if (s->state == 1) {
			uint8_t b = p[i++];
			s->length |= (uint32_t)(b & 0x7f) << s->shift;
			s->shift += 7;
			if (b & 0x80) {
				if (s->shift >= 28)
					s->malformed = 1;
				continue;
			}
			s->remaining = s->length;
			if (s->remaining == 0)
				done += packet_done(s);
			else
				s->state = 2;
		} else {
			size_t k = len - i < s->remaining ? len - i : s->remaining;
			/* the CONNACK's second body byte is its return/reason code */
			if (s->type == MQTT_CONNACK && s->pos <= 1 && s->pos + k > 1)
				s->connack_code = p[i + (1 - s->pos)];
			s->pos += (uint32_t)k;
			s->remaining -= (uint32_t)k;
			i += k;
			if (s->remaining == 0)
				done += packet_done(s);
		}
	}
	return done;
}
