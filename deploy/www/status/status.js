/* Poseidon status page. Polls the REST API (../api/v1/ relative to this page, so it works under any
 * path prefix), keeps the last minutes of samples in memory and draws them as inline SVG.
 *
 * Sources: /statistics/execution-environments (pool size, idle, used per environment) and /metrics
 * (Prometheus text: starting runners, claims, empty-pool events, startup times, requests, executions,
 * Nomad errors, file bytes). The Poseidon-Token, when the service wants one, is typed into the form or
 * passed once as #token=... (the fragment never reaches a server); it is kept in sessionStorage, i.e.
 * for this tab only. #interval=<ms> changes the polling interval (default 2000).
 * Every environment's card carries its current figures as data-* attributes, for scripts and tests. */
(function () {
	"use strict";

	var WINDOW_MS = 10 * 60 * 1000;
	var TOKEN_KEY = "poseidonToken";
	var api = new URL("../api/v1/", location.href);
	var interval = 2000;
	var samples = []; /* {t, envs: {id: figures}, requests, errors, claims} */
	var timer = null;

	/* ---- settings from the fragment ------------------------------------------------------------ */

	var params = new URLSearchParams(location.hash.replace(/^#/, ""));
	if (params.has("token")) {
		sessionStorage.setItem(TOKEN_KEY, params.get("token"));
		params.delete("token");
		var rest = params.toString();
		replaceUrl(location.pathname + location.search + (rest ? "#" + rest : ""));
	}
	if (params.has("interval")) {
		var ms = parseInt(params.get("interval"), 10);
		if (ms >= 250) interval = ms;
	}
	function replaceUrl(url) {
		try { window.history.replaceState(null, "", url); } catch (e) { /* file:// or sandboxed */ }
	}

	/* ---- fetching ------------------------------------------------------------------------------ */

	function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

	function get(path, as) {
		var headers = {};
		if (token()) headers["Poseidon-Token"] = token();
		return fetch(new URL(path, api), { headers: headers, cache: "no-store" }).then(function (r) {
			if (!r.ok) {
				var err = new Error(path + ": HTTP " + r.status);
				err.status = r.status;
				throw err;
			}
			return as === "json" ? r.json() : r.text();
		});
	}

	/* Prometheus text -> [{name, labels: {}, value}] */
	function parseMetrics(text) {
		var out = [];
		text.split("\n").forEach(function (line) {
			if (!line || line.charAt(0) === "#") return;
			var m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
			if (!m) return;
			var labels = {};
			var re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g, l;
			while ((l = re.exec(m[2] || "")))
				labels[l[1]] = l[2].replace(/\\n/g, "\n").replace(/\\(.)/g, "$1");
			out.push({ name: m[1], labels: labels, value: parseFloat(m[3]) });
		});
		return out;
	}

	function sum(list, name, match) {
		return list.reduce(function (acc, s) {
			return s.name === name && (!match || match(s.labels)) ? acc + s.value : acc;
		}, 0);
	}

	/* One sample from both sources. Either may fail (e.g. /metrics behind another proxy); the page
	 * shows what it has. */
	function takeSample(stats, metrics) {
		var now = Date.now(), envs = {};
		Object.keys(stats || {}).forEach(function (id) {
			var s = stats[id];
			envs[id] = { id: id, size: s.prewarmingPoolSize, idle: s.idleRunners, used: s.usedRunners,
				starting: null, claims: null, empty: null, startupAvg: null };
		});
		var m = metrics ? parseMetrics(metrics) : [];
		m.forEach(function (s) {
			var id = s.labels.environment_id;
			if (id === undefined) return;
			var e = envs[id];
			if (!e) {
				if (s.name !== "poseidon_runners" && s.name !== "poseidon_prewarming_pool_size") return;
				e = envs[id] = { id: id, size: null, idle: null, used: null, starting: null,
					claims: null, empty: null, startupAvg: null };
			}
			if (s.name === "poseidon_runners" && s.labels.state === "starting") e.starting = s.value;
			if (s.name === "poseidon_runners" && s.labels.state === "idle" && e.idle === null) e.idle = s.value;
			if (s.name === "poseidon_runners" && s.labels.state === "used" && e.used === null) e.used = s.value;
			if (s.name === "poseidon_prewarming_pool_size" && e.size === null) e.size = s.value;
			if (s.name === "poseidon_runner_claims_total") e.claims = s.value;
			if (s.name === "poseidon_empty_pool_total") e.empty = s.value;
		});
		Object.keys(envs).forEach(function (id) {
			if (metrics && envs[id].claims === null) envs[id].claims = 0; /* counters start when counted */
			if (metrics && envs[id].empty === null) envs[id].empty = 0;
			var n = sum(m, "poseidon_runner_startup_seconds_count", function (l) { return l.environment_id === id; });
			var t = sum(m, "poseidon_runner_startup_seconds_sum", function (l) { return l.environment_id === id; });
			envs[id].startupAvg = n > 0 ? t / n : null;
		});
		return {
			t: now, envs: envs, haveMetrics: !!metrics,
			requests: sum(m, "poseidon_http_requests_total"),
			errors: sum(m, "poseidon_http_requests_total", function (l) { return Number(l.status) >= 500; }),
			claims: sum(m, "poseidon_runner_claims_total"),
			emptyPools: sum(m, "poseidon_empty_pool_total"),
			executions: m.filter(function (s) { return s.name === "poseidon_executions_total"; }),
			nomadErrors: sum(m, "poseidon_nomad_errors_total"),
			reconnects: sum(m, "poseidon_nomad_event_stream_reconnects_total"),
			upload: sum(m, "poseidon_file_bytes_total", function (l) { return l.direction === "upload"; }),
			download: sum(m, "poseidon_file_bytes_total", function (l) { return l.direction === "download"; })
		};
	}

	/* ---- drawing ------------------------------------------------------------------------------- */

	var W = 400, H = 120, PAD_L = 30, PAD_R = 6, PAD_T = 6, PAD_B = 16;

	function esc(s) {
		return String(s).replace(/[&<>"']/g, function (c) {
			return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
		});
	}

	function fmt(v) {
		if (v === null || v === undefined || isNaN(v)) return "–";
		if (Math.abs(v) >= 100 || v === Math.round(v)) return String(Math.round(v));
		return v.toFixed(Math.abs(v) >= 10 ? 1 : 2);
	}

	function bytes(v) {
		var u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
		while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
		return (i ? v.toFixed(1) : String(v)) + " " + u[i];
	}

	/* series: [{cls, points: [[t, v], ...]}] -> an SVG string with a y axis from 0 */
	function chart(series, t0, t1) {
		var max = 0;
		series.forEach(function (s) { s.points.forEach(function (p) { if (p[1] > max) max = p[1]; }); });
		max = max <= 0 ? 1 : niceCeil(max);
		var span = Math.max(t1 - t0, 1);
		function x(t) { return PAD_L + (W - PAD_L - PAD_R) * (t - t0) / span; }
		function y(v) { return PAD_T + (H - PAD_T - PAD_B) * (1 - v / max); }
		var out = ['<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ' + W + " " + H + '" role="img">'];
		[0, max / 2, max].forEach(function (v) {
			out.push('<line class="grid" x1="' + PAD_L + '" x2="' + (W - PAD_R) + '" y1="' + y(v) + '" y2="' + y(v) + '"/>');
			out.push('<text class="axis" x="' + (PAD_L - 4) + '" y="' + (y(v) + 3) + '" text-anchor="end">' + fmt(v) + "</text>");
		});
		var mins = Math.round(span / 60000);
		out.push('<text class="axis" x="' + PAD_L + '" y="' + (H - 3) + '">' +
			(mins >= 1 ? "−" + mins + " min" : "−" + Math.round(span / 1000) + " s") + "</text>");
		out.push('<text class="axis" x="' + (W - PAD_R) + '" y="' + (H - 3) + '" text-anchor="end">now</text>');
		series.forEach(function (s) {
			var pts = s.points.filter(function (p) { return p[1] !== null && !isNaN(p[1]); });
			if (!pts.length) return;
			if (pts.length === 1) pts = [[t0, pts[0][1]], pts[0]]; /* one sample: a flat line */
			out.push('<polyline class="' + s.cls + '" data-points="' + pts.length + '" points="' +
				pts.map(function (p) { return x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1); }).join(" ") + '"/>');
		});
		out.push("</svg>");
		return out.join("");
	}

	function niceCeil(v) {
		var p = Math.pow(10, Math.floor(Math.log10(v))), f = v / p;
		return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
	}

	/* Per-second rate of a counter, over at least RATE_SPAN_MS: the figures reach Redis in batches
	 * (metrics.flushms), so rates between two quick polls would zigzag. */
	var RATE_SPAN_MS = 4000;
	function rate(get) {
		var pts = [], j = 0;
		for (var i = 1; i < samples.length; i++) {
			while (j + 1 < i && samples[i].t - samples[j + 1].t >= RATE_SPAN_MS) j++;
			var a = get(samples[j]), b = get(samples[i]), dt = (samples[i].t - samples[j].t) / 1000;
			if (a === null || b === null || dt <= 0) continue;
			pts.push([samples[i].t, Math.max(0, b - a) / dt]); /* a counter reset counts as 0 */
		}
		return pts;
	}

	function numbers(pairs) {
		return pairs.map(function (p) {
			return '<div><dt>' + esc(p[0]) + '</dt><dd' + (p[2] ? ' class="' + p[2] + '"' : "") + ">" + esc(p[1]) + "</dd></div>";
		}).join("");
	}

	function legend(items) {
		return '<div class="legend">' + items.map(function (i) {
			return '<span class="l-' + i[0] + '">' + esc(i[1]) + "</span>";
		}).join("") + "</div>";
	}

	function render() {
		var last = samples[samples.length - 1];
		var t1 = last.t, t0 = Math.max(samples[0].t, t1 - WINDOW_MS);
		if (t1 - t0 < 60000) t0 = t1 - 60000; /* at least a minute wide, filling from the right */
		document.body.setAttribute("data-samples", String(samples.length));

		var reqRate = rate(function (s) { return s.haveMetrics ? s.requests : null; });
		var errRate = rate(function (s) { return s.haveMetrics ? s.errors : null; });
		var claimRate = rate(function (s) { return s.haveMetrics ? s.claims : null; });
		var execs = last.executions.map(function (s) { return [s.labels.outcome, s.value]; });
		document.getElementById("service-numbers").innerHTML = numbers([
			["environments", Object.keys(last.envs).length],
			["requests/s", reqRate.length ? fmt(reqRate[reqRate.length - 1][1]) : "–"],
			["requests", last.haveMetrics ? fmt(last.requests) : "–"],
			["5xx answers", last.haveMetrics ? fmt(last.errors) : "–", last.errors > 0 ? "empty-pool" : ""],
			["claims", last.haveMetrics ? fmt(last.claims) : "–"],
			["empty-pool events", last.haveMetrics ? fmt(last.emptyPools) : "–", last.emptyPools > 0 ? "empty-pool" : ""],
			["executions", execs.length ? execs.map(function (e) { return e[0] + " " + fmt(e[1]); }).join(", ") : "–"],
			["Nomad errors", last.haveMetrics ? fmt(last.nomadErrors) : "–", last.nomadErrors > 0 ? "empty-pool" : ""],
			["event stream reconnects", last.haveMetrics ? fmt(last.reconnects) : "–"],
			["files up / down", last.haveMetrics ? bytes(last.upload) + " / " + bytes(last.download) : "–"]
		]);
		document.getElementById("chart-requests").innerHTML =
			chart([{ cls: "s-requests", points: reqRate }, { cls: "s-errors", points: errRate }], t0, t1) +
			legend([["requests", "all"], ["errors", "5xx"]]);
		document.getElementById("chart-claims").innerHTML = chart([{ cls: "s-claims", points: claimRate }], t0, t1);

		var box = document.getElementById("environments");
		var ids = Object.keys(last.envs).sort(function (a, b) { return Number(a) - Number(b); });
		document.getElementById("no-environments").hidden = ids.length > 0;
		Array.prototype.slice.call(box.children).forEach(function (c) {
			if (ids.indexOf(c.getAttribute("data-env")) < 0) box.removeChild(c);
		});
		ids.forEach(function (id, i) {
			var e = last.envs[id];
			var card = document.getElementById("env-" + id);
			if (!card) {
				card = document.createElement("section");
				card.id = "env-" + id;
				card.className = "env panel";
				card.setAttribute("data-env", id);
			}
			if (box.children[i] !== card) box.insertBefore(card, box.children[i] || null);
			["size", "idle", "used", "starting", "claims", "empty"].forEach(function (k) {
				card.setAttribute("data-" + k, e[k] === null ? "" : String(e[k]));
			});
			function series(k) {
				return samples.map(function (h) { var x = h.envs[id]; return [h.t, x ? x[k] : null]; });
			}
			var envClaims = rate(function (h) { var x = h.envs[id]; return x ? x.claims : null; });
			card.innerHTML = "<h2>Environment " + esc(id) + "</h2>" +
				'<dl class="numbers">' + numbers([
					["pool size", fmt(e.size)], ["idle", fmt(e.idle)], ["used", fmt(e.used)],
					["starting", fmt(e.starting)], ["claims", fmt(e.claims)],
					["empty pool", fmt(e.empty), e.empty > 0 ? "empty-pool" : ""],
					["claims/s", envClaims.length ? fmt(envClaims[envClaims.length - 1][1]) : "–"],
					["avg startup", e.startupAvg === null ? "–" : fmt(e.startupAvg) + " s"]
				]) + "</dl>" +
				'<div class="chart">' + chart([
					{ cls: "s-size", points: series("size") }, { cls: "s-idle", points: series("idle") },
					{ cls: "s-used", points: series("used") }, { cls: "s-starting", points: series("starting") }
				], t0, t1) + "</div>" +
				legend([["idle", "idle"], ["used", "used"], ["starting", "starting"], ["size", "pool size"]]);
		});
	}

	/* ---- the loop ------------------------------------------------------------------------------ */

	function setStatus(state, text) {
		document.body.setAttribute("data-state", state);
		document.getElementById("status").textContent = text;
	}

	function poll() {
		clearTimeout(timer);
		var stats = get("statistics/execution-environments", "json");
		var metrics = get("metrics", "text").catch(function (e) { return e; });
		Promise.all([stats, metrics]).then(function (r) {
			var m = r[1] instanceof Error ? null : r[1];
			if (r[1] instanceof Error && r[1].status === 401) throw r[1];
			samples.push(takeSample(r[0], m));
			while (samples.length > 2 && samples[0].t < Date.now() - WINDOW_MS) samples.shift();
			render();
			var when = new Date().toLocaleTimeString();
			setStatus("ok", "Updated " + when + (m ? "" : " (no /metrics: " + r[1].message + ")"));
		}).catch(function (e) {
			if (e.status === 401)
				setStatus("unauthorized", "401: this service wants a Poseidon-Token; enter it above.");
			else
				setStatus("error", "Cannot read the API: " + e.message);
		}).then(function () {
			timer = setTimeout(poll, interval);
		});
	}

	document.getElementById("token-form").addEventListener("submit", function (ev) {
		ev.preventDefault();
		var input = document.getElementById("token");
		sessionStorage.setItem(TOKEN_KEY, input.value);
		input.value = "";
		poll();
	});
	document.getElementById("interval").textContent = String(interval / 1000);
	document.getElementById("window").textContent = String(WINDOW_MS / 60000);
	poll();
})();
