/* Races between requests and poseidon-refill (issue 15): each test races real clients (at most
 * 16) against each other and the refill daemon on the real stack, then checks the invariants over
 * Redis and Nomad: every runner in exactly one of pool, starting or used; Redis and Nomad agree
 * on the runners (once a reconcile had the chance to settle what the event stream cannot know);
 * nothing lost, nothing duplicated, nothing resurrected.
 *   - a list with ?fetch=true never removes an environment a PUT just made;
 *   - a GET with ?fetch=true never writes an older template over a newer PUT;
 *   - the refill never registers again the job of a runner the API just deleted;
 *   - a file copy that a DELETE of its runner overtakes answers 410, not 500;
 *   - a mixed load of all of it (10 s here, 60 s with POSEIDON_FAULT_FULL=1, as make test-fault
 *     runs it) ends with 0 lost, 0 duplicated, 0 resurrected and no 5xx but the documented ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "nomad.h"

#define SETTLE_MS 15000 /* reconcile runs every 3 s; Nomad's events may lag under load */
#define LAG_MS    60    /* the most Nomad's answers are held back on their way to the API and refill */

static struct h_stack st;
static struct nomad *nomad;

static long api(const char *method, const char *path, const char *body, char *out, size_t cap)
{
	return h_api(&st, method, path, body, out, cap);
}

/* PUTs environment id; 0 when the answer was want (201 or 204 when want is 0), else 1 (said why).
 * Racing tests count these and assert once their clients have stopped. */
static int put_env(long long id, int pool, int memory, long want)
{
	char path[64], body[256];
	snprintf(path, sizeof path, "/execution-environments/%lld", id);
	snprintf(body, sizeof body,
		 "{\"prewarmingPoolSize\":%d,\"cpuLimit\":50,\"memoryLimit\":%d,\"image\":\"img\",\"networkAccess\":false,"
		 "\"exposedPorts\":null}",
		 pool, memory);
	long status = api("PUT", path, body, NULL, 0);
	if (want ? status == want : (status == 201 || status == 204))
		return 0;
	fprintf(stderr, "PUT %s: %ld, expected %ld\n", path, status, want);
	return 1;
}

static void delete_env(long long id)
{
	char path[64];
	snprintf(path, sizeof path, "/execution-environments/%lld", id);
	long status = api("DELETE", path, NULL, NULL, 0);
	assert_true(status == 204 || status == 404);
}

/* Claims a runner of env, waiting for the pool; id receives it. */
static void claim(long long env, char id[128])
{
	char body[128], out[1024];
	snprintf(body, sizeof body, "{\"executionEnvironmentId\":%lld}", env);
	for (int i = 0; i < 300; i++) {
		long status = api("POST", "/runners", body, out, sizeof out);
		if (status == 200 && sscanf(out, "{\"runnerId\":\"%127[^\"]\"", id) == 1)
			return;
		h_sleep_ms(50);
	}
	fail_msg("no runner of environment %lld", env);
}

/* Whether Nomad has the job id and it is not dead (a purged job reads 404). */
static int job_alive(const char *id)
{
	json_object *job = NULL;
	struct perr e;
	int found = nomad_job_read(nomad, id, &job, &e);
	assert_true(found >= 0);
	json_object *s;
	int alive = found && json_object_object_get_ex(job, "Status", &s) && strcmp(json_object_get_string(s), "dead");
	json_object_put(job);
	return alive;
}

/* ---- the invariants ------------------------------------------------------------------------------- */

/* One look: every runner id of every environment in exactly one of pool, starting, used, with
 * its hash; no hash without a place; Redis's runners and Nomad's live runner jobs the same set.
 * Returns 1 when all holds, else 0 with why. */
