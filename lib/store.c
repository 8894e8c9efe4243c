/* store: see store.h. Module notes:
 * - Every command goes through cmd(): (re)connect when needed, AUTH/SELECT after connecting,
 *   and the retry rule: only commands marked idempotent are sent again after an I/O error;
 *   any command is sent again after LOADING (Redis reading its append-only file ran nothing).
 * - Scripts are Lua text below; their SHA1 is learnt with SCRIPT LOAD the first time a
 *   connection uses them and NOSCRIPT (Redis restarted or flushed) falls back to EVAL, which
 *   runs the same text and re-caches it. Neither path can run a script twice.
 * - Lua numbers are doubles: times in ms (13 digits) and deadlines are formatted with %.0f.
 */
#include "store.h"

#include <errno.h>
#include <hiredis.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"

#define KEY_MAX 256
#define LOADING_WAIT_MS 20
#define MAX_TIMEOUT_S 315360000LL /* ten years: deadlines stay exact in Lua doubles */

enum script_id {
	S_CLAIM, S_DESTROY, S_LOOKUP, S_STATS, S_ENV_PUT, S_ENV_DEL, S_ADD_STARTING, S_READY, S_EXPIRED,
	S_ENV_RUNNERS, S_DESTROY_ENV, S_LEASE, S_ADOPT, S_RUNNER_SET, S_POP, S_COUNT
};

/* Returns the current Redis time in ms as a Lua local `ms`. */
#define LUA_NOW "local now = redis.call('TIME') local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) "

static const char *const scripts[S_COUNT] = {
	/* S_CLAIM. KEYS: env, pool, used, deadlines, claimed. ARGV: runner key prefix, timeout s.
	 * claimed is a queue the refill daemon reads (and waits on) to mark the runner used in Nomad
	 * and refill the pool at once. Ids whose hash is gone or not idle are stale leftovers and
	 * are dropped from the pool. Returns what the answer needs, nothing more (this is the hot
	 * path). */
	[S_CLAIM] =
	"if redis.call('EXISTS', KEYS[1]) == 0 then return {'noenv'} end "
	"local t = tonumber(ARGV[2]) "
	"while true do "
	"  local id = redis.call('LPOP', KEYS[2]) "
	"  if not id then return {'empty'} end "
	"  local rk = ARGV[1] .. id "
	"  local f = redis.call('HMGET', rk, 'state', 'allocId', 'mappedPorts', 'generation') "
	"  if f[1] == 'idle' then "
	"    " LUA_NOW
	"    redis.call('SADD', KEYS[3], id) "
	"    local dl = 0 "
	"    if t ~= 0 then dl = ms + t * 1000 redis.call('ZADD', KEYS[4], string.format('%.0f', dl), id) end "
	"    redis.call('HSET', rk, 'state', 'used', 'inactivityTimeout', string.format('%.0f', t), "
	"               'claimedAt', string.format('%.0f', ms)) "
	"    redis.call('RPUSH', KEYS[5], id) "
	"    return {'ok', id, f[2] or '', f[3] or '', f[4] or '0', string.format('%.0f', dl)} "
	"  end "
	"end",
	/* S_DESTROY. KEYS: runner, deadlines. ARGV: key prefix, runner id, required state or ''. */
	[S_DESTROY] =
	"local h = redis.call('HGETALL', KEYS[1]) "
	"if #h == 0 then redis.call('ZREM', KEYS[2], ARGV[2]) return false end "
	"local f = {} for i = 1, #h, 2 do f[h[i]] = h[i + 1] end "
	"if ARGV[3] ~= '' and f.state ~= ARGV[3] then return false end "
	"if f.env then "
	"  redis.call('LREM', ARGV[1] .. 'pool:' .. f.env, 0, ARGV[2]) "
	"  redis.call('SREM', ARGV[1] .. 'starting:' .. f.env, ARGV[2]) "
	"  redis.call('SREM', ARGV[1] .. 'used:' .. f.env, ARGV[2]) "
	"end "
	"redis.call('DEL', KEYS[1]) "
	"redis.call('ZREM', KEYS[2], ARGV[2]) "
	"return h",
	/* S_LOOKUP. KEYS: runner, deadlines. ARGV: runner id, touch ('1'/'0').
	 * A used runner whose deadline passed is already gone for every route, even before the
	 * reaper destroys it. */
	[S_LOOKUP] =
	"local h = redis.call('HGETALL', KEYS[1]) "
	"if #h == 0 then return false end "
	"local f = {} for i = 1, #h, 2 do f[h[i]] = h[i + 1] end "
	"if f.state ~= 'used' then return false end "
	LUA_NOW
	"local dl = tonumber(redis.call('ZSCORE', KEYS[2], ARGV[1]) or '0') "
	"if dl ~= 0 and dl <= ms then return false end "
	"local t = tonumber(f.inactivityTimeout or '0') "
	"if ARGV[2] == '1' and t ~= 0 then dl = ms + t * 1000 "
	"  redis.call('ZADD', KEYS[2], string.format('%.0f', dl), ARGV[1]) end "
	"return {h, string.format('%.0f', dl)}",
	/* S_STATS. KEYS: envs. ARGV: key prefix. Flat list: id, pool size, idle, used, starting,
	 * generation. */
	[S_STATS] =
	"local out = {} "
	"for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do "
	"  local f = redis.call('HMGET', ARGV[1] .. 'env:' .. id, 'prewarmingPoolSize', 'generation') "
	"  out[#out + 1] = id "
	"  out[#out + 1] = f[1] or '0' "
	"  out[#out + 1] = tostring(redis.call('LLEN', ARGV[1] .. 'pool:' .. id)) "
	"  out[#out + 1] = tostring(redis.call('SCARD', ARGV[1] .. 'used:' .. id)) "
	"  out[#out + 1] = tostring(redis.call('SCARD', ARGV[1] .. 'starting:' .. id)) "
	"  out[#out + 1] = f[2] or '0' "
	"end "
	"return out",
	/* S_ENV_PUT. KEYS: env, envs, tombstone. ARGV: id, mode ('always'; 'absent': leave an
	 * existing one alone; '=<n>': only while its generation is n, 0 meaning absent), field,
	 * value, ... Returns {created, generation}, created -1 when the mode said no. */
	[S_ENV_PUT] =
	"local created = redis.call('EXISTS', KEYS[1]) == 0 "
	"local cur = tonumber(redis.call('HGET', KEYS[1], 'generation') or '0') "
	"if ARGV[2] == 'absent' and not created then return {0, cur} end "
	"if string.sub(ARGV[2], 1, 1) == '=' and tonumber(string.sub(ARGV[2], 2)) ~= cur then return {-1, cur} end "
	"redis.call('DEL', KEYS[3]) "
	"local gen = redis.call('HINCRBY', KEYS[1], 'generation', 1) "
	"redis.call('HSET', KEYS[1], unpack(ARGV, 3)) "
	"redis.call('SADD', KEYS[2], ARGV[1]) "
	"if created then return {1, gen} end return {0, gen}",
	/* S_ENV_DEL. KEYS: env, envs, tombstone. ARGV: id, tombstone ttl ms, generation ('' for any:
	 * else only while the environment has that generation). The tombstone keeps the refill
	 * daemon from recovering the environment from Nomad while its jobs are purged. */
	[S_ENV_DEL] =
	"if ARGV[3] ~= '' and tonumber(redis.call('HGET', KEYS[1], 'generation') or '0') ~= tonumber(ARGV[3]) then "
	"  return 0 end "
	"local n = redis.call('DEL', KEYS[1]) "
	"redis.call('SREM', KEYS[2], ARGV[1]) "
	"if n > 0 then redis.call('SET', KEYS[3], '1', 'PX', ARGV[2]) end "
	"return n",
	/* S_ADD_STARTING. KEYS: runner, starting, env. ARGV: id, env, generation. 0 when the
	 * environment is gone or has another generation. */
	[S_ADD_STARTING] =
	LUA_NOW
	/* an environment deleted or replaced since the caller looked gets no runner of the old one */
	"if redis.call('HGET', KEYS[3], 'generation') ~= ARGV[3] then return 0 end "
	"redis.call('HSET', KEYS[1], 'env', ARGV[2], 'generation', ARGV[3], 'state', 'starting', "
	"           'createdAt', string.format('%.0f', ms)) "
	"redis.call('SADD', KEYS[2], ARGV[1]) "
	"return 1",
	/* S_READY. KEYS: runner. ARGV: key prefix, id, allocId, node, mappedPorts. */
	[S_READY] =
	"local f = redis.call('HMGET', KEYS[1], 'state', 'env') "
	"if f[1] ~= 'starting' then return 0 end "
	LUA_NOW
	"redis.call('SREM', ARGV[1] .. 'starting:' .. f[2], ARGV[2]) "
	"redis.call('HSET', KEYS[1], 'state', 'idle', 'allocId', ARGV[3], 'node', ARGV[4], "
	"           'mappedPorts', ARGV[5], 'readyAt', string.format('%.0f', ms)) "
	"redis.call('RPUSH', ARGV[1] .. 'pool:' .. f[2], ARGV[2]) "
	"return 1",
	/* S_EXPIRED. KEYS: deadlines. ARGV: max. */
	[S_EXPIRED] =
	LUA_NOW
	"return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', ms), 'LIMIT', 0, tonumber(ARGV[1]))",
	/* S_ENV_RUNNERS. KEYS: pool, starting, used, deadlines. ARGV: runner key prefix.
	 * Every runner of the environment: {id, hash, deadline} triples. */
	[S_ENV_RUNNERS] =
	"local out = {} "
	"local ids = redis.call('LRANGE', KEYS[1], 0, -1) "
	"for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do ids[#ids + 1] = id end "
	"for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do ids[#ids + 1] = id end "
	"for _, id in ipairs(ids) do "
	"  out[#out + 1] = id "
	"  out[#out + 1] = redis.call('HGETALL', ARGV[1] .. id) "
	"  out[#out + 1] = redis.call('ZSCORE', KEYS[4], id) or '0' "
	"end "
	"return out",
	/* S_DESTROY_ENV. KEYS: pool, starting, used, deadlines. ARGV: runner key prefix.
	 * Removes every runner of the environment; returns their ids. */
	[S_DESTROY_ENV] =
	"local ids = redis.call('LRANGE', KEYS[1], 0, -1) "
	"for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do ids[#ids + 1] = id end "
	"for _, id in ipairs(redis.call('SMEMBERS', KEYS[3])) do ids[#ids + 1] = id end "
	"for _, id in ipairs(ids) do redis.call('DEL', ARGV[1] .. id) redis.call('ZREM', KEYS[4], id) end "
	"redis.call('DEL', KEYS[1], KEYS[2], KEYS[3]) "
	"return ids",
	/* S_LEASE. KEYS: lease. ARGV: owner, ttl ms, mode ('hold' or 'release'). 1 when owner holds it. */
	[S_LEASE] =
	"local cur = redis.call('GET', KEYS[1]) "
	"if ARGV[3] == 'release' then if cur == ARGV[1] then redis.call('DEL', KEYS[1]) end return 0 end "
	"if cur == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end "
	"if not cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end "
	"return 0",
	/* S_ADOPT. KEYS: runner, deadlines. ARGV: key prefix, id, env, generation, state, allocId, node,
	 * mappedPorts, timeout s. Puts a runner found in Nomad back into Redis (after Redis lost it). */
	[S_ADOPT] =
	"if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end "
	LUA_NOW
	"redis.call('HSET', KEYS[1], 'env', ARGV[3], 'generation', ARGV[4], 'state', ARGV[5], 'allocId', ARGV[6], "
	"           'node', ARGV[7], 'mappedPorts', ARGV[8], 'inactivityTimeout', ARGV[9], "
	"           'createdAt', string.format('%.0f', ms)) "
	"if ARGV[5] == 'idle' then redis.call('RPUSH', ARGV[1] .. 'pool:' .. ARGV[3], ARGV[2]) "
	"elseif ARGV[5] == 'used' then redis.call('SADD', ARGV[1] .. 'used:' .. ARGV[3], ARGV[2]) "
	"  local t = tonumber(ARGV[9]) "
	"  if t ~= 0 then redis.call('ZADD', KEYS[2], string.format('%.0f', ms + t * 1000), ARGV[2]) end "
	"else redis.call('SADD', ARGV[1] .. 'starting:' .. ARGV[3], ARGV[2]) end "
	"return 1",
	/* S_RUNNER_SET. KEYS: runner. ARGV: field, value, ... Only an existing runner is changed. */
	[S_RUNNER_SET] =
	"if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end "
	"redis.call('HSET', KEYS[1], unpack(ARGV)) "
	"return 1",
	/* S_POP. KEYS: list. ARGV: max. Pops up to max entries from the left. */
	[S_POP] =
	"local out = {} "
	"for i = 1, tonumber(ARGV[1]) do local v = redis.call('LPOP', KEYS[1]) if not v then break end out[i] = v end "
	"return out",
};

