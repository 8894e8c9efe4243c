/* util: see util.h. Nothing here logs; callers decide what an error means. */
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

/* ---- buffers ---- */

int buf_reserve(struct buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

int buf_add(struct buf *b, const void *data, size_t len)
{
	if (buf_reserve(b, len) < 0)
		return -1;
	if (len)
		memcpy(b->p + b->len, data, len);
	b->len += len;
	b->p[b->len] = '\0';
	return 0;
}

int buf_adds(struct buf *b, const char *s) { return buf_add(b, s, strlen(s)); }

int buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || buf_reserve(b, (size_t)n) < 0)
		return -1;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
	return 0;
}

void buf_consume(struct buf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		if (b->p)
			b->p[0] = '\0';
		return;
	}
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
	b->p[b->len] = '\0';
}

void buf_free(struct buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

/* ---- time ---- */

int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

long long node_memory_mb(void)
{
	return (long long)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE) / (1024 * 1024);
}

void fmt_time_rfc3339(int64_t unix_ns, char out[40])
{
	time_t sec = (time_t)(unix_ns / 1000000000LL);
	long nsec = (long)(unix_ns % 1000000000LL);
	struct tm tm;
	gmtime_r(&sec, &tm);
	size_t n = strftime(out, 40, "%Y-%m-%dT%H:%M:%S", &tm);
	if (nsec) {
		char frac[16];
		snprintf(frac, sizeof frac, ".%09ld", nsec);
		size_t l = strlen(frac);
		while (l > 1 && frac[l - 1] == '0')
			frac[--l] = '\0';
		snprintf(out + n, 40 - n, "%sZ", frac);
	} else {
		snprintf(out + n, 40 - n, "Z");
	}
}

/* Go: fmtFrac + fmtInt layout of time.Duration.String for values >= 1s; smaller ones use
 * ms/us/ns units. */
void fmt_go_duration(int64_t ns, char out[40])
{
	char tmp[40];
	int neg = ns < 0;
	uint64_t u = neg ? (uint64_t)(-ns) : (uint64_t)ns;
	if (u == 0) {
		snprintf(out, 40, "0s");
		return;
	}
	if (u < 1000000000ULL) {
		const char *unit;
		uint64_t div;
		if (u < 1000) {
			snprintf(out, 40, "%s%lluns", neg ? "-" : "", (unsigned long long)u);
			return;
		} else if (u < 1000000) {
			unit = "\xc2\xb5s";
			div = 1000;
		} else {
			unit = "ms";
			div = 1000000;
		}
		char frac[16] = "";
		uint64_t f = u % div;
		if (f) {
			int digits = div == 1000 ? 3 : 6;
			snprintf(frac, sizeof frac, ".%0*llu", digits, (unsigned long long)f);
			size_t l = strlen(frac);
			while (frac[l - 1] == '0')
				frac[--l] = '\0';
		}
		snprintf(out, 40, "%s%llu%s%s", neg ? "-" : "", (unsigned long long)(u / div), frac, unit);
		return;
	}
	uint64_t secs = u / 1000000000ULL, frac_ns = u % 1000000000ULL;
	char frac[16] = "";
	if (frac_ns) {
		snprintf(frac, sizeof frac, ".%09llu", (unsigned long long)frac_ns);
		size_t l = strlen(frac);
		while (frac[l - 1] == '0')
			frac[--l] = '\0';
	}
	uint64_t h = secs / 3600, m = (secs / 60) % 60, s = secs % 60;
	if (h)
		snprintf(tmp, sizeof tmp, "%lluh%llum%llu%ss", (unsigned long long)h, (unsigned long long)m,
			 (unsigned long long)s, frac);
	else if (m)
		snprintf(tmp, sizeof tmp, "%llum%llu%ss", (unsigned long long)m, (unsigned long long)s, frac);
	else
		snprintf(tmp, sizeof tmp, "%llu%ss", (unsigned long long)s, frac);
	snprintf(out, 40, "%s%s", neg ? "-" : "", tmp);
}

/* ---- uuid ---- */

void uuid_v4(char out[37])
{
	uuid_t u;
	uuid_generate_random(u);
	uuid_unparse_lower(u, out);
}

int is_uuid(const char *s)
{
	if (strlen(s) != 36)
		return 0;
	for (int i = 0; i < 36; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
		} else if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f') ||
			     (s[i] >= 'A' && s[i] <= 'F'))) {
			return 0;
		}
	}
	return 1;
}

