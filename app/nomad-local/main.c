/* nomad-local: a single-node stand-in for HashiCorp Nomad, for development and tests.
 *
 * Module design notes
 * -------------------
 * Place in the picture (docs/architecture.md): the "Nomad HTTP API" box on one machine. The
 * Poseidon programs (poseidon-api, poseidon-wsgate, poseidon-refill) talk to it exactly as
 * they would talk to a real Nomad agent: the job, allocation, node and agent endpoints, the
 * event stream and the alloc exec WebSocket, with Nomad 1.10's JSON shapes, headers, error
 * texts and status codes (docs/nomad-api.md, tests/fixtures/nomad). Behind the API
 * it is both server (jobs, evaluations, placement: sched.c) and client (tasks in bubblewrap
 * sandboxes: task.c, sandbox.c, exec.c). It is a development and test engine, not a security
 * boundary: production runs Nomad with Docker/gVisor.
 *
 * Process structure: one process, one thread, one epoll loop (loop.c). Sandboxes are bwrap
 * processes in their own sessions and cgroups; exec'd commands are our children that entered
 * a sandbox's namespaces. Nothing blocks the loop for long: state files are small and
 * written whole; bwrap is started with fork+exec.
 *
 * Signals: SIGTERM and SIGINT stop the agent gracefully: connections close, state is already
 * on disk, sandboxes keep running (as Nomad's client leaves tasks running across its own
 * restarts). SIGHUP is logged and ignored. SIGCHLD reaps children. SIGPIPE is ignored.
 *
 * Restart behaviour: on start, the state directory is read back (jobs, evaluations,
 * allocations, the index); pending evaluations complete; running sandboxes are re-adopted by
 * pid and start time; allocations whose sandbox died while the agent was down are reported
 * failed. `nomad-local -state DIR -cleanup` kills every sandbox recorded in DIR (tests and
 * `make run` use it to leave nothing behind).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "events.h"
#include "exec.h"
#include "httpd.h"
#include "log.h"
#include "loop.h"
#include "sandbox.h"
#include "sched.h"
#include "state.h"
#include "task.h"
#include "version.h"

#define DEFAULT_BIND "127.0.0.1"
#define DEFAULT_PORT 4646
#define DEFAULT_STATE "run/nomad-local"
#define MAX_ALLOCS 1024     /* the default bound of sandboxes, if descriptors allow it */
#define FDS_PER_ALLOC 32    /* a sandbox's own descriptors (about 8) and its exec sessions' */
#define FDS_RESERVED 256    /* the API's connections, the event streams, state files */

#define STR_(x) #x
#define STR(x) STR_(x)

static const char usage_text[] =
    "Usage: nomad-local [-bind ADDR] [-port N] [-state DIR] [-images DIR] [OPTION]...\n"
    "  or:  nomad-local [-state DIR] -cleanup\n"
    "  or:  nomad-local -help | -version\n";