struct store {
	redisContext *c;
	char host[CONFIG_STR];
	int port;
	char password[CONFIG_STR];
	int db;
	char prefix[64];
	int timeout_ms;
	char sha[S_COUNT][41];
	long long last_connect_error_ms; /* to keep logs quiet while Redis is down */
};

struct store *store_open(const struct config *c)
{
	struct store *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	snprintf(s->host, sizeof s->host, "%s", c->redis.address);
	s->port = c->redis.port;
	snprintf(s->password, sizeof s->password, "%s", c->redis.password);
	s->db = c->redis.db;
	snprintf(s->prefix, sizeof s->prefix, "%s", c->redis.prefix);
	s->timeout_ms = c->redis.timeoutms;
	return s;
}

static void drop(struct store *s)
{
	if (s->c)
		redisFree(s->c);
	s->c = NULL;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	drop(s);
	free(s);
}

static int connect_(struct store *s, struct perr *e)
{
	struct timeval tv = {s->timeout_ms / 1000, (s->timeout_ms % 1000) * 1000};
	s->c = s->host[0] == '/' ? redisConnectUnixWithTimeout(s->host, tv)
				 : redisConnectWithTimeout(s->host, s->port, tv);
	if (!s->c || s->c->err) {
		perr_set(e, PERR_STORE, "redis %s:%d unreachable: %s", s->host, s->port,
			 s->c ? s->c->errstr : "out of memory");
		drop(s);
		return -1;
	}
	redisSetTimeout(s->c, tv);
	if (s->host[0] != '/')
		redisEnableKeepAlive(s->c); /* TCP only: on a unix socket it fails and poisons the context */
	if (s->password[0]) {
		redisReply *r = redisCommand(s->c, "AUTH %s", s->password);
		int ok = r && r->type != REDIS_REPLY_ERROR;
		if (!ok)
			perr_set(e, PERR_STORE, "redis AUTH failed: %s", r ? r->str : s->c->errstr);
		freeReplyObject(r);
		if (!ok) {
			drop(s);
			return -1;
		}
	}
	if (s->db) {
		redisReply *r = redisCommand(s->c, "SELECT %d", s->db);
		int ok = r && r->type != REDIS_REPLY_ERROR;
		if (!ok)
			perr_set(e, PERR_STORE, "redis SELECT %d failed: %s", s->db, r ? r->str : s->c->errstr);
		freeReplyObject(r);
		if (!ok) {
			drop(s);
			return -1;
		}
	}
	return 0;
}

