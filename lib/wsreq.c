/* wsreq: see wsreq.h. */
#include "wsreq.h"

#include <string.h>
#include <strings.h>

int wsreq_runner_from_path(const char *path, char *out, size_t cap)
{
	size_t pre = strlen(WSREQ_PATH_PREFIX), suf = strlen(WSREQ_PATH_SUFFIX), n;
	if (!path || strncmp(path, WSREQ_PATH_PREFIX, pre) != 0)
		return 0;
	const char *id = path + pre, *slash = strchr(id, '/');
	if (!slash || slash == id || strcmp(slash, WSREQ_PATH_SUFFIX) != 0)
		return 0;
	n = (size_t)(slash - id);
	if (n >= cap || n + pre + suf != strlen(path))
		return 0;
	memcpy(out, id, n);
	out[n] = '\0';
	return 1;
}

int wsreq_same_origin(const char *origin, const char *host)
{
	if (!origin || !*origin)
		return 1;
	if (!host)
		host = "";
	/* url.Parse: the authority follows "scheme://" and ends at the path, query or fragment;
	 * userinfo is not part of Host */
	const char *a = strstr(origin, "://");
	const char *h = "", *end;
	size_t hl = 0;
	if (a) {
		const char *colon = origin;
		while (colon < a &&
		       ((*colon >= 'a' && *colon <= 'z') || (*colon >= 'A' && *colon <= 'Z') ||
		        (colon > origin && ((*colon >= '0' && *colon <= '9') || strchr("+-.", *colon)))))
			colon++;
		if (colon == a && a > origin) {
			h = a + 3;
			end = h + strcspn(h, "/?#");
			const char *at = memchr(h, '@', (size_t)(end - h));
			while (at) {
				h = at + 1;
				at = memchr(h, '@', (size_t)(end - h));
			}
			hl = (size_t)(end - h);
		}
	}
	return strlen(host) == hl && strncasecmp(h, host, hl) == 0;
}
