/* wsmsg: the JSON messages poseidon-wsgate sends to a client (docs/api.md section 3, WS-21).
 *
 * Exactly these shapes, keys in this order and nothing else, because CodeOcean drops any message
 * with an extra key or a wrong type:
 *   {"type":"start"}  {"type":"stdout","data":"..."}  {"type":"stderr","data":"..."}
 *   {"type":"exit","data":N}  {"type":"timeout"}  {"type":"error","data":"..."}
 * Output is turned into valid UTF-8 on the way: a multi-byte character split across two chunks
 * is carried over to the next chunk of the same stream (struct wsmsg_utf8), every byte that
 * cannot start or continue a valid character becomes U+FFFD (as Go's encoding/json does it, one
 * replacement per bad byte), and a chunk that leaves nothing to send renders nothing: no empty
 * output message is ever produced. Pure functions, no allocation; callers give the buffer.
 */
#ifndef POSEIDON_WSMSG_H
#define POSEIDON_WSMSG_H

#include <stddef.h>

/* The texts of the terminal error message (WS-22); CodeOcean matches the first one. */
#define WSMSG_ERR_OOM     "the allocation was OOM Killed"
#define WSMSG_ERR_STOPPED "the allocation stopped as expected"
#define WSMSG_ERR_GENERIC "Error executing the request"

/* Longest control message ({"type":"exit","data":255}, start, timeout; not error). */
#define WSMSG_CONTROL_MAX 32

enum wsmsg_stream { WSMSG_STDOUT, WSMSG_STDERR };

/* Bytes of an incomplete UTF-8 character held back from the end of the previous chunk. Start
 * zeroed; one per stream. */
struct wsmsg_utf8 {
	unsigned char carry[4];
	size_t n;
};

/* Room an output message of len data bytes may need (carry and JSON escaping included). */
size_t wsmsg_output_cap(size_t len);

/* Renders the output message for data (after what u carried) into out, which must hold
 * wsmsg_output_cap(len) bytes; a trailing incomplete character goes into u for the next call.
 * Returns the message length (not NUL-terminated), or 0 when nothing is to be sent. */
size_t wsmsg_output(char *out, size_t cap, enum wsmsg_stream s, struct wsmsg_utf8 *u, const char *data,
                    size_t len);
/* The stream ended: what u still carries, as one U+FFFD per byte (out needs
 * wsmsg_output_cap(0)). Returns 0 when u carries nothing. */
size_t wsmsg_output_flush(char *out, size_t cap, enum wsmsg_stream s, struct wsmsg_utf8 *u);

/* Control messages into out (cap >= WSMSG_CONTROL_MAX). Return the length. exit's code is
 * taken modulo 256, as the reference's uint8 conversion does. */
size_t wsmsg_start(char *out, size_t cap);
size_t wsmsg_timeout(char *out, size_t cap);
size_t wsmsg_exit(char *out, size_t cap, int code);
/* {"type":"error","data":text}; out needs wsmsg_output_cap(strlen(text)). */
size_t wsmsg_error(char *out, size_t cap, const char *text);

/* Escapes valid-UTF-8-or-not bytes as the inside of a JSON string (no quotes), replacing bad
 * bytes with U+FFFD and carrying an incomplete trailing character in u (NULL: a trailing
 * incomplete character is replaced too). out needs 6 * (len + 4) bytes. Returns the length. */
size_t wsmsg_escape(char *out, struct wsmsg_utf8 *u, const unsigned char *data, size_t len);

/* Length of the valid UTF-8 character at s (1..4), 0 if s[0..avail) is a valid but incomplete
 * start of one, -1 if s[0] cannot begin a valid character there. avail > 0. */
int wsmsg_utf8_char_len(const unsigned char *s, size_t avail);

#endif