/* Sends argv. Returns the reply (caller frees) or NULL with e set. An error reply is returned
 * as NULL with PERR_STORE and Redis's message, except NOSCRIPT which the caller handles. */
static redisReply *cmd(struct store *s, int idempotent, struct perr *e, int argc, const char **argv,
		       const size_t *lens)
{
	int loading_waits = 0;
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!s->c && connect_(s, e) < 0) {
			metrics_redis_error();
			return NULL;
		}
		redisReply *r = redisCommandArgv(s->c, argc, argv, lens);
		if (!r) {
			metrics_redis_error();
			perr_set(e, PERR_STORE, "redis %s:%d: %s", s->host, s->port,
				 s->c->errstr[0] ? s->c->errstr : "connection lost");
			drop(s);
			if (!idempotent)
				return NULL;
			continue;
		}
		/* A Redis that just started answers LOADING while it reads its append-only file; it ran
		 * nothing, so any command may wait and go again, for up to the configured timeout. */
		if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "LOADING", 7) == 0 &&
		    loading_waits * LOADING_WAIT_MS < s->timeout_ms) {
			freeReplyObject(r);
			loading_waits++;
			struct timespec ts = {0, LOADING_WAIT_MS * 1000000L};
			nanosleep(&ts, NULL);
			attempt--;
			continue;
		}
		if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) != 0) {
			metrics_redis_error();
			perr_set(e, PERR_STORE, "redis: %s", r->str);
			freeReplyObject(r);
			return NULL;
		}
		return r;
	}
	return NULL;
}

/* Runs script id with keys and args. Never runs it twice. */
static redisReply *run_script(struct store *s, enum script_id id, int nkeys, const char **keys, int nargs,
			      const char **args, const size_t *arglens, int idempotent, struct perr *e)
{
	const char *argv[64];
	size_t lens[64];
	int argc = 0;
	char nk[16];
	if (3 + nkeys + nargs > 64)
		return perr_set(e, PERR_UNKNOWN, "too many script arguments"), NULL;
	if (!s->sha[id][0]) {
		const char *load[] = {"SCRIPT", "LOAD", scripts[id]};
		redisReply *r = cmd(s, 1, e, 3, load, NULL);
		if (!r)
			return NULL;
		if (r->type == REDIS_REPLY_STRING && r->len == 40)
			memcpy(s->sha[id], r->str, 41);
		freeReplyObject(r);
	}
	snprintf(nk, sizeof nk, "%d", nkeys);
	argv[argc] = s->sha[id][0] ? "EVALSHA" : "EVAL";
	lens[argc++] = strlen(argv[0]);
	argv[argc] = s->sha[id][0] ? s->sha[id] : scripts[id];
	lens[argc] = strlen(argv[argc]);
	argc++;
	argv[argc] = nk;
	lens[argc++] = strlen(nk);
	for (int i = 0; i < nkeys; i++, argc++) {
		argv[argc] = keys[i];
		lens[argc] = strlen(keys[i]);
	}
	for (int i = 0; i < nargs; i++, argc++) {
		argv[argc] = args[i];
		lens[argc] = arglens ? arglens[i] : strlen(args[i]);
	}
	redisReply *r = cmd(s, idempotent, e, argc, argv, lens);
	if (r && r->type == REDIS_REPLY_ERROR) { /* NOSCRIPT: Redis forgot it; EVAL the text */
		freeReplyObject(r);
		s->sha[id][0] = '\0';
		argv[0] = "EVAL";
		lens[0] = 4;
		argv[1] = scripts[id];
		lens[1] = strlen(scripts[id]);
		r = cmd(s, idempotent, e, argc, argv, lens);
	}
	return r;
}

/* Runs a script whose answer is an integer: 1 when it is 1, 0 otherwise, -1 on error. */
static int run_flag(struct store *s, enum script_id id, int nkeys, const char **keys, int nargs, const char **args,
		    int idempotent, struct perr *e)
{
	redisReply *r = run_script(s, id, nkeys, keys, nargs, args, NULL, idempotent, e);
	if (!r)
		return -1;
	int yes = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
	freeReplyObject(r);
	return yes;
}

static int ids_from_reply(redisReply *r, char ***ids, size_t *n, struct perr *e);

static void key(const struct store *s, char out[KEY_MAX], const char *kind, const char *id)
{
	snprintf(out, KEY_MAX, "%s%s%s%s", s->prefix, kind, id ? ":" : "", id ? id : "");
}

static void env_key(const struct store *s, char out[KEY_MAX], const char *kind, long long env)
{
	char id[24];
	snprintf(id, sizeof id, "%lld", env);
	key(s, out, kind, id);
}

int store_ping(struct store *s, struct perr *e)
{
	const char *argv[] = {"PING"};
	redisReply *r = cmd(s, 1, e, 1, argv, NULL);
	if (!r)
		return -1;
	freeReplyObject(r);
	return 0;
}

/* ---- environments ---------------------------------------------------------------------- */

static int env_put(struct store *s, const struct environment *env, const char *mode, int *created,
		   long long *generation, struct perr *e);

int store_env_put(struct store *s, const struct environment *env, int *created, long long *generation,
		  struct perr *e)
{
	return env_put(s, env, "always", created, generation, e);
}

int store_env_put_if_absent(struct store *s, const struct environment *env, int *created, long long *generation,
			    struct perr *e)
{
	return env_put(s, env, "absent", created, generation, e);
}

int store_env_put_if_generation(struct store *s, const struct environment *env, long long expected, int *created,
				long long *generation, struct perr *e)
{
	char mode[32];
	snprintf(mode, sizeof mode, "=%lld", expected);
	return env_put(s, env, mode, created, generation, e);
}

static int env_put(struct store *s, const struct environment *env, const char *mode, int *created,
		   long long *generation, struct perr *e)
{
	char k_env[KEY_MAX], k_envs[KEY_MAX], k_tomb[KEY_MAX], id[24], pool[24], cpu[24], mem[24];
	char *ports = model_ports_to_json(env);
	if (!ports)
		return perr_set(e, PERR_UNKNOWN, "out of memory");
	env_key(s, k_env, "env", env->id);
	env_key(s, k_tomb, "tombstone", env->id);
	key(s, k_envs, "envs", NULL);
	snprintf(id, sizeof id, "%lld", env->id);
	snprintf(pool, sizeof pool, "%llu", env->prewarming_pool_size);
	snprintf(cpu, sizeof cpu, "%llu", env->cpu_limit);
	snprintf(mem, sizeof mem, "%llu", env->memory_limit);
	const char *keys[] = {k_env, k_envs, k_tomb};
	const char *args[] = {id, mode, "id", id, "prewarmingPoolSize", pool,
			      "cpuLimit", cpu, "memoryLimit", mem, "image", env->image, "networkAccess",
			      env->network_access ? "true" : "false", "exposedPorts", ports};
	redisReply *r = run_script(s, S_ENV_PUT, 3, keys, 16, args, NULL, 0, e);
	free(ports);
	if (!r)
		return -1;
	int ok = r->type == REDIS_REPLY_ARRAY && r->elements == 2;
	if (ok) {
		if (created)
			*created = (int)r->element[0]->integer;
		if (generation)
			*generation = r->element[1]->integer;
	}
	freeReplyObject(r);
	return ok ? 0 : perr_set(e, PERR_STORE, "redis: unexpected reply to environment update");
}

