/* wsmsg: see wsmsg.h. UTF-8 validity follows RFC 3629 (no overlong forms, no surrogates, nothing
 * above U+10FFFF), the same rules Go applies when it encodes a string to JSON. */
#include "wsmsg.h"

#include <stdio.h>
#include <string.h>

static const char fffd[] = "\xEF\xBF\xBD";

int wsmsg_utf8_char_len(const unsigned char *s, size_t avail)
{
	unsigned char c = s[0];
	int need;
	unsigned char lo = 0x80, hi = 0xBF; /* range of the second byte */
	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		need = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		need = 3;
		if (c == 0xE0)
			lo = 0xA0; /* overlong */
		else if (c == 0xED)
			hi = 0x9F; /* surrogates */
	} else if (c >= 0xF0 && c <= 0xF4) {
		need = 4;
		if (c == 0xF0)
			lo = 0x90; /* overlong */
		else if (c == 0xF4)
			hi = 0x8F; /* above U+10FFFF */
	} else {
		return -1;
	}
	for (int i = 1; i < need; i++) {
		if ((size_t)i >= avail)
			return 0; /* a valid start that the next chunk may complete */
		unsigned char b = s[i];
		if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xBF))
			return -1;
	}
	return need;
}

/* Appends one character's JSON form at out; returns bytes written. */
static size_t put_char(char *out, const unsigned char *s, int n)
{
	static const char hex[] = "0123456789abcdef";
	if (n > 1) {
		memcpy(out, s, (size_t)n);
		return (size_t)n;
	}
	unsigned char c = s[0];
	switch (c) {
	case '"': memcpy(out, "\\\"", 2); return 2;
	case '\\': memcpy(out, "\\\\", 2); return 2;
	case '\n': memcpy(out, "\\n", 2); return 2;
	case '\r': memcpy(out, "\\r", 2); return 2;
	case '\t': memcpy(out, "\\t", 2); return 2;
	default: break;
	}
	if (c < 0x20) {
		memcpy(out, "\\u00", 4);
		out[4] = hex[c >> 4];
		out[5] = hex[c & 15];
		return 6;
	}
	out[0] = (char)c;
	return 1;
}

size_t wsmsg_escape(char *out, struct wsmsg_utf8 *u, const unsigned char *data, size_t len)
{
	size_t o = 0, i = 0;
	if (u && u->n) {
		/* the character begun in the previous chunk: complete it from the first bytes of this one */
		unsigned char tmp[4];
		size_t have = u->n, take = len < 4 - have ? len : 4 - have;
		memcpy(tmp, u->carry, have);
		memcpy(tmp + have, data, take);
		int n = wsmsg_utf8_char_len(tmp, have + take);
		if (n > 0) {
			o += put_char(out + o, tmp, n);
			i = (size_t)n - have;
			u->n = 0;
		} else if (n == 0) {
			memcpy(u->carry, tmp, have + take); /* still incomplete: this chunk was tiny */
			u->n = have + take;
			return 0;
		} else {
			/* lead and continuation bytes that lead nowhere: one U+FFFD each */
			for (size_t k = 0; k < have; k++, o += 3)
				memcpy(out + o, fffd, 3);
			u->n = 0;
		}
	}
	while (i < len) {
		int n = wsmsg_utf8_char_len(data + i, len - i);
		if (n == 0) {
			if (u) {
				memcpy(u->carry, data + i, len - i);
				u->n = len - i;
				break;
			}
			n = -1;
		}
		if (n < 0) {
			memcpy(out + o, fffd, 3);
			o += 3;
			i++;
			continue;
		}
		o += put_char(out + o, data + i, n);
		i += (size_t)n;
	}
	return o;
}

size_t wsmsg_output_cap(size_t len)
{
	return 6 * (len + 4) + 40;
}

size_t wsmsg_output(char *out, size_t cap, enum wsmsg_stream s, struct wsmsg_utf8 *u, const char *data,
                    size_t len)
{
	const char *head =
	    s == WSMSG_STDERR ? "{\"type\":\"stderr\",\"data\":\"" : "{\"type\":\"stdout\",\"data\":\"";
	size_t h = strlen(head);
	if (cap < wsmsg_output_cap(len))
		return 0;
	size_t body = wsmsg_escape(out + h, u, (const unsigned char *)data, len);
	if (body == 0)
		return 0;
	memcpy(out, head, h);
	memcpy(out + h + body, "\"}", 2);
	return h + body + 2;
}

size_t wsmsg_output_flush(char *out, size_t cap, enum wsmsg_stream s, struct wsmsg_utf8 *u)
{
	unsigned char rest[4];
	size_t n = u->n;
	if (!n)
		return 0;
	memcpy(rest, u->carry, n);
	u->n = 0;
	/* without a carry state every incomplete byte is replaced */
	const char *head =
	    s == WSMSG_STDERR ? "{\"type\":\"stderr\",\"data\":\"" : "{\"type\":\"stdout\",\"data\":\"";
	size_t h = strlen(head);
	if (cap < wsmsg_output_cap(0))
		return 0;
	memcpy(out, head, h);
	size_t body = wsmsg_escape(out + h, NULL, rest, n);
	memcpy(out + h + body, "\"}", 2);
	return h + body + 2;
}

static size_t literal(char *out, size_t cap, const char *s)
{
	size_t n = strlen(s);
	if (cap < n)
		return 0;
	memcpy(out, s, n);
	return n;
}

size_t wsmsg_start(char *out, size_t cap)
{
	return literal(out, cap, "{\"type\":\"start\"}");
}

size_t wsmsg_timeout(char *out, size_t cap)
{
	return literal(out, cap, "{\"type\":\"timeout\"}");
}

size_t wsmsg_exit(char *out, size_t cap, int code)
{
	char buf[WSMSG_CONTROL_MAX];
	snprintf(buf, sizeof buf, "{\"type\":\"exit\",\"data\":%d}", (int)(unsigned char)code);
	return literal(out, cap, buf);
}

size_t wsmsg_error(char *out, size_t cap, const char *text)
{
	static const char head[] = "{\"type\":\"error\",\"data\":\"";
	size_t len = strlen(text), h = sizeof head - 1;
	if (cap < wsmsg_output_cap(len))
		return 0;
	memcpy(out, head, h);
	size_t body = wsmsg_escape(out + h, NULL, (const unsigned char *)text, len);
	memcpy(out + h + body, "\"}", 2);
	return h + body + 2;
}
