#!/usr/bin/env node
// The API contract check (docs/development.md, "The API contract").
//
//   node tests/contract/validate.mjs [--self-test] [LOG...]
//
// 1. Validates the documents themselves: api/openapi.yaml against the OpenAPI 3.x meta-schema
//    (@seriousme/openapi-schema-validator) and api/websocket.schema.json against the JSON Schema
//    2020-12 meta-schema (Ajv, strict mode).
// 2. --self-test: feeds the checks below answers and messages that must fail (a WebSocket message
//    with an extra key, an exit code of 256, an environment list without its key, a 204 with a
//    body, an undocumented status or path, ...) and ones that must pass, so that the check cannot
//    pass vacuously.
// 3. For each LOG (JSON lines written by tests/integration/contract.c while POSEIDON_CONTRACT_LOG
//    was set): maps every recorded HTTP exchange onto its OpenAPI operation (path template, method)
//    and checks status, Content-Type and body against that operation's response; checks every
//    recorded WebSocket message against the WebSocket schema. A path or status the document does
//    not list is a failure; a path under /api/v1 that matches no path, or a known path with another
//    method, must be answered as the document's x-poseidon-unrouted says (404 / 405, empty).
// Prints a summary and exits 1 on any failure, or when a log holds no response or no message.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Validator } from "@seriousme/openapi-schema-validator";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import YAML from "yaml";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const OPENAPI = join(root, "api", "openapi.yaml");
const WSSCHEMA = join(root, "api", "websocket.schema.json");
const API_PREFIX = "/api/v1";
const MAX_PRINTED = 40;

// ---- the documents --------------------------------------------------------------------------

async function loadDocuments() {
	const problems = [];
	const doc = YAML.parse(readFileSync(OPENAPI, "utf8"));
	const oas = new Validator();
	const res = await oas.validate(doc);
	if (!res.valid)
		problems.push(`api/openapi.yaml does not match the OpenAPI ${oas.version ?? "3.x"} schema: ` +
			JSON.stringify(res.errors, null, 1));
	if (!String(doc.openapi).startsWith("3."))
		problems.push(`api/openapi.yaml: openapi is ${doc.openapi}, not 3.x`);

	const wsSchema = JSON.parse(readFileSync(WSSCHEMA, "utf8"));
	const strict = new Ajv2020({ strict: true, allErrors: true });
	if (!strict.validateSchema(wsSchema))
		problems.push("api/websocket.schema.json does not match the JSON Schema 2020-12 meta-schema: " +
			strict.errorsText(strict.errors));
	let wsValidate = null;
	try {
		wsValidate = strict.compile(wsSchema);
	} catch (e) {
		problems.push(`api/websocket.schema.json does not compile: ${e.message}`);
	}

	// OpenAPI 3.1 schema objects are JSON Schema 2020-12 (plus OpenAPI's own formats)
	const ajv = new Ajv2020({ strict: false, allErrors: true });
	addFormats(ajv);
	ajv.addFormat("binary", true);
	ajv.addSchema(doc, "oas");
	return { doc, ajv, wsValidate, problems };
}

