/* Unit tests: the role stamp (authplugin/stamp.c) on mosquitto property
 * lists: measuring stops past the bound, sizes are the encoded ones, a
 * client's own chat-role is removed with the order of the rest kept, and
 * the exactly one stamp is appended; a list of 100,000 is stamped in
 * linear time. Built with libmosquitto's property calls (the broker has
 * the same ones). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "check.h"
#include "stamp.h"

/* the broker's allocator, for stamp.c; libmosquitto's is malloc */
void mosquitto_free(void *mem)
{
	free(mem);
}

/* Whether the user properties of props are exactly want (n name=value). */
static int user_props_are(const mosquitto_property *props, const char *const *want, size_t n)
{
	size_t i = 0;
	for (const mosquitto_property *p = props; p; p = mosquitto_property_next(p)) {
		char *name = NULL, *value = NULL;
		if (mosquitto_property_identifier(p) != MQTT_PROP_USER_PROPERTY)
			continue;
		if (!mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name, &value,
		                                         false))
			return 0;
		char both[64];
		snprintf(both, sizeof(both), "%s=%s", name, value);
		free(name);
		free(value);
		if (i >= n || strcmp(both, want[i]) != 0)
			return 0;
		i++;
	}
	return i == n;
}

static double seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(void)
{
	mosquitto_property *props = NULL;
	size_t bytes = 99;

	/* nothing: 0 bytes, then just the stamp */
	CHECK_INT(stamp_measure(NULL, 0, &bytes), 0);
	CHECK_INT(bytes, 0);
	CHECK_INT(stamp_apply(&props, "user"), 0);
	static const char *const only[] = {"chat-role=user"};
	CHECK(user_props_are(props, only, 1));
	mosquitto_property_free_all(&props);

	/* the sizes MQTT encodes: identifier byte, then the value */
	mosquitto_property_add_string(&props, MQTT_PROP_RESPONSE_TOPIC,
	                              "chat/user/eve/r");                            /* 1+2+15 */
	mosquitto_property_add_binary(&props, MQTT_PROP_CORRELATION_DATA, "abc", 3); /* 1+2+3 */
	mosquitto_property_add_byte(&props, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR, 1);  /* 1+1 */
	mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, "k",
	                                   "vv"); /* 1+2+1+2+2 */
	CHECK_INT(stamp_measure(props, 4, &bytes), 0);
	CHECK_INT(bytes, 18 + 6 + 2 + 8);
	CHECK_INT(stamp_measure(props, 3, &bytes), -1); /* one over the bound */

	/* a forged chat-role goes, the rest keeps its order, one stamp last */
	mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, "chat-role", "admin");
	mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, "after", "1");
	mosquitto_property_add_string_pair(&props, MQTT_PROP_USER_PROPERTY, "chat-role", "admin");
	CHECK_INT(stamp_apply(&props, "user"), 0);
	static const char *const kept[] = {"k=vv", "after=1", "chat-role=user"};
	CHECK(user_props_are(props, kept, 3));
	char *rt = NULL;
	CHECK(mosquitto_property_read_string(props, MQTT_PROP_RESPONSE_TOPIC, &rt, false) != NULL);
	CHECK_STR(rt, "chat/user/eve/r");
	free(rt);
	void *corr = NULL;
	uint16_t corr_len = 0;
	CHECK(mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &corr, &corr_len,
	                                     false) != NULL);
	CHECK(corr_len == 3 && memcmp(corr, "abc", 3) == 0);
	free(corr);
	/* stamping again (no forgery left: ours is the only one) adds one */
	CHECK_INT(stamp_measure(props, 100, &bytes), 0);
	mosquitto_property_free_all(&props);

	/* 100,000 properties with a forged role: linear, well under a second
	 * (the list walk per copy of the old code took minutes) */
	mosquitto_property *big = NULL, *tail = NULL;
	mosquitto_property_add_string_pair(&big, MQTT_PROP_USER_PROPERTY, "chat-role", "admin");
	tail = big;
	for (int i = 0; i < 100000; i++) {
		mosquitto_property *at = tail;
		mosquitto_property_add_string_pair(&at, MQTT_PROP_USER_PROPERTY, "a", "b");
		tail = (mosquitto_property *)mosquitto_property_next(tail);
	}
	double t0 = seconds();
	CHECK_INT(stamp_measure(big, 32, &bytes), -1);
	CHECK(seconds() - t0 < 0.01); /* stops after 33 */
	t0 = seconds();
	CHECK_INT(stamp_apply(&big, "admin"), 0);
	double took = seconds() - t0;
	CHECK(took < 5.0); /* linear: ~0.2 s (ASan ~0.8 s); the old copy took minutes */
	size_t n = 0, roles = 0;
	for (const mosquitto_property *p = big; p; p = mosquitto_property_next(p), n++) {
		char *name = NULL, *value = NULL;
		mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name, &value,
		                                    false);
		roles += strcmp(name, "chat-role") == 0;
		if (mosquitto_property_next(p) == NULL)
			CHECK_STR(value, "admin");
		free(name);
		free(value);
	}
	CHECK_INT(n, 100001);
	CHECK_INT(roles, 1);
	mosquitto_property_free_all(&big);
	printf("stamp of 100,000 properties with a forged role: %.3f s\n", took);
	return check_report();
}