/* ---- base64 ---- */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
	size_t o = 0, i = 0;
	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64chars[v >> 18 & 63];
		out[o++] = b64chars[v >> 12 & 63];
		out[o++] = b64chars[v >> 6 & 63];
		out[o++] = b64chars[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
		out[o++] = b64chars[v >> 18 & 63];
		out[o++] = b64chars[v >> 12 & 63];
		out[o++] = i + 1 < n ? b64chars[v >> 6 & 63] : '=';
		out[o++] = '=';
	}
	out[o] = '\0';
	return o;
}

static int b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Go's StdEncoding: padding required, no whitespace except \r and \n (which Go skips). */
ssize_t b64_decode(const char *in, size_t n, unsigned char *out)
{
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0, pad = 0, q = 0;
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		if (c == '\r' || c == '\n')
			continue;
		if (c == '=') {
			pad++;
			q++;
			continue;
		}
		if (pad)
			return -1;
		int v = b64val(c);
		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		q++;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits & 0xff);
		}
	}
	if (q % 4 != 0 || pad > 2)
		return -1;
	return (ssize_t)o;
}

/* ---- sha1 (FIPS 180-1), only for Sec-WebSocket-Accept ---- */

#define ROL(v, n) (((v) << (n)) | ((v) >> (32 - (n))))

static void sha1_block(uint32_t h[5], const unsigned char *p)
{
	uint32_t w[80];
	for (int i = 0; i < 16; i++)
		w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 |
		       p[4 * i + 3];
	for (int i = 16; i < 80; i++)
		w[i] = ROL(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
	uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
	for (int i = 0; i < 80; i++) {
		uint32_t f, k;
		if (i < 20) {
			f = (b & c) | (~b & d);
			k = 0x5A827999;
		} else if (i < 40) {
			f = b ^ c ^ d;
			k = 0x6ED9EBA1;
		} else if (i < 60) {
			f = (b & c) | (b & d) | (c & d);
			k = 0x8F1BBCDC;
		} else {
			f = b ^ c ^ d;
			k = 0xCA62C1D6;
		}
		uint32_t t = ROL(a, 5) + f + e + k + w[i];
		e = d;
		d = c;
		c = ROL(b, 30);
		b = a;
		a = t;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
}

void sha1(const unsigned char *data, size_t len, unsigned char out[20])
{
	uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
	unsigned char block[64];
	size_t i = 0;
	for (; i + 64 <= len; i += 64)
		sha1_block(h, data + i);
	size_t rest = len - i;
	memset(block, 0, sizeof block);
	memcpy(block, data + i, rest);
	block[rest] = 0x80;
	if (rest >= 56) {
		sha1_block(h, block);
		memset(block, 0, sizeof block);
	}
	uint64_t bits = (uint64_t)len * 8;
	for (int j = 0; j < 8; j++)
		block[63 - j] = (unsigned char)(bits >> (8 * j));
	sha1_block(h, block);
	for (int j = 0; j < 5; j++) {
		out[4 * j] = (unsigned char)(h[j] >> 24);
		out[4 * j + 1] = (unsigned char)(h[j] >> 16);
		out[4 * j + 2] = (unsigned char)(h[j] >> 8);
		out[4 * j + 3] = (unsigned char)h[j];
	}
}

/* ---- url ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

ssize_t url_decode(const char *s, size_t n, char *out, int plus_space)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			if (i + 2 >= n)
				return -1;
			int a = hexval(s[i + 1]), b = hexval(s[i + 2]);
			if (a < 0 || b < 0)
				return -1;
			out[o++] = (char)(a << 4 | b);
			i += 2;
		} else if (plus_space && s[i] == '+') {
			out[o++] = ' ';
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return (ssize_t)o;
}

/* ---- files ---- */

int write_file_atomic(const char *path, const void *data, size_t len, mode_t mode)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0)
		return -1;
	const char *p = data;
	size_t left = len;
	while (left > 0) {
		ssize_t w = write(fd, p, left);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			unlink(tmp);
			errno = e;
			return -1;
		}
		p += w;
		left -= (size_t)w;
	}
	if (close(fd) < 0 || rename(tmp, path) < 0) {
		int e = errno;
		unlink(tmp);
		errno = e;
		return -1;
	}
	return 0;
}