static const char *field(const redisReply *h, const char *name)
{
	for (size_t i = 0; h && i + 1 < h->elements; i += 2)
		if (h->element[i]->type == REDIS_REPLY_STRING && strcmp(h->element[i]->str, name) == 0)
			return h->element[i + 1]->str;
	return NULL;
}

static unsigned long long to_ull(const char *v) { return v ? strtoull(v, NULL, 10) : 0; }
static long long to_ll(const char *v) { return v ? strtoll(v, NULL, 10) : 0; }

static int env_from_hash(const redisReply *h, long long id, struct environment *out, long long *generation,
			 struct perr *e)
{
	memset(out, 0, sizeof *out);
	out->id = id;
	out->prewarming_pool_size = to_ull(field(h, "prewarmingPoolSize"));
	out->cpu_limit = to_ull(field(h, "cpuLimit"));
	out->memory_limit = to_ull(field(h, "memoryLimit"));
	snprintf(out->image, sizeof out->image, "%s", field(h, "image") ? field(h, "image") : "");
	const char *net = field(h, "networkAccess");
	out->network_access = net && strcmp(net, "true") == 0;
	if (generation)
		*generation = to_ll(field(h, "generation"));
	return model_ports_from_json(field(h, "exposedPorts"), out, e);
}

int store_env_get(struct store *s, long long id, struct environment *out, long long *generation,
		  struct perr *e)
{
	char k[KEY_MAX];
	env_key(s, k, "env", id);
	const char *argv[] = {"HGETALL", k};
	redisReply *r = cmd(s, 1, e, 2, argv, NULL);
	if (!r)
		return -1;
	int found = r->type == REDIS_REPLY_ARRAY && r->elements > 0;
	int rc = found ? env_from_hash(r, id, out, generation, e) : 0;
	freeReplyObject(r);
	return rc < 0 ? -1 : found;
}

static int cmp_id(const void *a, const void *b)
{
	const long long *x = a, *y = b;
	return *x < *y ? -1 : *x > *y;
}

int store_env_list_generations(struct store *s, struct environment **out, long long **generations, size_t *n,
			       struct perr *e)
{
	char k[KEY_MAX];
	*out = NULL;
	*n = 0;
	if (generations)
		*generations = NULL;
	key(s, k, "envs", NULL);
	const char *argv[] = {"SMEMBERS", k};
	redisReply *ids = cmd(s, 1, e, 2, argv, NULL);
	if (!ids)
		return -1;
	size_t count = ids->elements;
	long long *sorted = calloc(count + 1, sizeof *sorted);
	*out = calloc(count + 1, sizeof **out);
	long long *gens = generations ? calloc(count + 1, sizeof *gens) : NULL;
	if (!sorted || !*out || (generations && !gens)) {
		freeReplyObject(ids);
		free(sorted);
		free(*out);
		free(gens);
		*out = NULL;
		return perr_set(e, PERR_UNKNOWN, "out of memory");
	}
	for (size_t i = 0; i < count; i++)
		sorted[i] = strtoll(ids->element[i]->str, NULL, 10);
	freeReplyObject(ids);
	qsort(sorted, count, sizeof *sorted, cmp_id); /* by id, as callers list them */
	int rc = 0;
	for (size_t i = 0; i < count && rc == 0; i++) {
		int r = store_env_get(s, sorted[i], &(*out)[*n], gens ? &gens[*n] : NULL, e);
		if (r < 0)
			rc = -1;
		else if (r == 1)
			(*n)++;
	}
	free(sorted);
	if (rc < 0) {
		free(*out);
		free(gens);
		*out = NULL;
		*n = 0;
		return -1;
	}
	if (generations)
		*generations = gens;
	return 0;
}

int store_env_list(struct store *s, struct environment **out, size_t *n, struct perr *e)
{
	return store_env_list_generations(s, out, NULL, n, e);
}

int store_env_delete(struct store *s, long long id, struct perr *e)
{
	return store_env_delete_if_generation(s, id, -1, e);
}

int store_env_delete_if_generation(struct store *s, long long id, long long expected, struct perr *e)
{
	char k_env[KEY_MAX], k_envs[KEY_MAX], k_tomb[KEY_MAX], ids[24], ttl[24], gen[24] = "";
	env_key(s, k_env, "env", id);
	env_key(s, k_tomb, "tombstone", id);
	key(s, k_envs, "envs", NULL);
	snprintf(ids, sizeof ids, "%lld", id);
	snprintf(ttl, sizeof ttl, "%d", STORE_TOMBSTONE_MS);
	if (expected >= 0)
		snprintf(gen, sizeof gen, "%lld", expected);
	const char *keys[] = {k_env, k_envs, k_tomb};
	const char *args[] = {ids, ttl, gen};
	redisReply *r = run_script(s, S_ENV_DEL, 3, keys, 3, args, NULL, 1, e);
	if (!r)
		return -1;
	int existed = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
	freeReplyObject(r);
	return existed;
}

int store_statistics(struct store *s, struct env_stats **out, size_t *n, struct perr *e)
{
	char k[KEY_MAX];
	*out = NULL;
	*n = 0;
	key(s, k, "envs", NULL);
	const char *keys[] = {k};
	const char *args[] = {s->prefix};
	redisReply *r = run_script(s, S_STATS, 1, keys, 1, args, NULL, 1, e);
	if (!r)
		return -1;
	if (r->type != REDIS_REPLY_ARRAY || r->elements % 6) {
		freeReplyObject(r);
		return perr_set(e, PERR_STORE, "redis: unexpected reply to statistics");
	}
	*out = calloc(r->elements / 6 + 1, sizeof **out);
	if (!*out) {
		freeReplyObject(r);
		return perr_set(e, PERR_UNKNOWN, "out of memory");
	}
	for (size_t i = 0; i < r->elements; i += 6) {
		struct env_stats *st = &(*out)[(*n)++];
		st->id = to_ll(r->element[i]->str);
		st->prewarming_pool_size = to_ull(r->element[i + 1]->str);
		st->idle = to_ull(r->element[i + 2]->str);
		st->used = to_ull(r->element[i + 3]->str);
		st->starting = to_ull(r->element[i + 4]->str);
		st->generation = to_ll(r->element[i + 5]->str);
	}
	freeReplyObject(r);
	for (size_t i = 1; i < *n; i++) /* insertion sort by id: few environments */
		for (size_t j = i; j > 0 && (*out)[j - 1].id > (*out)[j].id; j--) {
			struct env_stats t = (*out)[j];
			(*out)[j] = (*out)[j - 1];
			(*out)[j - 1] = t;
		}
	return 0;
}

/* ---- runners --------------------------------------------------------------------------- */

