/* Names for the fw_err codes (see fw_err.h). */
#include "fw_err.h"

const char *fw_strerror(int rc)
{
	switch (rc) {
	case FW_OK:
		return "ok";
	case FW_ERR_FULL:
		return "buffer full";
	case FW_ERR_SHORT:
		return "input truncated";
	case FW_ERR_MALFORMED:
		return "malformed input";
	case FW_ERR_PROTOCOL:
		return "protocol violation";
	case FW_ERR_INVALID:
		return "invalid argument";
	case FW_ERR_OFFLINE:
		return "not connected";
	case FW_ERR_BUSY:
		return "a post is in flight";
	case FW_ERR_NET:
		return "network error";
	case FW_ERR_REFUSED:
		return "refused by the broker";
	case FW_ERR_TIMEOUT:
		return "timed out";
	default:
		return "unknown error";
	}
}
