/* destroyer: destroys runners off the event loop.
 *
 * A program that survives SIGQUIT, or a runner whose inactivity deadline passed during an
 * execution, costs its runner: store_destroy (Redis, atomic, any state) and then a purge of its
 * Nomad job. The purge is an HTTP request that may take a while on a busy cluster, so one worker
 * thread with its own Redis and Nomad connections does both, in order, from a small locked queue.
 * A runner that is already gone from Redis is not purged here (whoever removed it purges it, and
 * poseidon-refill's reconcile catches any job left behind).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gate.h"
#include "log.h"

#define DESTROY_QUEUE_MAX 1024

struct item {
	char id[MODEL_RUNNER_ID_MAX];
	char why[96];
};

struct destroyer {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct item q[DESTROY_QUEUE_MAX];
	int head, len;
	int stop;
	struct store *store;
	struct nomad *nomad;
};

static void destroy_one(struct destroyer *d, const struct item *it)
{
	struct perr e;
	int existed = store_destroy(d->store, it->id, 0, NULL, &e);
	if (existed < 0) {
		log_error("cannot destroy runner", "runner", it->id, "reason", it->why, "error", e.msg);
		return;
	}
	if (!existed)
		return;
	if (nomad_job_purge(d->nomad, it->id, &e) < 0)
		log_warn("runner destroyed, but its job was not purged (the reconcile will)", "runner",
		         it->id, "error", e.msg);
	log_info("runner destroyed", "runner", it->id, "reason", it->why);
}

static void *worker(void *arg)
{
	struct destroyer *d = arg;
	pthread_mutex_lock(&d->mu);
	for (;;) {
		while (!d->len && !d->stop)
			pthread_cond_wait(&d->cv, &d->mu);
		if (!d->len)
			break;
		struct item it = d->q[d->head];
		d->head = (d->head + 1) % DESTROY_QUEUE_MAX;
		d->len--;
		pthread_mutex_unlock(&d->mu);
		destroy_one(d, &it);
		pthread_mutex_lock(&d->mu);
	}
	pthread_mutex_unlock(&d->mu);
	return NULL;
}

struct destroyer *destroyer_start(const struct config *c)
{
	struct nomad_endpoint ep;
	struct destroyer *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cv, NULL);
	nomad_endpoint_from_config(&ep, c);
	d->store = store_open(c);
	d->nomad = nomad_open(&ep);
	if (!d->store || !d->nomad || pthread_create(&d->thread, NULL, worker, d) != 0) {
		store_close(d->store);
		nomad_close(d->nomad);
		free(d);
		return NULL;
	}
	return d;
}

void destroyer_push(struct destroyer *d, const char *runner_id, const char *why)
{
	pthread_mutex_lock(&d->mu);
	int dup = 0;
	for (int i = 0; i < d->len; i++)
		dup |= strcmp(d->q[(d->head + i) % DESTROY_QUEUE_MAX].id, runner_id) == 0;
	if (!dup && d->len < DESTROY_QUEUE_MAX) {
		struct item *it = &d->q[(d->head + d->len) % DESTROY_QUEUE_MAX];
		snprintf(it->id, sizeof it->id, "%s", runner_id);
		snprintf(it->why, sizeof it->why, "%s", why);
		d->len++;
		pthread_cond_signal(&d->cv);
	} else if (!dup) {
		log_error("destroy queue full; the runner stays until its deadline or a reconcile", "runner",
		          runner_id);
	}
	pthread_mutex_unlock(&d->mu);
}

void destroyer_stop(struct destroyer *d, int timeout_ms)
{
	if (!d)
		return;
	struct timespec end;
	clock_gettime(CLOCK_REALTIME, &end);
	end.tv_sec += timeout_ms / 1000;
	end.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&d->mu);
	d->stop = 1;
	pthread_cond_signal(&d->cv);
	pthread_mutex_unlock(&d->mu);
	if (pthread_timedjoin_np(d->thread, NULL, &end) != 0) {
		log_warn("runner destruction still running at exit; leaving it to the reconcile");
		return; /* the thread still uses its connections: leave them to the exit */
	}
	store_close(d->store);
	nomad_close(d->nomad);
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cv);
	free(d);
}