char *read_file(const char *path, size_t max, size_t *len_out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct buf b = {0};
	char chunk[8192];
	for (;;) {
		ssize_t r = read(fd, chunk, sizeof chunk);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (b.len + (size_t)r > max || buf_add(&b, chunk, (size_t)r) < 0) {
			buf_free(&b);
			close(fd);
			errno = EFBIG;
			return NULL;
		}
	}
	close(fd);
	if (!b.p && buf_reserve(&b, 0) == 0)
		b.p[0] = '\0';
	if (len_out)
		*len_out = b.len;
	return b.p;
}

int mkdir_p(const char *path, mode_t mode)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp) {
		errno = ENAMETOOLONG;
		return -1;
	}
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, mode) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}


/* Removes name in directory dfd, and everything below it, relative to directory descriptors all
 * the way down (so that no path grows beyond PATH_MAX however deep the tree is), never following
 * a symlink or leaving the file system of dev. Goes on after a failure; returns 0, or -1 with
 * errno of the first failure. */
static int rm_at(int dfd, const char *name, dev_t dev, int depth)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dfd, name, 0) < 0 && errno != ENOENT ? -1 : 0;
	if (st.st_dev != dev || depth > 4096)
		return errno = st.st_dev != dev ? EXDEV : ELOOP, -1;
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	int rc = 0, first = 0;
	struct dirent *de;
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && rm_at(fd, de->d_name, dev, depth + 1) < 0 &&
		    !rc)
			rc = -1, first = errno;
	closedir(d);
	if (unlinkat(dfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT && !rc)
		rc = -1, first = errno;
	return rc < 0 ? (errno = first, -1) : 0;
}

int rm_rf(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -1;
	return rm_at(AT_FDCWD, path, st.st_dev, 0);
}

static char copy_dst[PATH_MAX];
static size_t copy_src_len;
static int copy_failed;

static int copy_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)ftw;
	char to[PATH_MAX * 2];
	snprintf(to, sizeof to, "%s%s", copy_dst, path + copy_src_len);
	if (flag == FTW_D) {
		if (mkdir(to, st->st_mode & 07777) < 0)
			copy_failed = 1;
	} else if (flag == FTW_SL) {
		char target[PATH_MAX];
		ssize_t n = readlink(path, target, sizeof target - 1);
		if (n < 0 || (target[n] = '\0', symlink(target, to) < 0))
			copy_failed = 1;
	} else if (flag == FTW_F && S_ISREG(st->st_mode)) {
		size_t len = 0;
		char *data = read_file(path, 64 << 20, &len);
		int fd = data ? open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st->st_mode & 07777) : -1;
		if (fd < 0 || write(fd, data, len) != (ssize_t)len)
			copy_failed = 1;
		if (fd >= 0)
			close(fd);
		free(data);
	} /* unreadable directories, devices, sockets and fifos are left out */
	return 0;
}

int copy_tree(const char *src, const char *dst)
{
	snprintf(copy_dst, sizeof copy_dst, "%s", dst);
	copy_src_len = strlen(src);
	copy_failed = 0;
	if (nftw(src, copy_entry, 32, FTW_PHYS) < 0)
		return -1;
	return copy_failed ? -1 : 0;
}

int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t n = strlen(s);
	ssize_t w = write(fd, s, n);
	int e = errno;
	close(fd);
	errno = e;
	return w == (ssize_t)n ? 0 : -1;
}

void file_name_escape(const char *in, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)in; *p && o + 4 < cap; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '.' || *p == '_' || *p == '-') {
			if (o == 0 && *p == '.') {
				out[o++] = '%';
				out[o++] = '2';
				out[o++] = 'E';
				continue;
			}
			out[o++] = (char)*p;
		} else {
			out[o++] = '%';
			out[o++] = hex[*p >> 4];
			out[o++] = hex[*p & 15];
		}
	}
	out[o] = '\0';
}

void signals_reset_for_exec(void)
{
	struct sigaction dfl = {.sa_handler = SIG_DFL};
	sigemptyset(&dfl.sa_mask);
	for (int sig = 1; sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP || sigaction(sig, &dfl, NULL) == 0)
			continue;
		/* the C library keeps 32 and 33 for itself and refuses them, yet an ignored disposition
		 * of them is inherited too (GNU make ignores both for its recipes): ask the kernel */
		struct {
			void *handler;
			unsigned long flags;
			void *restorer;
			unsigned long mask;
		} k = {SIG_DFL, 0, NULL, 0};
		syscall(SYS_rt_sigaction, sig, &k, NULL, sizeof k.mask);
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}
