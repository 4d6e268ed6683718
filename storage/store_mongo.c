/*
 * The MongoDB backend of the store (mongodb://...): not written yet; the
 * URL is refused clearly until it is.
 */
#include <stdio.h>

#include "store_impl.h"

int store__mongo_open(const char *url, struct store **out, char *err, size_t errlen)
{
	(void)url;
	*out = NULL;
	snprintf(err, err ? errlen : 0, "the MongoDB store is not built yet");
	return STORE_E_URL;
}