static int runner_from_hash(const redisReply *h, const char *id, const char *deadline, struct runner *out,
			    struct perr *e)
{
	memset(out, 0, sizeof *out);
	snprintf(out->id, sizeof out->id, "%s", id);
	out->env = to_ll(field(h, "env"));
	out->generation = to_ll(field(h, "generation"));
	snprintf(out->alloc_id, sizeof out->alloc_id, "%s", field(h, "allocId") ? field(h, "allocId") : "");
	snprintf(out->node, sizeof out->node, "%s", field(h, "node") ? field(h, "node") : "");
	snprintf(out->state, sizeof out->state, "%s", field(h, "state") ? field(h, "state") : "");
	out->inactivity_timeout = to_ll(field(h, "inactivityTimeout"));
	out->deadline_ms = to_ll(deadline);
	out->created_ms = to_ll(field(h, "createdAt"));
	out->oom_ms = to_ll(field(h, "oomAt"));
	return model_mapped_ports_from_json(field(h, "mappedPorts"), out->ports, MODEL_MAX_PORTS,
					    &out->nports, e);
}

static int valid_runner_id(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n >= MODEL_RUNNER_ID_MAX)
		return 0;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      *p == '-' || *p == '_' || *p == '.'))
			return 0;
	return 1;
}

int store_claim(struct store *s, long long env, long long inactivity_timeout, struct runner *out,
		struct perr *e)
{
	char k_env[KEY_MAX], k_pool[KEY_MAX], k_used[KEY_MAX], k_dl[KEY_MAX], k_claimed[KEY_MAX], prefix[KEY_MAX], t[24];
	key(s, k_claimed, "claimed", NULL);
	env_key(s, k_env, "env", env);
	env_key(s, k_pool, "pool", env);
	env_key(s, k_used, "used", env);
	key(s, k_dl, "deadlines", NULL);
	snprintf(prefix, sizeof prefix, "%srunner:", s->prefix);
	if (inactivity_timeout > MAX_TIMEOUT_S)
		inactivity_timeout = MAX_TIMEOUT_S;
	if (inactivity_timeout < -MAX_TIMEOUT_S)
		inactivity_timeout = -MAX_TIMEOUT_S;
	snprintf(t, sizeof t, "%lld", inactivity_timeout);
	const char *keys[] = {k_env, k_pool, k_used, k_dl, k_claimed};
	const char *args[] = {prefix, t};
	redisReply *r = run_script(s, S_CLAIM, 5, keys, 2, args, NULL, 0, e);
	if (!r)
		return -1;
	int rc = 0;
	if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 || r->element[0]->type != REDIS_REPLY_STRING)
		rc = perr_set(e, PERR_STORE, "redis: unexpected reply to claim");
	else if (strcmp(r->element[0]->str, "noenv") == 0)
		rc = perr_set(e, PERR_NOT_FOUND, "execution environment not found");
	else if (strcmp(r->element[0]->str, "empty") == 0)
		rc = perr_set(e, PERR_NOMAD_OVERLOAD, "no runners available for this execution environment");
	else if (r->elements == 6) {
		memset(out, 0, sizeof *out);
		snprintf(out->id, sizeof out->id, "%s", r->element[1]->str);
		snprintf(out->alloc_id, sizeof out->alloc_id, "%s", r->element[2]->str);
		snprintf(out->state, sizeof out->state, "used");
		out->env = env;
		out->generation = to_ll(r->element[4]->str);
		out->inactivity_timeout = inactivity_timeout;
		out->deadline_ms = to_ll(r->element[5]->str);
		rc = model_mapped_ports_from_json(r->element[3]->str, out->ports, MODEL_MAX_PORTS, &out->nports, e);
	} else
		rc = perr_set(e, PERR_STORE, "redis: unexpected reply to claim");
	freeReplyObject(r);
	return rc;
}

int store_destroy(struct store *s, const char *runner_id, int only_used, struct runner *out, struct perr *e)
{
	char k_runner[KEY_MAX], k_dl[KEY_MAX];
	if (!valid_runner_id(runner_id))
		return 0;
	key(s, k_runner, "runner", runner_id);
	key(s, k_dl, "deadlines", NULL);
	const char *keys[] = {k_runner, k_dl};
	const char *args[] = {s->prefix, runner_id, only_used ? "used" : ""};
	/* idempotent: a second run finds nothing and changes nothing */
	redisReply *r = run_script(s, S_DESTROY, 2, keys, 3, args, NULL, 1, e);
	if (!r)
		return -1;
	int existed = r->type == REDIS_REPLY_ARRAY && r->elements > 0;
	int rc = existed && out ? runner_from_hash(r, runner_id, "0", out, e) : 0;
	freeReplyObject(r);
	return rc < 0 ? -1 : existed;
}

int store_runner_lookup(struct store *s, const char *runner_id, int touch, struct runner *out,
			struct perr *e)
{
	char k_runner[KEY_MAX], k_dl[KEY_MAX];
	if (!valid_runner_id(runner_id))
		return 0;
	key(s, k_runner, "runner", runner_id);
	key(s, k_dl, "deadlines", NULL);
	const char *keys[] = {k_runner, k_dl};
	const char *args[] = {runner_id, touch ? "1" : "0"};
	redisReply *r = run_script(s, S_LOOKUP, 2, keys, 2, args, NULL, 1, e);
	if (!r)
		return -1;
	int found = r->type == REDIS_REPLY_ARRAY && r->elements == 2;
	int rc = found ? runner_from_hash(r->element[0], runner_id, r->element[1]->str, out, e) : 0;
	freeReplyObject(r);
	return rc < 0 ? -1 : found;
}

int store_runner_add_starting(struct store *s, long long env, long long generation, const char *runner_id,
			      struct perr *e)
{
	char k_runner[KEY_MAX], k_start[KEY_MAX], k_env[KEY_MAX], envs[24], gen[24];
	if (!valid_runner_id(runner_id))
		return perr_set(e, PERR_BAD_REQUEST, "invalid runner id");
	key(s, k_runner, "runner", runner_id);
	env_key(s, k_start, "starting", env);
	env_key(s, k_env, "env", env);
	snprintf(envs, sizeof envs, "%lld", env);
	snprintf(gen, sizeof gen, "%lld", generation);
	const char *keys[] = {k_runner, k_start, k_env};
	const char *args[] = {runner_id, envs, gen};
	redisReply *r = run_script(s, S_ADD_STARTING, 3, keys, 3, args, NULL, 1, e);
	if (!r)
		return -1;
	int added = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
	freeReplyObject(r);
	return added;
}

int store_runner_ready(struct store *s, const char *runner_id, const char *alloc_id, const char *node,
		       const struct mapped_port *ports, int nports, struct perr *e)
{
	char k_runner[KEY_MAX];
	if (!valid_runner_id(runner_id))
		return 0;
	char *pj = model_mapped_ports_to_json(ports, nports > 0 ? (size_t)nports : 0);
	if (!pj)
		return perr_set(e, PERR_UNKNOWN, "out of memory");
	key(s, k_runner, "runner", runner_id);
	const char *keys[] = {k_runner};
	const char *args[] = {s->prefix, runner_id, alloc_id ? alloc_id : "", node ? node : "", pj};
	/* idempotent: the state check makes a second run a no-op */
	int moved = run_flag(s, S_READY, 1, keys, 5, args, 1, e);
	free(pj);
	return moved;
}