static int invariants_now(char *why, size_t cap)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd,
		 "redis-cli -p %d --raw EVAL \"local o = {} "
		 "for _, env in ipairs(redis.call('SMEMBERS', 'poseidon:envs')) do "
		 "  for _, x in ipairs(redis.call('LRANGE', 'poseidon:pool:' .. env, 0, -1)) do o[#o+1] = 'P ' .. x end "
		 "  for _, x in ipairs(redis.call('SMEMBERS', 'poseidon:starting:' .. env)) do o[#o+1] = 'S ' .. x end "
		 "  for _, x in ipairs(redis.call('SMEMBERS', 'poseidon:used:' .. env)) do o[#o+1] = 'U ' .. x end "
		 "end "
		 "for _, k in ipairs(redis.call('KEYS', 'poseidon:runner:*')) do o[#o+1] = 'H ' .. string.sub(k, 17) end "
		 "return o\" 0",
		 st.redis.port);
	static char placed[4096][96], hashes[4096][96];
	int np = 0, nh = 0;
	FILE *p = popen(cmd, "r");
	char line[200];
	while (p && fgets(line, sizeof line, p)) {
		line[strcspn(line, "\n")] = '\0';
		if (line[0] == 'H' && nh < 4096)
			snprintf(hashes[nh++], sizeof hashes[0], "%s", line + 2);
		else if ((line[0] == 'P' || line[0] == 'S' || line[0] == 'U') && np < 4096)
			snprintf(placed[np++], sizeof placed[0], "%s", line + 2);
	}
	if (p)
		pclose(p);
	for (int i = 0; i < np; i++)
		for (int j = i + 1; j < np; j++)
			if (!strcmp(placed[i], placed[j]))
				return snprintf(why, cap, "runner %s is in two places", placed[i]), 0;
	for (int i = 0; i < nh; i++) {
		int found = 0;
		for (int j = 0; j < np && !found; j++)
			found = !strcmp(hashes[i], placed[j]);
		if (!found)
			return snprintf(why, cap, "runner %s has a hash and no place", hashes[i]), 0;
	}
	if (nh != np)
		return snprintf(why, cap, "%d runners placed, %d hashes", np, nh), 0;
	struct nomad_job_stub *stubs = NULL;
	size_t n = 0;
	struct perr e;
	if (nomad_jobs_list(nomad, "", &stubs, &n, &e) < 0)
		return snprintf(why, cap, "nomad: %s", e.msg), 0;
	int live = 0, ok = 1;
	for (size_t k = 0; k < n && ok; k++) {
		long long env;
		if (!strcmp(stubs[k].status, "dead") || nomad_is_template_job_id(stubs[k].id, &env))
			continue;
		live++;
		int found = 0;
		for (int j = 0; j < np && !found; j++)
			found = !strcmp(stubs[k].id, placed[j]);
		if (!found)
			ok = 0, snprintf(why, cap, "Nomad runs %s, which Redis does not know", stubs[k].id);
	}
	if (ok && live != np)
		ok = 0, snprintf(why, cap, "Nomad runs %d runner jobs, Redis has %d runners", live, np);
	free(stubs);
	return ok;
}

/* The invariants must hold within SETTLE_MS (reconcile settles what events cannot tell). */
static void assert_invariants(void)
{
	char why[512] = "";
	long long t0 = h_now_ms();
	while (!invariants_now(why, sizeof why)) {
		if (h_now_ms() - t0 > SETTLE_MS)
			fail_msg("invariants do not hold %d ms after the race: %s", SETTLE_MS, why);
		h_sleep_ms(250);
	}
	printf("  invariants hold after %lld ms\n", h_now_ms() - t0);
}


/* ---- a lagging link between nomad-local and the API and refill --------------------------------- */

/* These races live in the gap between reading something from Nomad and acting on it, a few
 * milliseconds on loopback. A real cluster answers in tens of milliseconds, at varying speed: this
 * proxy holds each piece of Nomad's answers back by 0 to LAG_MS ms (seeded, in order per
 * connection), so that the gaps are as wide as in production and answers overtake each other
 * across connections. Requests pass at once. */
static int lag_listen = -1, nomad_port;
static unsigned lag_seed;

static void *lag_pump(void *arg)
{
	int *fd = arg, a = fd[0], b = fd[1];
	unsigned seed = fd[2];
	free(fd);
	char buf[16384];
	struct pollfd fds[2] = {{a, POLLIN, 0}, {b, POLLIN, 0}};
	for (int done = 0; !done;) {
		if (poll(fds, 2, -1) < 0)
			continue;
		for (int i = 0; i < 2 && !done; i++) {
			if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			ssize_t n = read(fds[i].fd, buf, sizeof buf);
			if (n > 0 && i == 1)
				h_sleep_ms(rand_r(&seed) % (LAG_MS + 1));
			if (n <= 0 || write(fds[1 - i].fd, buf, (size_t)n) != n)
				done = 1;
		}
	}
	close(a);
	close(b);
	return NULL;
}

