/* The status page (deploy/www/status/) in headless Chromium against the real stack (issue 7):
 * Redis, nomad-local, poseidon-refill and lighttpd with workers behind a token. Chromium loads
 * http://127.0.0.1:<port>/status/ and runs its JavaScript with a virtual time budget, so several
 * polls happen; the test reads the DOM it dumps (each environment's card with its figures, the
 * charts with more than one point) and a screenshot (a PNG of the window's size that is not blank,
 * measured against a blank page rendered the same way). Skips only when Chromium cannot start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define CHROMIUM            "/usr/bin/chromium"
#define TOKEN               "status-page-token"
#define ENV                 9  /* a pool of 2, one runner claimed */
#define ENV_EMPTY           12 /* a pool of 0, one claim that found it empty */
#define WIDTH               1200
#define HEIGHT              900
#define CHROMIUM_TIMEOUT_MS 20000

static struct h_stack st;
static int chromium_ok;
static const char *const auth[] = {"Poseidon-Token: " TOKEN, NULL};

/* Runs Chromium headless with a fresh profile and the extra arguments; its stdout goes to out
 * (may be NULL). 0 when it exited 0 within the timeout. */
static int chromium(const char *out, const char *const *extra)
{
	static int runs;
	char profile[600], log[600];
	snprintf(profile, sizeof profile, "%s/chromium-profile-%d", h_tmpdir(), runs);
	snprintf(log, sizeof log, "%s/chromium-%d.log", h_tmpdir(), runs++);
	mkdir(profile, 0700);
	char user_data[700];
	snprintf(user_data, sizeof user_data, "--user-data-dir=%s", profile);
	const char *argv[32] = {CHROMIUM,
	                        "--headless",
	                        "--no-sandbox",
	                        "--disable-gpu",
	                        "--disable-quic",
	                        "--no-first-run",
	                        "--disable-background-networking",
	                        "--disable-component-update",
	                        "--disable-sync",
	                        "--hide-scrollbars",
	                        "--force-device-scale-factor=1",
	                        user_data};
	int argc = 12;
	for (const char *const *e = extra; *e && argc < 31; e++)
		argv[argc++] = *e;
	argv[argc] = NULL;
	pid_t parent = getpid(), pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(1);
		int fd = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int lf = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int nul = open("/dev/null", O_RDONLY);
		if (fd < 0 || lf < 0 || nul < 0)
			_exit(126);
		dup2(nul, 0);
		dup2(fd, 1);
		dup2(lf, 2);
		execv(CHROMIUM, (char *const *)argv);
		_exit(127);
	}
	setpgid(pid, pid);
	int status = -1;
	for (long long end = h_now_ms() + CHROMIUM_TIMEOUT_MS; h_now_ms() < end;) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			break;
		h_sleep_ms(20);
		status = -1;
	}
	kill(-pid, SIGKILL); /* its helpers, and itself after a timeout */
	int timed_out = status == -1;
	if (timed_out)
		waitpid(pid, &status, 0);
	/* helpers orphaned by it are ours (the harness is a subreaper): reap its process group */
	for (long long end = h_now_ms() + 1000; h_now_ms() < end;) {
		pid_t r = waitpid(-pid, NULL, WNOHANG);
		if (r < 0 && errno == ECHILD)
			break;
		if (r == 0)
			h_sleep_ms(10);
	}
	if (timed_out) {
		fprintf(stderr, "chromium timed out (log: %s)\n", log);
		return -1;
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *p = malloc((size_t)n + 1);
	if (p && fread(p, 1, (size_t)n, f) != (size_t)n) {
		free(p);
		p = NULL;
	}
	fclose(f);
	if (p) {
		p[n] = '\0';
		if (len)
			*len = (size_t)n;
	}
	return p;
}

static long api(const char *method, const char *path, const char *body)
{
	char url[256];
	struct h_resp r;
	snprintf(url, sizeof url, "%s%s", st.base, path);
	if (h_http(&r, method, url, body, -1, auth) < 0)
		return -1;
	long s = r.status;
	h_resp_free(&r);
	return s;
}