int store_expired_runners(struct store *s, size_t max, char ***ids, size_t *n, struct perr *e)
{
	char k_dl[KEY_MAX], m[24];
	*ids = NULL;
	*n = 0;
	key(s, k_dl, "deadlines", NULL);
	snprintf(m, sizeof m, "%zu", max);
	const char *keys[] = {k_dl};
	const char *args[] = {m};
	redisReply *r = run_script(s, S_EXPIRED, 1, keys, 1, args, NULL, 1, e);
	if (!r)
		return -1;
	int rc = ids_from_reply(r, ids, n, e);
	freeReplyObject(r);
	return rc;
}

void store_free_ids(char **ids, size_t n)
{
	for (size_t i = 0; ids && i < n; i++)
		free(ids[i]);
	free(ids);
}

/* ---- environments' runners and recovery ------------------------------------------------- */

int store_env_tombstoned(struct store *s, long long id, struct perr *e)
{
	char k[KEY_MAX];
	env_key(s, k, "tombstone", id);
	const char *argv[] = {"EXISTS", k};
	redisReply *r = cmd(s, 1, e, 2, argv, NULL);
	if (!r)
		return -1;
	int yes = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
	freeReplyObject(r);
	return yes;
}

static void env_runner_keys(struct store *s, long long env, char k[4][KEY_MAX], char prefix[KEY_MAX])
{
	env_key(s, k[0], "pool", env);
	env_key(s, k[1], "starting", env);
	env_key(s, k[2], "used", env);
	key(s, k[3], "deadlines", NULL);
	snprintf(prefix, KEY_MAX, "%srunner:", s->prefix);
}

static int ids_from_reply(redisReply *r, char ***ids, size_t *n, struct perr *e)
{
	*ids = calloc(r->elements + 1, sizeof **ids);
	*n = 0;
	if (!*ids)
		return perr_set(e, PERR_UNKNOWN, "out of memory");
	for (size_t i = 0; i < r->elements; i++)
		if (r->element[i]->type == REDIS_REPLY_STRING && ((*ids)[*n] = strdup(r->element[i]->str)))
			(*n)++;
	return 0;
}

int store_env_destroy_runners(struct store *s, long long env, char ***ids, size_t *n, struct perr *e)
{
	char k[4][KEY_MAX], prefix[KEY_MAX];
	env_runner_keys(s, env, k, prefix);
	const char *keys[] = {k[0], k[1], k[2], k[3]};
	const char *args[] = {prefix};
	redisReply *r = run_script(s, S_DESTROY_ENV, 4, keys, 1, args, NULL, 1, e);
	if (!r)
		return -1;
	int rc = r->type == REDIS_REPLY_ARRAY ? ids_from_reply(r, ids, n, e)
					      : perr_set(e, PERR_STORE, "redis: unexpected reply");
	freeReplyObject(r);
	return rc;
}

int store_env_runners(struct store *s, long long env, struct runner **out, size_t *n, struct perr *e)
{
	char k[4][KEY_MAX], prefix[KEY_MAX];
	env_runner_keys(s, env, k, prefix);
	const char *keys[] = {k[0], k[1], k[2], k[3]};
	const char *args[] = {prefix};
	*out = NULL;
	*n = 0;
	redisReply *r = run_script(s, S_ENV_RUNNERS, 4, keys, 1, args, NULL, 1, e);
	if (!r)
		return -1;
	if (r->type != REDIS_REPLY_ARRAY || r->elements % 3) {
		freeReplyObject(r);
		return perr_set(e, PERR_STORE, "redis: unexpected reply to runner listing");
	}
	*out = calloc(r->elements / 3 + 1, sizeof **out);
	if (!*out) {
		freeReplyObject(r);
		return perr_set(e, PERR_UNKNOWN, "out of memory");
	}
	for (size_t i = 0; i < r->elements; i += 3) {
		struct runner *rn = &(*out)[*n];
		if (runner_from_hash(r->element[i + 1], r->element[i]->str, r->element[i + 2]->str, rn, e) == 0)
			(*n)++;
	}
	freeReplyObject(r);
	return 0;
}

int store_runner_adopt(struct store *s, long long env, long long generation, const char *runner_id,
		       const char *state, const char *alloc_id, const char *node, const struct mapped_port *ports,
		       int nports, long long timeout, struct perr *e)
{
	char k_runner[KEY_MAX], k_dl[KEY_MAX], envs[24], gen[24], t[24];
	if (!valid_runner_id(runner_id))
		return perr_set(e, PERR_BAD_REQUEST, "invalid runner id");
	char *pj = model_mapped_ports_to_json(ports, nports > 0 ? (size_t)nports : 0);
	if (!pj)
		return perr_set(e, PERR_UNKNOWN, "out of memory");
	key(s, k_runner, "runner", runner_id);
	key(s, k_dl, "deadlines", NULL);
	snprintf(envs, sizeof envs, "%lld", env);
	snprintf(gen, sizeof gen, "%lld", generation);
	snprintf(t, sizeof t, "%lld", timeout > MAX_TIMEOUT_S ? MAX_TIMEOUT_S : timeout);
	const char *keys[] = {k_runner, k_dl};
	const char *args[] = {s->prefix, runner_id, envs, gen, state, alloc_id ? alloc_id : "", node ? node : "", pj, t};
	int adopted = run_flag(s, S_ADOPT, 2, keys, 9, args, 1, e);
	free(pj);
	return adopted;
}

int store_runner_set(struct store *s, const char *runner_id, struct perr *e, ...)
{
	char k_runner[KEY_MAX];
	const char *args[32];
	int nargs = 0;
	va_list ap;
	if (!valid_runner_id(runner_id))
		return 0;
	va_start(ap, e);
	for (const char *a; (a = va_arg(ap, const char *)) && nargs < 32;)
		args[nargs++] = a;
	va_end(ap);
	if (nargs == 0 || nargs % 2)
		return perr_set(e, PERR_UNKNOWN, "store_runner_set: fields and values must pair up");
	key(s, k_runner, "runner", runner_id);
	const char *keys[] = {k_runner};
	return run_flag(s, S_RUNNER_SET, 1, keys, nargs, args, 1, e);
}

int store_pop_claimed(struct store *s, size_t max, char ***ids, size_t *n, struct perr *e)
{
	char k[KEY_MAX], m[24];
	key(s, k, "claimed", NULL);
	snprintf(m, sizeof m, "%zu", max);
	const char *keys[] = {k};
	const char *args[] = {m};
	*ids = NULL;
	*n = 0;
	/* not idempotent: a lost reply loses the pops, which only delays a Meta update */
	redisReply *r = run_script(s, S_POP, 1, keys, 1, args, NULL, 0, e);
	if (!r)
		return -1;
	int rc = r->type == REDIS_REPLY_ARRAY ? ids_from_reply(r, ids, n, e) : 0;
	freeReplyObject(r);
	return rc;
}

int store_lease(struct store *s, const char *name, const char *owner, int ttl_ms, struct perr *e)
{
	char k[KEY_MAX], ttl[24];
	key(s, k, "lease", name);
	snprintf(ttl, sizeof ttl, "%d", ttl_ms);
	const char *keys[] = {k};
	const char *args[] = {owner, ttl, "hold"};
	return run_flag(s, S_LEASE, 1, keys, 3, args, 1, e);
}

void store_lease_release(struct store *s, const char *name, const char *owner)
{
	char k[KEY_MAX];
	struct perr e;
	key(s, k, "lease", name);
	const char *keys[] = {k};
	const char *args[] = {owner, "0", "release"};
	redisReply *r = run_script(s, S_LEASE, 1, keys, 3, args, NULL, 1, &e);
	freeReplyObject(r);
}

