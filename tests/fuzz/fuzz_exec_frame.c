/* Frames from Nomad's exec WebSocket: nomad_exec_parse_frame with exactly the decode buffer
 * nomad_exec_decode_cap promises is enough (heap-allocated, so one byte over is an ASan report),
 * and the same bytes as a close frame's payload (nomad_exec_close_error). */
#include "fuzz.h"
#include "nomad_exec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > NOMAD_EXEC_FRAME_MAX)
		return 0;
	size_t cap = nomad_exec_decode_cap(size);
	char *buf = malloc(cap);
	FUZZ_CHECK(buf);
	struct nomad_exec_frame f;
	struct perr e = {0};
	if (nomad_exec_parse_frame((const char *)data, size, &f, buf, cap, &e) == 0) {
		FUZZ_CHECK(!f.out || (f.out >= buf && f.out + f.out_len <= buf + cap));
		FUZZ_CHECK(!f.err || (f.err >= buf && f.err + f.err_len <= buf + cap));
		FUZZ_CHECK(f.exited == 0 || f.exited == 1);
	} else {
		FUZZ_CHECK(e.kind == PERR_NOMAD_INTERNAL || e.kind == PERR_UNKNOWN);
		FUZZ_CHECK(memchr(e.msg, '\0', sizeof e.msg));
	}
	free(buf);
	nomad_exec_close_error(&e, data, size);
	FUZZ_CHECK(e.kind == PERR_NOMAD_INTERNAL && memchr(e.msg, '\0', sizeof e.msg));
	return 0;
}