static int setup(void **state)
{
	(void)state;
	/* can Chromium start at all? a data: URL needs nothing but itself */
	char probe[600];
	snprintf(probe, sizeof probe, "%s/probe.html", h_tmpdir());
	const char *args[] = {"--dump-dom", "data:text/html,<p>chromium%20works</p>", NULL};
	char *dom = access(CHROMIUM, X_OK) == 0 && chromium(probe, args) == 0 ? slurp(probe, NULL) : NULL;
	chromium_ok = dom && strstr(dom, "chromium works");
	free(dom);
	if (!chromium_ok) {
		fprintf(
		    stderr,
		    "SKIP: %s cannot start headless (install Debian's chromium: deploy/install-deps.sh)\n",
		    CHROMIUM);
		return 0;
	}
	static const char *refill_env[] = {"POSEIDON_REFILL_TICKMS=100", "POSEIDON_METRICS_FLUSHMS=100",
	                                   NULL};
	static const char *front_env[] = {"POSEIDON_METRICS_FLUSHMS=100", NULL};
	struct h_front_opts o = {.workers = 2, .token = TOKEN, .env = front_env};
	if (h_redis_start(&st.redis) < 0 || h_stack_start_nomad(&st) < 0 || h_stack_start(&st, &o) < 0 ||
	    h_stack_start_refill(&st, refill_env) < 0)
		return -1;
	if (api("PUT", "/execution-environments/9",
	        "{\"prewarmingPoolSize\":2,\"cpuLimit\":50,\"memoryLimit\":256,\"image\":\"img\"}") != 201 ||
	    api("PUT", "/execution-environments/12",
	        "{\"prewarmingPoolSize\":0,\"cpuLimit\":50,\"memoryLimit\":256,\"image\":\"img\"}") != 201)
		return -1;
	for (int i = 0; i < 300 && atoi(h_redis_cli(&st.redis, "LLEN poseidon:pool:%d", ENV)) < 2; i++)
		h_sleep_ms(50);
	if (api("POST", "/runners", "{\"executionEnvironmentId\":9,\"inactivityTimeout\":300}") != 200 ||
	    api("POST", "/runners", "{\"executionEnvironmentId\":12}") != 500)
		return -1;
	/* the refill daemon tops the pool up again: 2 idle, 1 used, none starting */
	for (int i = 0; i < 300 && (atoi(h_redis_cli(&st.redis, "LLEN poseidon:pool:%d", ENV)) < 2 ||
	                            atoi(h_redis_cli(&st.redis, "SCARD poseidon:starting:%d", ENV)) > 0);
	     i++)
		h_sleep_ms(50);
	h_sleep_ms(300); /* the workers' figures reach Redis (metrics.flushms 100) */
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (!chromium_ok)
		return 0;
	h_stack_stop(&st);
	return h_sanitizer_reports(st.rundir) == 0 ? 0 : -1;
}