int store_status_set(struct store *s, const char *name, const char *value, int ttl_ms, struct perr *e)
{
	char k[KEY_MAX], ttl[24];
	key(s, k, "status", name);
	snprintf(ttl, sizeof ttl, "%d", ttl_ms);
	redisReply *r;
	if (!value || !*value) {
		const char *argv[] = {"DEL", k};
		r = cmd(s, 1, e, 2, argv, NULL);
	} else {
		const char *argv[] = {"SET", k, value, "PX", ttl};
		r = cmd(s, 1, e, 5, argv, NULL);
	}
	if (!r)
		return -1;
	freeReplyObject(r);
	return 0;
}

/* verb (GET, GETDEL) of one string key into out: 1 found, 0 absent. idempotent: see cmd(). */
static int get_string(struct store *s, const char *verb, int idempotent, const char *k, char *out, size_t cap,
		      struct perr *e)
{
	const char *argv[] = {verb, k};
	redisReply *r = cmd(s, idempotent, e, 2, argv, NULL);
	if (!r)
		return -1;
	int found = r->type == REDIS_REPLY_STRING;
	snprintf(out, cap, "%s", found ? r->str : "");
	freeReplyObject(r);
	return found;
}

int store_status_get(struct store *s, const char *name, char *value, size_t cap, struct perr *e)
{
	char k[KEY_MAX];
	key(s, k, "status", name);
	return get_string(s, "GET", 1, k, value, cap, e);
}

int store_runner_get(struct store *s, const char *runner_id, struct runner *out, struct perr *e)
{
	char k[KEY_MAX], k_dl[KEY_MAX];
	if (!valid_runner_id(runner_id))
		return 0;
	key(s, k, "runner", runner_id);
	key(s, k_dl, "deadlines", NULL);
	const char *argv[] = {"HGETALL", k};
	redisReply *r = cmd(s, 1, e, 2, argv, NULL);
	if (!r)
		return -1;
	int found = r->type == REDIS_REPLY_ARRAY && r->elements > 0;
	int rc = 0;
	if (found) {
		const char *zs[] = {"ZSCORE", k_dl, runner_id};
		redisReply *d = cmd(s, 1, e, 3, zs, NULL);
		rc = runner_from_hash(r, runner_id, d && d->type == REDIS_REPLY_STRING ? d->str : "0", out, e);
		freeReplyObject(d);
	}
	freeReplyObject(r);
	return rc < 0 ? -1 : found;
}

int store_time_ms(struct store *s, long long *now, struct perr *e)
{
	const char *argv[] = {"TIME"};
	redisReply *r = cmd(s, 1, e, 1, argv, NULL);
	if (!r)
		return -1;
	int ok = r->type == REDIS_REPLY_ARRAY && r->elements == 2;
	if (ok)
		*now = to_ll(r->element[0]->str) * 1000 + to_ll(r->element[1]->str) / 1000;
	freeReplyObject(r);
	return ok ? 0 : perr_set(e, PERR_STORE, "redis: unexpected reply to TIME");
}

/* ---- executions ---------------------------------------------------------------------------- */

static int valid_exec_id(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 64)
		return 0;
	for (const char *p = id; *p; p++)
		if (!((*p >= 'a' && *p <= 'f') || (*p >= '0' && *p <= '9') || *p == '-'))
			return 0;
	return 1;
}

int store_exec_put(struct store *s, const char *exec_id, const char *value, struct perr *e)
{
	char k[KEY_MAX], ttl[24];
	if (!valid_exec_id(exec_id))
		return perr_set(e, PERR_UNKNOWN, "invalid execution id");
	key(s, k, "exec", exec_id);
	snprintf(ttl, sizeof ttl, "%d", STORE_EXEC_TTL_S);
	const char *argv[] = {"SET", k, value, "EX", ttl};
	redisReply *r = cmd(s, 1, e, 5, argv, NULL);
	if (!r)
		return -1;
	freeReplyObject(r);
	return 0;
}

static int exec_read(struct store *s, const char *verb, int idempotent, const char *exec_id, char **value,
		     struct perr *e)
{
	char k[KEY_MAX];
	*value = NULL;
	if (!valid_exec_id(exec_id))
		return 0;
	key(s, k, "exec", exec_id);
	const char *argv[] = {verb, k};
	redisReply *r = cmd(s, idempotent, e, 2, argv, NULL);
	if (!r)
		return -1;
	int found = r->type == REDIS_REPLY_STRING;
	if (found && !(*value = strdup(r->str)))
		found = perr_set(e, PERR_UNKNOWN, "out of memory");
	freeReplyObject(r);
	return found;
}

int store_exec_get(struct store *s, const char *exec_id, char **value, struct perr *e)
{
	return exec_read(s, "GET", 1, exec_id, value, e);
}

int store_exec_take(struct store *s, const char *exec_id, char **value, struct perr *e)
{
	/* GETDEL: atomic, and never retried (a second GETDEL would find nothing) */
	return exec_read(s, "GETDEL", 0, exec_id, value, e);
}

/* ---- waking the refill daemon -------------------------------------------------------------- */

int store_wake(struct store *s, struct perr *e)
{
	char k[KEY_MAX];
	key(s, k, "wake", NULL);
	const char *push[] = {"LPUSH", k, "1"}, *trim[] = {"LTRIM", k, "0", "0"};
	redisReply *r = cmd(s, 1, e, 3, push, NULL);
	if (!r)
		return -1;
	freeReplyObject(r);
	r = cmd(s, 1, e, 4, trim, NULL);
	freeReplyObject(r);
	return r ? 0 : -1;
}

int store_wait_wake(struct store *s, int timeout_ms, struct perr *e)
{
	char k[KEY_MAX], kc[KEY_MAX], t[24];
	key(s, k, "wake", NULL);
	key(s, kc, "claimed", NULL);
	if (timeout_ms >= s->timeout_ms)
		timeout_ms = s->timeout_ms / 2; /* stay inside the connection's read timeout */
	snprintf(t, sizeof t, "%.3f", timeout_ms / 1000.0);
	/* an environment change leaves a token in wake; a claim queues its runner in claimed */
	const char *argv[] = {"BLPOP", k, kc, t};
	redisReply *r = cmd(s, 0, e, 4, argv, NULL);
	if (!r)
		return -1;
	int woken = r->type == REDIS_REPLY_ARRAY && r->elements == 2;
	if (woken && strcmp(r->element[0]->str, kc) == 0) {
		/* a claimed runner: put it back for the pass that marks claimed runners */
		const char *back[] = {"LPUSH", kc, r->element[1]->str};
		redisReply *b = cmd(s, 0, e, 3, back, NULL);
		freeReplyObject(b);
	}
	freeReplyObject(r);
	return woken;
}

/* ---- metrics ------------------------------------------------------------------------------- */

/* Pipelined MULTI/HINCRBY.../EXEC: one round trip, atomic for readers. Not through cmd(): a batch
 * that may have reached Redis is never sent again (the caller keeps it for its next flush). */