static void *lag_accept(void *arg)
{
	(void)arg;
	for (unsigned k = 0;; k++) {
		int c = accept(lag_listen, NULL, NULL), s = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in to = {.sin_family = AF_INET,
		                         .sin_port = htons((uint16_t)nomad_port),
		                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		if (c < 0 || connect(s, (struct sockaddr *)&to, sizeof to) < 0) {
			if (c >= 0)
				close(c);
			close(s);
			continue;
		}
		int *fd = malloc(3 * sizeof *fd);
		fd[0] = c, fd[1] = s, fd[2] = (int)(lag_seed + k);
		pthread_t t;
		pthread_create(&t, NULL, lag_pump, fd);
		pthread_detach(t);
	}
	return NULL;
}

/* Listens on a free loopback port in front of nomad-local; the port. */
static int lag_start(void)
{
	int port = h_free_port(), one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_port = htons((uint16_t)port),
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	lag_listen = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(lag_listen, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(lag_listen, (struct sockaddr *)&a, sizeof a) < 0 || listen(lag_listen, 128) < 0)
		return -1;
	lag_seed = getenv("POSEIDON_TEST_SEED") ? (unsigned)atoi(getenv("POSEIDON_TEST_SEED")) : (unsigned)time(NULL);
	printf("  Nomad's answers lag by 0-%d ms, seed %u (POSEIDON_TEST_SEED)\n", LAG_MS, lag_seed);
	pthread_t t;
	pthread_create(&t, NULL, lag_accept, NULL);
	pthread_detach(t);
	return port;
}

/* ---- setup ---------------------------------------------------------------------------------------- */

static int setup(void **state)
{
	(void)state;
	static char lagged[64];
	static const char *refill_env[] = {"POSEIDON_RECONCILE_INTERVAL=3", "POSEIDON_REFILL_TICKMS=100", lagged,
	                                   NULL};
	static const char *front_env[] = {lagged, NULL};
	struct h_front_opts o = {.workers = 8, .env = front_env};
	if (h_redis_start(&st.redis) < 0 || h_stack_start_nomad(&st) < 0)
		return -1;
	nomad_port = st.nomad.port;
	int lag = lag_start();
	if (lag < 0)
		return -1;
	/* the API and the refill talk to Nomad over the lagging link; this test's own checks do not */
	snprintf(lagged, sizeof lagged, "POSEIDON_NOMAD_PORT=%d", lag);
	if (h_stack_start(&st, &o) < 0 || h_stack_start_refill(&st, refill_env) < 0)
		return -1;
	struct config c;
	struct nomad_endpoint ep;
	h_stack_config(&st, &c);
	nomad_endpoint_from_config(&ep, &c);
	nomad = nomad_open(&ep);
	return nomad ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	nomad_close(nomad);
	h_stack_stop(&st);
	return h_sanitizer_reports(st.rundir) == 0 ? 0 : -1;
}

/* ---- 1: a list with fetch against PUTs ---------------------------------------------------------- */

static atomic_int stop_flag;

static void *fetch_list_loop(void *arg)
{
	atomic_long *fetches = arg;
	while (!atomic_load(&stop_flag)) {
		long s = api("GET", "/execution-environments?fetch=true", NULL, NULL, 0);
		if (s != 200)
			fprintf(stderr, "list with fetch: %ld\n", s);
		atomic_fetch_add(fetches, 1);
	}
	return NULL;
}

static void test_a_list_with_fetch_never_removes_what_a_put_made(void **state)
{
	(void)state;
	enum { ENVS = 40, FETCHERS = 4, BASE = 100 };
	atomic_long fetches = 0;
	pthread_t t[FETCHERS];
	atomic_store(&stop_flag, 0);
	for (int i = 0; i < FETCHERS; i++)
		pthread_create(&t[i], NULL, fetch_list_loop, &fetches);
	int wrong = 0;
	for (int i = 0; i < ENVS; i++) {
		wrong += put_env(BASE + i, 0, 64, 201);
		h_sleep_ms(50);
	}
	atomic_store(&stop_flag, 1);
	for (int i = 0; i < FETCHERS; i++)
		pthread_join(t[i], NULL);
	int gone = 0;
	for (int i = 0; i < ENVS; i++) {
		char tmpl[48];
		snprintf(tmpl, sizeof tmpl, "template-%d", BASE + i);
		int in_redis = atoi(h_redis_cli(&st.redis, "SISMEMBER poseidon:envs %d", BASE + i));
		if (!in_redis || !job_alive(tmpl)) {
			gone++;
			fprintf(stderr, "environment %d: redis %d, nomad %d\n", BASE + i, in_redis, job_alive(tmpl));
		}
	}
	printf("  %d environments PUT against %ld lists with fetch: %d gone, %d PUTs not answered 201\n", ENVS,
	       (long)fetches, gone, wrong);
	assert_int_equal(gone, 0);
	assert_int_equal(wrong, 0);
	assert_true(fetches > ENVS);
	for (int i = 0; i < ENVS; i++)
		delete_env(BASE + i);
	assert_invariants();
}

/* ---- 1b: a GET with fetch against PUTs of the same environment ----------------------------------- */

static void *fetch_one_loop(void *arg)
{
	(void)arg;
	while (!atomic_load(&stop_flag))
		api("GET", "/execution-environments/150?fetch=true", NULL, NULL, 0);
	return NULL;
}

static void test_a_get_with_fetch_never_writes_an_old_template_over_a_put(void **state)
{
	(void)state;
	enum { PUTS = 60, FETCHERS = 6 };
	assert_int_equal(put_env(150, 0, 100, 201), 0);
	pthread_t t[FETCHERS];
	atomic_store(&stop_flag, 0);
	for (int i = 0; i < FETCHERS; i++)
		pthread_create(&t[i], NULL, fetch_one_loop, NULL);
	int older = 0, wrong = 0;
	for (int i = 1; i <= PUTS; i++) {
		wrong += put_env(150, 0, 100 + i, 204);
		/* once a PUT answered, no earlier definition may come back */
		int mem = atoi(h_redis_cli(&st.redis, "HGET poseidon:env:150 memoryLimit"));
		if (mem < 100 + i) {
			older++;
			fprintf(stderr, "after PUT %d: memoryLimit %d\n", 100 + i, mem);
		}
	}
	atomic_store(&stop_flag, 1);
	for (int i = 0; i < FETCHERS; i++)
		pthread_join(t[i], NULL);
	char out[1024];
	assert_int_equal(api("GET", "/execution-environments/150", NULL, out, sizeof out), 200);
	printf("  %d PUTs against GETs with fetch: %d saw an older definition come back, %d not answered 204; "
	       "last: %s\n", PUTS, older, wrong, out);
	assert_int_equal(older, 0);
	assert_int_equal(wrong, 0);
	assert_non_null(strstr(out, "\"memoryLimit\":160"));
	delete_env(150);
	assert_invariants();
}

/* ---- 2: a claim and its DELETE against the refill's Meta write ------------------------------------- */

static void test_the_refill_never_registers_a_deleted_runner_again(void **state)
{
	(void)state;
	enum { ROUNDS = 80 };
	assert_int_equal(put_env(160, 6, 64, 201), 0);
	static char ids[ROUNDS][128];
	for (int i = 0; i < ROUNDS; i++) {
		char path[200];
		claim(160, ids[i]);
		/* the refill marks claimed runners used every 100 ms: delete at every point of that */
		h_sleep_ms(i * 37 % 130);
		snprintf(path, sizeof path, "/runners/%s", ids[i]);
		assert_int_equal(api("DELETE", path, NULL, NULL, 0), 204);
	}
	h_sleep_ms(2000); /* the refill's passes over what was claimed */
	int back = 0;
	for (int i = 0; i < ROUNDS; i++)
		if (job_alive(ids[i])) {
			back++;
			fprintf(stderr, "runner %s is alive in Nomad again\n", ids[i]);
		}
	printf("  %d runners claimed and deleted at once: %d came back in Nomad\n", ROUNDS, back);
	assert_int_equal(back, 0);
	assert_invariants();
	delete_env(160);
}

/* ---- 3: a file copy overtaken by a DELETE of its runner -------------------------------------------- */

struct copy_job {
	char runner[128];
	const char *body;
	long status;
	char out[512];
};

static void *copy_thread(void *arg)
{
	struct copy_job *c = arg;
	char path[200];
	snprintf(path, sizeof path, "/runners/%s/files", c->runner);
	c->status = api("PATCH", path, c->body, c->out, sizeof c->out);
	return NULL;
}

static void test_a_copy_overtaken_by_a_delete_is_gone_not_failed(void **state)
{
	(void)state;
	enum { ROUNDS = 8, SIZE = 4 << 20 };
	assert_int_equal(put_env(161, 4, 256, 201), 0);
	unsigned char *data = malloc(SIZE);
	for (size_t i = 0; i < SIZE; i++)
		data[i] = (unsigned char)(i * 131 + 7);
	char *enc = h_base64(data, SIZE);
	free(data);
	size_t cap = strlen(enc) + 64;
	char *body = malloc(cap);
	snprintf(body, cap, "{\"copy\":[{\"path\":\"big.bin\",\"content\":\"%s\"}]}", enc);
	free(enc);
	int ok = 0, gone = 0;
	for (int i = 0; i < ROUNDS; i++) {
		struct copy_job c = {.body = body};
		char path[200];
		claim(161, c.runner);
		pthread_t t;
		pthread_create(&t, NULL, copy_thread, &c);
		h_sleep_ms(100);
		snprintf(path, sizeof path, "/runners/%s", c.runner);
		assert_int_equal(api("DELETE", path, NULL, NULL, 0), 204);
		pthread_join(t, NULL);
		if (c.status == 204)
			ok++;
		else if (c.status == 410 && strstr(c.out, "no runner found"))
			gone++;
		else
			fail_msg("round %d: the copy answered %ld %s", i, c.status, c.out);
	}
	free(body);
	printf("  %d copies of 4 MiB overtaken by a DELETE: %d done before it, %d answered 410\n", ROUNDS, ok, gone);
	assert_invariants();
	delete_env(161);
}

/* ---- 4: everything at once ---------------------------------------------------------------------------- */

struct mixed {
	int index;
	long long until;
	long ops, unexpected;
	char last_unexpected[256];
};

/* Every runner handed out during the mixed load, to find one handed out twice or alive after its
 * DELETE. */
#define MAX_CLAIMS 20000
static char claimed[MAX_CLAIMS][40];
static atomic_int nclaimed;

static void remember_claim(const char *id)
{
	int i = atomic_fetch_add(&nclaimed, 1);
	if (i < MAX_CLAIMS)
		snprintf(claimed[i], sizeof claimed[i], "%s", id);
}

static int by_id(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void note(struct mixed *m, const char *what, long status, const char *out)
{
	m->unexpected++;
	snprintf(m->last_unexpected, sizeof m->last_unexpected, "%s: %ld %.160s", what, status, out ? out : "");
}

/* One client: claims, copies, deletes on the two steady environments; every fourth client also
 * replaces, deletes and recreates environments of its own and lists with fetch. Answers allowed:
 * 2xx, 410 for a runner that went away, 404 for an environment that went away, and 500
 * NOMAD_OVERLOAD for an empty pool. */
static void *mixed_client(void *arg)
{
	struct mixed *m = arg;
	char out[1024], id[128], path[256];
	long long env = 170 + m->index % 2, own = 180 + m->index;
	unsigned seed = (unsigned)m->index * 7919u;
	while (h_now_ms() < m->until) {
		char body[128];
		snprintf(body, sizeof body, "{\"executionEnvironmentId\":%lld}", env);
		long s = api("POST", "/runners", body, out, sizeof out);
		m->ops++;
		if (s == 200 && sscanf(out, "{\"runnerId\":\"%127[^\"]\"", id) == 1) {
			remember_claim(id);
			snprintf(path, sizeof path, "/runners/%s/files", id);
			s = api("PATCH", path, "{\"copy\":[{\"path\":\"a.txt\",\"content\":\"aGVsbG8K\"}]}", out, sizeof out);
			m->ops++;
			if (s != 204 && s != 410)
				note(m, "copy", s, out);
			snprintf(path, sizeof path, "/runners/%s", id);
			s = api("DELETE", path, NULL, out, sizeof out);
			m->ops++;
			if (s != 204 && s != 410)
				note(m, "delete", s, out);
		} else if (!(s == 500 && strstr(out, "NOMAD_OVERLOAD")) && s != 404) {
			note(m, "claim", s, out);
		} else {
			h_sleep_ms(10); /* an empty pool: as a client would, wait a little */
		}
		if (m->index % 4 == 0) {
			seed = seed * 1103515245u + 12345u;
			char ebody[256];
			snprintf(path, sizeof path, "/execution-environments/%lld", own);
			snprintf(ebody, sizeof ebody,
				 "{\"prewarmingPoolSize\":%u,\"cpuLimit\":50,\"memoryLimit\":%u,\"image\":\"img\"}",
				 seed % 3, 64 + seed % 64);
			switch (seed >> 16 & 3) {
			case 0:
				s = api("DELETE", path, NULL, out, sizeof out);
				if (s != 204 && s != 404)
					note(m, "environment delete", s, out);
				break;
			case 1:
				s = api("GET", "/execution-environments?fetch=true", NULL, out, sizeof out);
				if (s != 200)
					note(m, "list with fetch", s, out);
				break;
			default:
				s = api("PUT", path, ebody, out, sizeof out);
				if (s != 201 && s != 204)
					note(m, "environment put", s, out);
			}
			m->ops++;
		}
	}
	return NULL;
}

static void test_a_mixed_load_loses_nothing(void **state)
{
	(void)state;
	enum { CLIENTS = 12 };
	int seconds = getenv("POSEIDON_FAULT_FULL") ? 60 : 10;
	assert_int_equal(put_env(170, 6, 64, 201), 0);
	assert_int_equal(put_env(171, 6, 64, 201), 0);
	static struct mixed m[CLIENTS];
	pthread_t t[CLIENTS];
	atomic_store(&nclaimed, 0);
	long long until = h_now_ms() + seconds * 1000LL;
	for (int i = 0; i < CLIENTS; i++) {
		memset(&m[i], 0, sizeof m[i]);
		m[i].index = i;
		m[i].until = until;
		pthread_create(&t[i], NULL, mixed_client, &m[i]);
	}
	long ops = 0, unexpected = 0;
	for (int i = 0; i < CLIENTS; i++) {
		pthread_join(t[i], NULL);
		ops += m[i].ops;
		unexpected += m[i].unexpected;
		if (m[i].unexpected)
			fprintf(stderr, "client %d: %ld unexpected, last %s\n", i, m[i].unexpected, m[i].last_unexpected);
	}
	printf("  mixed load, %d clients for %d s: %ld requests, %ld unexpected answers\n", CLIENTS, seconds, ops,
	       unexpected);
	/* every claimed runner was deleted (204 or 410) right after its copy: none may be handed out
	 * twice, none may live on in Redis or Nomad */
	int n = atomic_load(&nclaimed) < MAX_CLAIMS ? atomic_load(&nclaimed) : MAX_CLAIMS;
	qsort(claimed, (size_t)n, sizeof claimed[0], by_id);
	int duplicated = 0, resurrected = 0;
	for (int i = 1; i < n; i++)
		if (!strcmp(claimed[i - 1], claimed[i]))
			duplicated++, fprintf(stderr, "runner %s handed out twice\n", claimed[i]);
	assert_invariants();
	for (int i = 0; i < n; i++)
		if (job_alive(claimed[i]) || atoi(h_redis_cli(&st.redis, "EXISTS poseidon:runner:%s", claimed[i])))
			resurrected++, fprintf(stderr, "runner %s is alive after its DELETE\n", claimed[i]);
	printf("  %d runners handed out: %d duplicated, %d resurrected\n", n, duplicated, resurrected);
	assert_int_equal(unexpected, 0);
	assert_int_equal(duplicated, 0);
	assert_int_equal(resurrected, 0);
	assert_true(n > 0);
	for (int i = 0; i < CLIENTS; i += 4)
		delete_env(180 + i);
	delete_env(170);
	delete_env(171);
	assert_invariants();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_a_list_with_fetch_never_removes_what_a_put_made),
	    cmocka_unit_test(test_a_get_with_fetch_never_writes_an_old_template_over_a_put),
	    cmocka_unit_test(test_the_refill_never_registers_a_deleted_runner_again),
	    cmocka_unit_test(test_a_copy_overtaken_by_a_delete_is_gone_not_failed),
	    cmocka_unit_test(test_a_mixed_load_loses_nothing),
	};
	if (getenv("POSEIDON_TEST_FILTER"))
		cmocka_set_test_filter(getenv("POSEIDON_TEST_FILTER"));
	return cmocka_run_group_tests(tests, setup, teardown);
}
