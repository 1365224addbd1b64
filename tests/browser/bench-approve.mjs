// The time from a person's approval to the token reaching the proxy
// (tests/bench/approver.sh): alice, in headless Chromium with a virtual
// passkey enrolled in attestd, approves RUNS requests one by one; for each
// a client like vmhost's proxy long-polls GET /api/v1/requests/ID?wait=30
// on the approver's API socket and picks the token up with POST
// .../token as soon as the state is approved. Measured from the moment
// Chromium sends the approving POST (after the passkey has signed) to the
// moment the token's bytes have arrived.
//
// Environment: BASE, API_SOCK, ATTESTCTL, ATTESTD_SOCK, VM, LD, PW, WORK,
// RUNS (default 20). Prints one line per run and
//   RESULT approve_to_token runs=N p50_ms=X p95_ms=Y max_ms=Z
import { writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

import { enrolPasskey, launchBrowser, login, newPerson, pageError, submit } from './lib.mjs';

const { BASE, API_SOCK, ATTESTCTL, ATTESTD_SOCK, VM, LD, PW, WORK } = process.env;
const RUNS = Number(process.env.RUNS || 20);

// One HTTP exchange on the API socket: {status, body}.
function call(method, path) {
	return new Promise((resolve, reject) => {
		const req = http.request({ socketPath: API_SOCK, method, path, agent: false,
			headers: { Host: 'approver', 'Content-Length': 0 } }, (res) => {
			const chunks = [];
			res.on('data', (c) => chunks.push(c));
			res.on('end', () => resolve({ status: res.statusCode,
				body: Buffer.concat(chunks).toString('utf8') }));
		});
		req.on('error', reject);
		req.end();
	});
}

// The proxy's side: wait for the decision, then take the token.
async function proxyWait(id) {
	for (;;) {
		const r = await call('GET', `/api/v1/requests/${id}?wait=30`);
		const st = JSON.parse(r.body).state;
		if (st === 'approved') {
			const t = await call('POST', `/api/v1/requests/${id}/token`);
			const at = performance.now();
			if (t.status !== 200 || !JSON.parse(t.body).token) {
				throw new Error(`token pickup: HTTP ${t.status} ${t.body}`);
			}
			return at;
		}
		if (st !== 'pending') {
			throw new Error(`request ${id} is ${st}: ${r.body}`);
		}
	}
}

function pct(sorted, p) {
	const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
	return sorted[Math.max(0, i)];
}

const browser = await launchBrowser();
let code = 0;
try {
	const alice = await newPerson(browser, 'alice');
	const l = await login(alice.page, BASE, 'alice', PW);
	if (!l.ok) {
		throw new Error(`login: ${l.error}`);
	}
	const { text } = await enrolPasskey(alice.page, BASE);
	const f = join(WORK, 'bench-enrol.json');
	writeFileSync(f, text);
	execFileSync(ATTESTCTL, ['--socket', ATTESTD_SOCK, 'approvers', 'add', '--yes', f], { stdio: 'ignore' });

	let sentAt = 0;
	alice.page.on('request', (r) => {
		if (r.method() === 'POST' && /\/requests\/[0-9a-f]{32}\/approve$/.test(r.url())) {
			sentAt = performance.now();
		}
	});
	const ms = [];
	for (let i = 1; i <= RUNS; i++) {
		const s = submit(API_SOCK, { vm: VM, launchDigest: LD, op: 'fs.write',
			args: { path: `/bench/${i}.txt`, data: 'x' }, reason: `latency run ${i}` });
		if (s.status !== 201) {
			throw new Error(`submit: HTTP ${s.status} ${s.text}`);
		}
		await alice.page.goto(`${BASE}/requests/${s.id}`);
		await alice.page.getByLabel('Reason').fill(`run ${i}`);
		const waiting = proxyWait(s.id);
		// The long poll is in the approver's hands before the click.
		await new Promise((r) => setTimeout(r, 50));
		sentAt = 0;
		const nav = alice.page.waitForNavigation().catch(() => null);
		await alice.page.locator('button#approve').click();
		const gotAt = await waiting;
		await nav;
		const err = await pageError(alice.page);
		if (err || sentAt === 0) {
			throw new Error(`run ${i}: ${err || 'no approving POST seen'}`);
		}
		const d = gotAt - sentAt;
		ms.push(d);
		console.log(`run ${i}: approving POST sent -> token picked up: ${d.toFixed(1)} ms`);
	}
	const sorted = [...ms].sort((a, b) => a - b);
	console.log(`RESULT approve_to_token runs=${ms.length} p50_ms=${pct(sorted, 50).toFixed(1)} `
		+ `p95_ms=${pct(sorted, 95).toFixed(1)} max_ms=${sorted[sorted.length - 1].toFixed(1)}`);
} catch (e) {
	console.error(`bench-approve: ${e.message}`);
	code = 1;
}
await browser.close().catch(() => {});
process.exit(code);