/* The page's DOM after a few polls (virtual time runs ahead while the page waits). */
static char *page_dom(const char *fragment)
{
	char url[256], out[600], budget[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%d/status/%s", st.port, fragment);
	snprintf(out, sizeof out, "%s/dom-%lld.html", h_tmpdir(), h_now_ms());
	snprintf(budget, sizeof budget, "--virtual-time-budget=%d", 6000);
	const char *args[] = {budget, "--dump-dom", url, NULL};
	assert_int_equal(chromium(out, args), 0);
	char *dom = slurp(out, NULL);
	assert_non_null(dom);
	return dom;
}

/* The opening tag of the element with this id, as a string (static). */
static const char *tag_of(const char *dom, const char *id)
{
	static char tag[1024];
	char needle[64];
	snprintf(needle, sizeof needle, "id=\"%s\"", id);
	const char *p = strstr(dom, needle);
	if (!p)
		return NULL;
	const char *start = p;
	while (start > dom && *start != '<')
		start--;
	const char *end = strchr(p, '>');
	snprintf(tag, sizeof tag, "%.*s", (int)(end - start + 1), start);
	return tag;
}

static void test_page_shows_every_environment_with_its_figures(void **state)
{
	(void)state;
	if (!chromium_ok)
		skip();
	char *dom = page_dom("#token=" TOKEN "&interval=500");
	assert_non_null(strstr(dom, "data-state=\"ok\""));
	const char *card = tag_of(dom, "env-9");
	assert_non_null(card);
	assert_non_null(strstr(card, "data-size=\"2\""));
	assert_non_null(strstr(card, "data-idle=\"2\""));
	assert_non_null(strstr(card, "data-used=\"1\""));
	assert_non_null(strstr(card, "data-starting=\"0\""));
	assert_non_null(strstr(card, "data-claims=\"1\""));
	assert_non_null(strstr(card, "data-empty=\"0\""));
	card = tag_of(dom, "env-12");
	assert_non_null(card);
	assert_non_null(strstr(card, "data-size=\"0\""));
	assert_non_null(strstr(card, "data-idle=\"0\""));
	assert_non_null(strstr(card, "data-claims=\"0\""));
	assert_non_null(strstr(card, "data-empty=\"1\""));
	assert_non_null(strstr(dom, "<h2>Environment 9</h2>"));
	assert_non_null(strstr(dom, "<h2>Environment 12</h2>"));
	assert_true(strstr(dom, "id=\"env-9\"") < strstr(dom, "id=\"env-12\"")); /* numeric order */
	/* several polls happened, and the charts drew them */
	const char *samples = strstr(dom, "data-samples=\"");
	assert_non_null(samples);
	assert_true(atoi(samples + 14) >= 3);
	const char *idle = strstr(strstr(dom, "id=\"env-9\""), "<polyline class=\"s-idle\" data-points=\"");
	assert_non_null(idle);
	assert_true(atoi(idle + 38) >= 3);
	assert_non_null(strstr(dom, "<polyline class=\"s-requests\""));
	/* the token left the address bar and stays in this tab only */
	assert_null(strstr(dom, TOKEN));
	free(dom);
}

static void test_page_asks_for_the_token(void **state)
{
	(void)state;
	if (!chromium_ok)
		skip();
	char *dom = page_dom("");
	assert_non_null(strstr(dom, "data-state=\"unauthorized\""));
	assert_non_null(strstr(dom, "enter it above"));
	assert_null(strstr(dom, "id=\"env-9\""));
	free(dom);
}

/* PNG: width and height from IHDR, and the bytes of all IDAT chunks. -1 when it is no PNG. */
static int png_info(const char *path, unsigned *w, unsigned *h, size_t *idat)
{
	size_t len;
	unsigned char *p = (unsigned char *)slurp(path, &len);
	static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
	int rc = -1;
	*idat = 0;
	if (p && len > 33 && memcmp(p, sig, 8) == 0 && memcmp(p + 12, "IHDR", 4) == 0) {
		*w = (unsigned)p[16] << 24 | (unsigned)p[17] << 16 | (unsigned)p[18] << 8 | p[19];
		*h = (unsigned)p[20] << 24 | (unsigned)p[21] << 16 | (unsigned)p[22] << 8 | p[23];
		for (size_t o = 8; o + 12 <= len;) {
			size_t n =
			    (size_t)p[o] << 24 | (size_t)p[o + 1] << 16 | (size_t)p[o + 2] << 8 | p[o + 3];
			if (memcmp(p + o + 4, "IDAT", 4) == 0)
				*idat += n;
			if (memcmp(p + o + 4, "IEND", 4) == 0)
				rc = 0;
			o += 12 + n;
		}
	}
	free(p);
	return rc;
}

static void screenshot(const char *url, const char *file)
{
	char shot[700], size[64], budget[64];
	snprintf(shot, sizeof shot, "--screenshot=%s", file);
	snprintf(size, sizeof size, "--window-size=%d,%d", WIDTH, HEIGHT);
	snprintf(budget, sizeof budget, "--virtual-time-budget=%d", 6000);
	const char *args[] = {shot, size, budget, url, NULL};
	assert_int_equal(chromium(NULL, args), 0);
}

static void test_screenshot_is_a_picture_of_the_page(void **state)
{
	(void)state;
	if (!chromium_ok)
		skip();
	char page[600], blank[600], url[256];
	snprintf(page, sizeof page, "%s/status.png", h_tmpdir());
	snprintf(blank, sizeof blank, "%s/blank.png", h_tmpdir());
	snprintf(url, sizeof url, "http://127.0.0.1:%d/status/#token=" TOKEN "&interval=500", st.port);
	screenshot(url, page);
	screenshot("data:text/html,<html><body></body></html>", blank);
	unsigned w, h, bw, bh;
	size_t idat, bidat;
	assert_int_equal(png_info(page, &w, &h, &idat), 0);
	assert_int_equal(png_info(blank, &bw, &bh, &bidat), 0);
	assert_int_equal(w, WIDTH);
	assert_int_equal(h, HEIGHT);
	assert_int_equal(bw, WIDTH);
	assert_int_equal(bh, HEIGHT);
	/* a blank page compresses to almost nothing; text, numbers and charts do not */
	fprintf(stderr, "status page screenshot: %zu bytes of image data, a blank page %zu\n", idat, bidat);
	assert_true(idat > 10 * bidat);
	assert_true(idat > 20000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_page_shows_every_environment_with_its_figures),
	    cmocka_unit_test(test_page_asks_for_the_token),
	    cmocka_unit_test(test_screenshot_is_a_picture_of_the_page),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