static const char help_text[] =
    "a single-node stand-in for HashiCorp Nomad, for development and tests\n"
    "\n"
    "Speaks the subset of Nomad's HTTP API that Poseidon uses (jobs, allocations, nodes, the\n"
    "agent, the event stream and the allocation exec WebSocket, with Nomad 1.10's JSON) and\n"
    "runs each task as a bubblewrap sandbox on this machine, confined with namespaces,\n"
    "cgroups, seccomp and dropped capabilities. It is a development and test engine, not a\n"
    "security boundary: production runs Nomad. Every change is on disk before it is answered,\n"
    "and a restart re-adopts the running sandboxes.\n"
    "\n"
    "Options:\n"
    "  -bind ADDR         listen address (default " DEFAULT_BIND ")\n"
    "  -port N            HTTP port for the API, event stream and exec (default " STR(DEFAULT_PORT) ")\n"
    "  -state DIR         jobs, allocations and sandbox directories (default ./" DEFAULT_STATE ")\n"
    "  -images DIR        image roots: DIR/<image name> (default: none, the host's /usr and an\n"
    "                     allow list of its /etc, read-only: a development convenience)\n"
    "  -host-dir DIR      one more host directory for sandboxes on the host's root, read-only\n"
    "                     (e.g. /opt/java); may be given " STR(SANDBOX_HOST_DIRS_MAX) " times\n"
    "  -disk-mb N         writable space of one sandbox (/workspace, /tmp and the rest,\n"
    "                     together; in memory, counted against the task's memory limit)\n"
    "                     (default " STR(SANDBOX_DISK_MB_DEFAULT) ")\n"
    "  -max-allocations N sandboxes the agent runs at once; more are not placed\n"
    "                     (FailedTGAllocs) until one ends (default: what the descriptor limit\n"
    "                     allows, at most " STR(MAX_ALLOCS) ")\n"
    "  -token T           ACL token required in X-Nomad-Token (default: ACLs disabled)\n"
    "  -log-level LEVEL   debug, info, warn or error (default info)\n"
    "  -cleanup           kill every sandbox recorded in the state directory and exit\n"
    "  -help              print this help on standard output and exit 0 (also -h, --help)\n"
    "  -version           print the program's name and version and exit 0 (also --version)\n"
    "Every flag may also be written with two dashes.\n"
    "\n"
    "Environment:\n"
    "  nomad-local reads no environment variables: the flags configure it. A task's\n"
    "  environment is its job's Env.\n"
    "\n"
    "Files:\n"
    "  DIR/jobs/, DIR/evals/, DIR/allocs/, DIR/agent.json\n"
    "                     the state (DIR is -state): one JSON file per job, evaluation and\n"
    "                     allocation, and the index, node ID and signing key\n"
    "  DIR/<image name>   with -images DIR: the root file system of the tasks of that image\n"
    "\n"
    "Signals:\n"
    "  SIGTERM, SIGINT    stop: connections close, the state is already on disk, sandboxes\n"
    "                     keep running (the next start re-adopts them; -cleanup kills them);\n"
    "                     exit 0\n"
    "  SIGHUP             logged and ignored\n"
    "  SIGCHLD            reaps sandboxes and exec'd commands\n"
    "  SIGPIPE            ignored\n"
    "\n"
    "Exit status:\n"
    "  0                  stopped by SIGTERM or SIGINT; -cleanup, -help and -version done\n"
    "  1                  start-up failed: the state or images directory, sandbox support\n"
    "                     (bubblewrap, cgroups), or the listening socket\n"
    "  2                  bad usage: an unknown flag, a flag without its value, a value out of\n"
    "                     range\n"
    "\n"
    "See also:\n"
    "  poseidon-refill(1), poseidon-api(1); the documentation in\n"
    "  /usr/local/share/doc/poseidon/ (nomad-local.md, nomad-api.md)\n";