int store_metrics_incr(struct store *s, const char *const *fields, const char *const *values, size_t n,
		       struct perr *e)
{
	char k[KEY_MAX];
	if (n == 0)
		return 0;
	key(s, k, "metrics", NULL);
	if (!s->c && connect_(s, e) < 0) {
		metrics_redis_error();
		return -1;
	}
	const char *multi[] = {"MULTI"}, *exec[] = {"EXEC"};
	int ok = redisAppendCommandArgv(s->c, 1, multi, NULL) == REDIS_OK;
	for (size_t i = 0; i < n && ok; i++) {
		const char *argv[] = {strpbrk(values[i], ".eE") ? "HINCRBYFLOAT" : "HINCRBY", k, fields[i], values[i]};
		ok = redisAppendCommandArgv(s->c, 4, argv, NULL) == REDIS_OK;
	}
	ok = ok && redisAppendCommandArgv(s->c, 1, exec, NULL) == REDIS_OK;
	int rc = ok ? 0 : perr_set(e, PERR_UNKNOWN, "out of memory");
	/* read every reply that was queued, so the connection stays in step */
	for (size_t i = 0; ok && i < n + 2; i++) {
		redisReply *r = NULL;
		if (redisGetReply(s->c, (void **)&r) != REDIS_OK || !r) {
			metrics_redis_error();
			perr_set(e, PERR_STORE, "redis %s:%d: %s", s->host, s->port,
				 s->c->errstr[0] ? s->c->errstr : "connection lost");
			drop(s);
			return -1;
		}
		if (rc == 0 && r->type == REDIS_REPLY_ERROR)
			rc = perr_set(e, PERR_STORE, "redis: %s", r->str);
		else if (rc == 0 && i == n + 1 && r->type != REDIS_REPLY_ARRAY)
			rc = perr_set(e, PERR_STORE, "redis: metrics transaction was not executed");
		freeReplyObject(r);
	}
	if (!ok)
		drop(s); /* a half-queued pipeline: start over on a fresh connection */
	return rc;
}

int store_metrics_read(struct store *s, char ***fields, char ***values, size_t *n, struct perr *e)
{
	char k[KEY_MAX];
	*fields = *values = NULL;
	*n = 0;
	key(s, k, "metrics", NULL);
	const char *argv[] = {"HGETALL", k};
	redisReply *r = cmd(s, 1, e, 2, argv, NULL);
	if (!r)
		return -1;
	if (r->type != REDIS_REPLY_ARRAY || r->elements % 2) {
		freeReplyObject(r);
		return perr_set(e, PERR_STORE, "redis: unexpected reply to HGETALL of the metrics");
	}
	*fields = calloc(r->elements / 2 + 1, sizeof **fields);
	*values = calloc(r->elements / 2 + 1, sizeof **values);
	int rc = *fields && *values ? 0 : perr_set(e, PERR_UNKNOWN, "out of memory");
	for (size_t i = 0; rc == 0 && i < r->elements; i += 2) {
		if (r->element[i]->type != REDIS_REPLY_STRING || r->element[i + 1]->type != REDIS_REPLY_STRING)
			continue;
		(*fields)[*n] = strdup(r->element[i]->str);
		(*values)[*n] = strdup(r->element[i + 1]->str);
		if (!(*fields)[*n] || !(*values)[*n]) {
			free((*fields)[*n]);
			free((*values)[*n]);
			rc = perr_set(e, PERR_UNKNOWN, "out of memory");
			break;
		}
		(*n)++;
	}
	freeReplyObject(r);
	if (rc < 0) {
		store_metrics_free(*fields, *values, *n);
		*fields = *values = NULL;
		*n = 0;
	}
	return rc;
}

void store_metrics_free(char **fields, char **values, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(fields ? fields[i] : NULL);
		free(values ? values[i] : NULL);
	}
	free(fields);
	free(values);
}

/* ---- operator requests (poseidon-admin) ---------------------------------------------------- */

/* Rare operator commands: their scripts are sent with EVAL (no SHA cache needed). */
static const char set_pool_size_lua[] =
	"if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end "
	"local old = redis.call('HGET', KEYS[1], 'prewarmingPoolSize') "
	"redis.call('HSET', KEYS[1], 'prewarmingPoolSize', ARGV[1]) "
	"return tonumber(old or '0')";

long long store_env_set_pool_size(struct store *s, long long id, unsigned long long size, struct perr *e)
{
	char k_env[KEY_MAX], v[24];
	env_key(s, k_env, "env", id);
	snprintf(v, sizeof v, "%llu", size);
	const char *argv[] = {"EVAL", set_pool_size_lua, "1", k_env, v};
	redisReply *r = cmd(s, 1, e, 5, argv, NULL); /* idempotent: setting the same size twice */
	if (!r)
		return -1;
	long long old = r->type == REDIS_REPLY_INTEGER ? r->integer : -2;
	freeReplyObject(r);
	if (old == -1)
		return perr_set(e, PERR_NOT_FOUND, "execution environment not found");
	if (old < 0)
		return perr_set(e, PERR_STORE, "redis: unexpected reply to pool size update");
	struct perr we;
	store_wake(s, &we); /* the refill daemon trims or fills now, not at its next tick */
	return old;
}

int store_destroy_in_state(struct store *s, const char *runner_id, const char *state, struct runner *out,
			   struct perr *e)
{
	char k_runner[KEY_MAX], k_dl[KEY_MAX];
	if (!valid_runner_id(runner_id) || !state || !*state)
		return 0;
	key(s, k_runner, "runner", runner_id);
	key(s, k_dl, "deadlines", NULL);
	const char *keys[] = {k_runner, k_dl};
	const char *args[] = {s->prefix, runner_id, state};
	redisReply *r = run_script(s, S_DESTROY, 2, keys, 3, args, NULL, 1, e);
	if (!r)
		return -1;
	int existed = r->type == REDIS_REPLY_ARRAY && r->elements > 0;
	int rc = existed && out ? runner_from_hash(r, runner_id, "0", out, e) : 0;
	freeReplyObject(r);
	return rc < 0 ? -1 : existed;
}

int store_lease_holder(struct store *s, const char *name, char *owner, size_t cap, struct perr *e)
{
	char k[KEY_MAX];
	key(s, k, "lease", name);
	return get_string(s, "GET", 1, k, owner, cap, e);
}

int store_reconcile_request(struct store *s, const char *token, int ttl_ms, struct perr *e)
{
	char k[KEY_MAX], ttl[24];
	key(s, k, "reconcile", NULL);
	snprintf(ttl, sizeof ttl, "%d", ttl_ms);
	const char *argv[] = {"SET", k, token, "PX", ttl};
	redisReply *r = cmd(s, 1, e, 5, argv, NULL);
	if (!r)
		return -1;
	freeReplyObject(r);
	return store_wake(s, e);
}

int store_reconcile_take(struct store *s, char *token, size_t cap, struct perr *e)
{
	char k[KEY_MAX];
	key(s, k, "reconcile", NULL);
	/* not retried: a lost reply loses the request, and the asker times out and says so */
	return get_string(s, "GETDEL", 0, k, token, cap, e);
}

int store_reconcile_done(struct store *s, const char *token, const char *error, int ttl_ms, struct perr *e)
{
	char v[PERR_MSG_MAX + 160];
	snprintf(v, sizeof v, "%s %s%s", token, error ? "failed: " : "ok", error ? error : "");
	return store_status_set(s, "reconcile", v, ttl_ms, e);
}

int store_reconcile_result(struct store *s, const char *token, char *out, size_t cap, struct perr *e)
{
	char v[PERR_MSG_MAX + 160];
	size_t n = strlen(token);
	int found = store_status_get(s, "reconcile", v, sizeof v, e);
	if (found <= 0)
		return found;
	if (strncmp(v, token, n) != 0 || v[n] != ' ')
		return 0; /* the answer to someone else's request */
	snprintf(out, cap, "%s", v + n + 1);
	return 1;
}