// JSON pointer of a document location, as a URI fragment
const pointer = (parts) =>
	"#/" + parts.map((p) => encodeURIComponent(String(p).replace(/~/g, "~0").replace(/\//g, "~1"))).join("/");

function deref(doc, obj, parts) {
	// follows local $refs; returns [object, location parts]
	for (let n = 0; obj && obj.$ref && n < 10; n++) {
		parts = obj.$ref.replace(/^#\//, "").split("/").map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
		obj = parts.reduce((o, k) => (o ? o[k] : undefined), doc);
	}
	return [obj, parts];
}

// ---- the operations -------------------------------------------------------------------------

function buildRoutes(doc) {
	const routes = [];
	for (const [tpl, item] of Object.entries(doc.paths)) {
		const params = {};
		for (const p of item.parameters ?? []) {
			const [param] = deref(doc, p, []);
			if (param.in === "path") params[param.name] = param.schema?.pattern;
		}
		const rx = tpl
			.split(/(\{[^}]+\})/)
			.map((seg) => {
				const m = /^\{([^}]+)\}$/.exec(seg);
				if (!m) return seg.replace(/[.*+?^$()|[\]\\]/g, "\\$&");
				const pat = params[m[1]];
				return pat ? `(?:${pat.replace(/^\^/, "").replace(/\$$/, "")})` : "[^/]+";
			})
			.join("");
		routes.push({ tpl, item, re: new RegExp(`^${rx}$`) });
	}
	return routes;
}

const compiled = new Map();
function schemaValidator(ajv, parts) {
	const ref = "oas" + pointer(parts);
	if (!compiled.has(ref)) compiled.set(ref, ajv.compile({ $ref: ref }));
	return compiled.get(ref);
}

// The path a client sends for the recorded one: without its query, dot segments removed
// (RFC 3986 5.2.4), as curl does before sending.
function requestPath(pq) {
	const [path] = pq.split("?");
	const out = [];
	for (const seg of path.split("/").slice(1)) {
		if (seg === ".") continue;
		if (seg === "..") out.pop();
		else out.push(seg);
	}
	const last = path.split("/").pop();
	return "/" + out.join("/") + (last === "." || last === ".." ? "/" : "");
}

function mediaType(ct) {
	return ct ? ct.split(";")[0].trim().toLowerCase() : "application/octet-stream";
}

// Checks one recorded HTTP exchange; returns null or the reason it fails.
function checkHttp(ctx, rec) {
	const body = Buffer.from(rec.body64 ?? "", "base64");
	const path = requestPath(rec.path);
	const unrouted = ctx.doc["x-poseidon-unrouted"];
	const why = checkRouted(ctx, rec, body, path);
	if (why === null || !unrouted.frontRefusals.statuses.includes(rec.status)) return why;
	// else it may have been refused by the web server before any routing (alike for every path)
	const base = ["x-poseidon-unrouted", "frontRefusals"];
	const front = checkBody(ctx, rec, body, unrouted.frontRefusals, base, `the front's ${rec.status}`);
	return front === null ? null : `${why}; nor is it ${front}`;
}

function checkRouted(ctx, rec, body, path) {
	const { doc, routes } = ctx;
	const unrouted = doc["x-poseidon-unrouted"];
	const emptyRule = (rule, what) => {
		if (rec.status !== rule.status) return `${what}: status ${rec.status}, the document says ${rule.status}`;
		if (rule.body === "empty" && body.length) return `${what}: ${rec.status} with a body (${body.length} bytes)`;
		return null;
	};
	if (!path.startsWith(API_PREFIX)) return `not under ${API_PREFIX}`;
	const rel = path.slice(API_PREFIX.length);
	const route = routes.find((r) => r.re.test(rel));
	if (!route) return emptyRule(unrouted.unknownPath, "undocumented path");
	const method = rec.method.toLowerCase();
	const op = route.item[method];
	if (!op) return emptyRule(unrouted.wrongMethod, `${rec.method} not documented for ${route.tpl}`);
	const base = ["paths", route.tpl, method, "responses"];
	const key = [String(rec.status), `${String(rec.status)[0]}XX`].find((k) => op.responses[k]);
	if (!key) return `status ${rec.status} not documented for ${rec.method} ${route.tpl}`;
	const [resp, rparts] = deref(doc, op.responses[key], [...base, key]);
	return checkBody(ctx, rec, body, resp, rparts, `${rec.status} of ${rec.method} ${route.tpl}`);
}

// Checks the body of rec against the response object resp found at rparts in the document.
function checkBody(ctx, rec, body, resp, rparts, what) {
	const { ajv } = ctx;
	if (!resp.content) {
		if (body.length || rec.truncated) return `${rec.status} must have no body, got ${body.length} bytes`;
		return null;
	}
	const mt = mediaType(rec.contentType);
	if (!resp.content[mt])
		return `Content-Type ${rec.contentType ?? "(none)"} not documented for ${what} (${Object.keys(resp.content).join(", ")})`;
	const sparts = [...rparts, "content", mt, "schema"];
	if (mt === "application/octet-stream") return null; /* bytes: nothing more to check */
	if (rec.truncated) return `body of ${body.length}+ bytes was cut in the log (contract.c records JSON whole)`;
	let value;
	if (mt === "application/json" || mt.endsWith("+json")) {
		try {
			value = JSON.parse(body.toString("utf8"));
		} catch (e) {
			return `body is not JSON (${e.message}): ${body.toString("utf8").slice(0, 200)}`;
		}
	} else {
		value = body.toString("utf8");
	}
	const validate = schemaValidator(ajv, sparts);
	if (!validate(value))
		return `body does not match ${pointer(sparts)}: ${ajv.errorsText(validate.errors)}; body: ${body.toString("utf8").slice(0, 300)}`;
	return null;
}

function checkWs(ctx, rec) {
	const data = Buffer.from(rec.data64 ?? "", "base64").toString("utf8");
	const path = requestPath(rec.path);
	const rel = path.slice(API_PREFIX.length);
	const route = ctx.routes.find((r) => r.re.test(rel));
	if (!path.startsWith(API_PREFIX) || !route || !route.item.get || !route.item.get.responses["101"])
		return `a WebSocket on ${path}, which the document has no upgrade for`;
	let value;
	try {
		value = JSON.parse(data);
	} catch (e) {
		return `message is not JSON (${e.message}): ${data.slice(0, 200)}`;
	}
	if (!ctx.wsValidate(value))
		return `message does not match api/websocket.schema.json: ${ctx.ajv.errorsText(ctx.wsValidate.errors)}: ${data.slice(0, 200)}`;
	return null;
}

// ---- self-test ------------------------------------------------------------------------------

function selfTest(ctx) {
	const b64 = (s) => Buffer.from(s).toString("base64");
	const http = (method, path, status, ct, body) =>
		({ kind: "http", method, path, status, contentType: ct, body64: b64(body) });
	const ws = (msg) => ({ kind: "ws", path: "/api/v1/runners/0-x/websocket?executionID=e", data64: b64(msg) });
	const J = "application/json";
	const cases = [
		// [record, must pass]
		[ws('{"type":"start"}'), true],
		[ws('{"type":"stdout","data":"hi"}'), true],
		[ws('{"type":"exit","data":0}'), true],
		[ws('{"type":"exit","data":255}'), true],
		[ws('{"type":"timeout"}'), true],
		[ws('{"type":"error","data":"Error executing the request"}'), true],
		[ws('{"type":"start","data":""}'), false], // a key too many
		[ws('{"type":"stdout","data":"hi","extra":1}'), false],
		[ws('{"type":"exit","data":256}'), false],
		[ws('{"type":"exit","data":1.5}'), false],
		[ws('{"type":"exit"}'), false],
		[ws('{"type":"stderr","data":""}'), false],
		[ws('{"type":"unknown"}'), false],
		[ws("not json"), false],
		[http("GET", "/api/v1/health", 204, null, ""), true],
		[http("GET", "/api/v1/health", 204, J, "{}"), false], // a body where none is documented
		[http("GET", "/api/v1/health", 200, J, "{}"), false], // an undocumented status
		[http("GET", "/api/v1/health", 503, J, '{"message":"x","errorCode":"UNKNOWN"}'), true],
		[http("GET", "/api/v1/health", 503, J, '{"message":"x","errorCode":"OTHER"}'), false],
		[http("GET", "/api/v1/health", 503, J, '{"message":"x"}'), false],
		[http("GET", "/api/v1/execution-environments", 200, J, '{"executionEnvironments":null}'), true],
		[http("GET", "/api/v1/execution-environments", 200, J, "{}"), false],
		[http("GET", "/api/v1/execution-environments", 200, J, '{"executionEnvironments":[]}'), false],
		[http("GET", "/api/v1/execution-environments", 200, "text/html", '{"executionEnvironments":null}'), false],
		[http("GET", "/api/v1/execution-environments/0", 200, J,
			'{"prewarmingPoolSize":1,"cpuLimit":20,"memoryLimit":100,"image":"i","networkAccess":false,"exposedPorts":null,"id":0}'), true],
		[http("GET", "/api/v1/execution-environments/0", 200, J,
			'{"prewarmingPoolSize":1,"cpuLimit":20,"memoryLimit":100,"image":"i","networkAccess":false,"id":0}'), false],
		[http("GET", "/api/v1/execution-environments/x", 404, null, ""), true], // not a path (GEN-3)
		[http("GET", "/api/v1/nope", 404, null, ""), true],
		[http("GET", "/api/v1/nope", 404, J, '{"message":"x"}'), false],
		[http("GET", "/api/v1/nope", 200, J, "{}"), false],
		[http("GET", "/api/v1/runners/../health", 204, null, ""), true], // sent as /api/v1/health
		[http("PUT", "/api/v1/execution-environments/1%00", 400, J, '{"message":"x"}'), true], // the front's
		[http("PUT", "/api/v1/execution-environments/1%00", 400, "text/html", "<html>"), false],
		[http("GET", "/api/v1/health", 431, J, '{"message":"x"}'), true],
		[http("GET", "/api/v1/runners/0-a/websocket?executionID=e", 400, "text/plain; charset=utf-8", "Bad Request\n"), true],
		[http("GET", "/api/v1/runners/0-a/websocket?executionID=e", 400, "text/plain; charset=utf-8", "Bad\n"), false],
		[http("GET", "/api/v1/health", 500, "text/html", "<html>"), false],
		[http("GET", "/api/v1/runners", 405, null, ""), true],
		[http("GET", "/api/v1/runners", 404, null, ""), false],
		[http("POST", "/api/v1/runners", 200, J, '{"runnerId":"0-a","mappedPorts":[]}'), true],
		[http("POST", "/api/v1/runners", 200, J, '{"runnerId":"0-a","mappedPorts":null}'), false],
		[http("POST", "/api/v1/runners", 400, J, '{"message":"EOF","errorCode":"UNKNOWN"}'), false],
		[http("PUT", "/api/v1/execution-environments/42", 201, null, ""), true],
		[http("DELETE", "/api/v1/runners/0-a", 410, J, '{"message":"no runner found"}'), true],
		[http("GET", "/api/v1/runners/0-a/files/raw?path=x", 200, null, "\u0000\u00ff"), true],
		[http("POST", "/api/v1/runners/0-a/execute", 200, J,
			'{"websocketUrl":"ws://h:1/api/v1/runners/0-a/websocket?executionID=e"}'), true],
		[http("POST", "/api/v1/runners/0-a/execute", 200, J, '{"websocketUrl":"http://h/x"}'), false],
	];
	let bad = 0;
	for (const [rec, pass] of cases) {
		const why = rec.kind === "ws" ? checkWs(ctx, rec) : checkHttp(ctx, rec);
		if ((why === null) !== pass) {
			bad++;
			const what = rec.kind === "ws" ? Buffer.from(rec.data64, "base64").toString() : `${rec.method} ${rec.path} ${rec.status}`;
			console.error(`contract self-test: ${what} ${pass ? `was rejected: ${why}` : "was accepted"}`);
		}
	}
	console.log(`contract self-test: ${cases.length - bad} of ${cases.length} cases judged right`);
	return bad;
}

// ---- main -----------------------------------------------------------------------------------

const args = process.argv.slice(2);
const ctx = await loadDocuments();
if (ctx.problems.length) {
	for (const p of ctx.problems) console.error(`contract: ${p}`);
	process.exit(1);
}
ctx.routes = buildRoutes(ctx.doc);
console.log("contract: api/openapi.yaml and api/websocket.schema.json match their meta-schemas");
let failed = 0;
if (args.includes("--self-test")) failed += selfTest(ctx);

for (const file of args.filter((a) => a !== "--self-test")) {
	const lines = readFileSync(file, "utf8").split("\n").filter((l) => l.trim());
	let responses = 0, messages = 0, failures = 0;
	const seen = new Set();
	for (const [i, line] of lines.entries()) {
		let rec, why;
		try {
			rec = JSON.parse(line);
		} catch (e) {
			why = `line ${i + 1} of the log is not JSON: ${e.message}`;
		}
		if (rec?.kind === "ws") {
			messages++;
			why = checkWs(ctx, rec);
		} else if (rec?.kind === "http") {
			responses++;
			why = checkHttp(ctx, rec);
			seen.add(`${rec.method} ${rec.status}`);
		} else if (!why) {
			why = `line ${i + 1}: unknown kind ${rec?.kind}`;
		}
		if (why) {
			if (failures++ < MAX_PRINTED) {
				const what = rec?.kind === "http" ? `${rec.method} ${rec.path} -> ${rec.status}`
					: rec?.kind === "ws" ? `WebSocket message on ${rec.path}` : "";
				console.error(`contract FAIL [${rec?.test ?? "?"}] ${what}: ${why}`);
			}
		}
	}
	if (failures > MAX_PRINTED) console.error(`contract: ... and ${failures - MAX_PRINTED} more failures`);
	if (!responses || !messages) {
		console.error(`contract: ${file} holds ${responses} responses and ${messages} messages: nothing was recorded?`);
		failures++;
	}
	console.log(`contract: ${file}: ${responses} responses, ${messages} WebSocket messages validated, ${failures} failures`);
	failed += failures;
}
process.exit(failed ? 1 : 0);