static void on_signal(int sig)
{
	if (sig == SIGHUP) {
		log_info("SIGHUP ignored");
		return;
	}
	log_info("shutting down", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
	loop_stop();
}

static void raise_nofile(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int cleanup(void)
{
	int n = 0;
	for (int i = 0; i < st.nallocs; i++) {
		json_object *saved = NULL;
		if (st.allocs[i]->runtime && json_object_object_get_ex(st.allocs[i]->runtime, "Sandbox", &saved) &&
		    saved) {
			sandbox_kill_saved(saved);
			n++;
		}
	}
	char buf[24];
	log_info("cleanup done", "sandboxes", log_int(buf, n));
	return 0;
}

int main(int argc, char **argv)
{
	const char *bind_addr = DEFAULT_BIND, *state_dir = DEFAULT_STATE, *images = NULL, *token = "";
	int port = DEFAULT_PORT, do_cleanup = 0, nhost_dirs = 0;
	const char *host_dirs[SANDBOX_HOST_DIRS_MAX];
	long long disk_mb = SANDBOX_DISK_MB_DEFAULT;
	long max_allocs = 0;
	log_set_program("nomad-local");
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (a[0] == '-' && a[1] == '-')
			a++; /* accept --flag like -flag, as Go's flag package does */
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "-h") == 0 || strcmp(a, "-help") == 0) {
			fputs(usage_text, stdout);
			fputs(help_text, stdout);
			return 0;
		} else if (strcmp(a, "-version") == 0) {
			poseidon_print_version("nomad-local");
			return 0;
		} else if (strcmp(a, "-cleanup") == 0) {
			do_cleanup = 1;
			continue;
		}
		if (!val) {
			fprintf(stderr, "nomad-local: flag needs an argument: %s\n", argv[i]);
			fputs(usage_text, stderr);
			return 2;
		}
		i++;
		if (strcmp(a, "-bind") == 0) {
			bind_addr = val;
		} else if (strcmp(a, "-port") == 0) {
			char *end;
			long p = strtol(val, &end, 10);
			if (*end || p <= 0 || p > 65535) {
				fprintf(stderr, "nomad-local: invalid port %s\n", val);
				return 2;
			}
			port = (int)p;
		} else if (strcmp(a, "-state") == 0) {
			state_dir = val;
		} else if (strcmp(a, "-images") == 0) {
			images = val;
		} else if (strcmp(a, "-host-dir") == 0) {
			if (nhost_dirs == SANDBOX_HOST_DIRS_MAX || val[0] != '/') {
				fprintf(stderr, "nomad-local: -host-dir needs an absolute path, at most %d times\n",
					SANDBOX_HOST_DIRS_MAX);
				return 2;
			}
			host_dirs[nhost_dirs++] = val;
		} else if (strcmp(a, "-max-allocations") == 0) {
			char *end;
			max_allocs = strtol(val, &end, 10);
			if (*end || max_allocs <= 0 || max_allocs > 1000000) {
				fprintf(stderr, "nomad-local: invalid -max-allocations %s\n", val);
				return 2;
			}
		} else if (strcmp(a, "-disk-mb") == 0) {
			char *end;
			disk_mb = strtoll(val, &end, 10);
			if (*end || disk_mb <= 0 || disk_mb > 1024 * 1024) {
				fprintf(stderr, "nomad-local: invalid -disk-mb %s\n", val);
				return 2;
			}
		} else if (strcmp(a, "-token") == 0) {
			token = val;
		} else if (strcmp(a, "-log-level") == 0) {
			enum log_level lvl;
			if (log_parse_level(val, &lvl) < 0) {
				fprintf(stderr, "nomad-local: invalid log level %s\n", val);
				return 2;
			}
			log_set_level(lvl);
		} else {
			fprintf(stderr, "nomad-local: unknown flag %s\n", argv[i - 1]);
			fputs(usage_text, stderr);
			return 2;
		}
	}
	log_add_secret(token);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());
	raise_nofile();

	char abs_state[PATH_MAX];
	if (mkdir_p(state_dir, 0700) < 0 || !realpath(state_dir, abs_state)) {
		log_error("cannot create the state directory", "path", state_dir, "error", strerror(errno));
		return 1;
	}
	if (loop_init(on_signal) < 0) {
		log_error("cannot set up the event loop", "error", strerror(errno));
		return 1;
	}
	if (state_open(abs_state) < 0) {
		log_error("cannot open the state directory", "path", abs_state, "error", strerror(errno));
		return 1;
	}
	if (do_cleanup) {
		int rc = cleanup();
		state_close();
		loop_shutdown();
		return rc;
	}
	char abs_images[PATH_MAX] = "";
	if (images && !realpath(images, abs_images)) {
		log_error("images directory not found", "path", images, "error", strerror(errno));
		return 1;
	}
	struct sandbox_opts so = {.state_dir = abs_state,
				  .images_dir = abs_images[0] ? abs_images : NULL,
				  .host_dirs = host_dirs,
				  .nhost_dirs = nhost_dirs,
				  .disk_mb = disk_mb};
	if (sandbox_init(&so) < 0) {
		log_error("sandbox support unavailable", "error", strerror(errno));
		return 1;
	}
	char hostname[256] = "nomad-local", http_addr[300];
	gethostname(hostname, sizeof hostname);
	hostname[sizeof hostname - 1] = '\0';
	snprintf(st.node_name, sizeof st.node_name, "%s", hostname);
	snprintf(http_addr, sizeof http_addr, "%s:%d", bind_addr, port);
	struct api_config acfg = {.token = token, .http_addr = http_addr, .hostname = hostname};
	api_init(&acfg);
	if (httpd_listen(bind_addr, port, api_handle) < 0) {
		log_error("cannot listen", "address", http_addr, "error", strerror(errno));
		return 1;
	}
	char nbuf[24], abuf[24], mbuf[24];
	struct rlimit nofile = {0, 0};
	getrlimit(RLIMIT_NOFILE, &nofile);
	long fit = nofile.rlim_cur > FDS_RESERVED ? (long)(nofile.rlim_cur - FDS_RESERVED) / FDS_PER_ALLOC : 1;
	if (!max_allocs)
		max_allocs = fit < MAX_ALLOCS ? (fit > 0 ? fit : 1) : MAX_ALLOCS;
	else if (max_allocs > fit)
		log_warn("-max-allocations is more than the descriptor limit allows; the agent may run out of them",
			 "max", log_int(nbuf, max_allocs), "fits", log_int(abuf, fit));
	sched_init((int)max_allocs, node_memory_mb());
	sched_restore();
	log_info("nomad-local listening", "address", http_addr, "state", abs_state, "images",
		 abs_images[0] ? abs_images : "(host root)", "acl", token[0] ? "enabled" : "disabled", "jobs",
		 log_int(nbuf, st.njobs), "allocations", log_int(abuf, st.nallocs), "max_allocations",
		 log_int(mbuf, max_allocs));
	loop_run();

	httpd_close();
	httpd_close_all();
	sched_shutdown();
	task_detach_all();
	events_shutdown();
	state_close();
	loop_shutdown();
	log_info("nomad-local stopped");
	return 0;
}
