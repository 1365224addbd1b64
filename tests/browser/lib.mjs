// Shared by the browser tests and the demo: headless Chromium driven by
// playwright-core, a virtual WebAuthn authenticator per person (Chrome
// DevTools Protocol), and the approver's pages as docs/approver.md
// describes them (#username, #password, table#requests, #state, #digest,
// #reason, button#approve, button#deny, button#add-passkey, pre#enrolment,
// .error[role=alert]).
//
// Nothing here throws out of a scenario: runScenario catches, prints
// "FAIL: name (why)" and goes on.
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';

import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// Page actions wait at most this long: the approver answers in
// milliseconds; a mint goes to attestd and back.
export const STEP_MS = Number(process.env.BROWSER_STEP_MS || 15000);

export async function launchBrowser(extraArgs = []) {
	return chromium.launch({
		executablePath: CHROMIUM,
		headless: true,
		args: [
			'--no-sandbox',
			'--disable-gpu',
			'--disable-dev-shm-usage',
			'--disable-background-networking',
			'--disable-component-update',
			'--disable-default-apps',
			'--disable-extensions',
			'--disable-sync',
			'--no-first-run',
			'--no-default-browser-check',
			'--password-store=basic',
			'--use-mock-keychain',
			...extraArgs,
		],
	});
}

// A person: their own browser context (cookies) and their own virtual
// authenticator (passkeys), so that two people never share either.
// The approver's certificate is self-signed: the context ignores HTTPS
// errors. WebAuthn still needs a secure context; https://localhost is one.
export async function newPerson(browser, name) {
	const context = await browser.newContext({ ignoreHTTPSErrors: true });
	context.setDefaultTimeout(STEP_MS);
	const page = await context.newPage();
	const cdp = await context.newCDPSession(page);
	await cdp.send('WebAuthn.enable', { enableUI: false });
	const { authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
		options: {
			protocol: 'ctap2',
			transport: 'internal',
			hasResidentKey: true,
			hasUserVerification: true,
			isUserVerified: true,
			automaticPresenceSimulation: true,
		},
	});
	const errors = [];
	page.on('pageerror', (e) => errors.push(String(e)));
	return { name, context, page, cdp, authenticatorId, errors };
}

export async function closePerson(p) {
	if (p && p.context) {
		await p.context.close().catch(() => {});
	}
}

// The credentials the person's virtual authenticator holds.
export async function credentials(p) {
	const r = await p.cdp.send('WebAuthn.getCredentials', { authenticatorId: p.authenticatorId });
	return r.credentials;
}

// Puts passkeys (as WebAuthn.getCredentials gave them, private keys
// included: test passkeys only) into a person's virtual authenticator.
export async function addPasskeys(p, creds) {
	for (const c of creds) {
		await p.cdp.send('WebAuthn.addCredential', { authenticatorId: p.authenticatorId, credential: c });
	}
}

// The same passkeys in a second browser.
export async function copyPasskeys(from, to) {
	await addPasskeys(to, await credentials(from));
}

// The text of the page's visible error banners ('' when none): the
// server's, and the one the page's script fills in (#js-error).
export async function pageError(page) {
	const texts = await page.locator('.error[role=alert]').evaluateAll((els) => els
		.filter((el) => !el.hidden && el.offsetParent !== null)
		.map((el) => el.innerText.trim())
		.filter((t) => t !== ''));
	return texts.join(' / ');
}

// login(page, base, user, pw): fills the form and submits it. Returns
// {ok, error, ms, status, retryAfter}: ok when the browser left /login;
// status and retryAfter (the header, or '') are those of the answer to the
// POST itself, not of a page it redirects to.
export async function login(page, base, user, pw) {
	await page.goto(`${base}/login`);
	await page.getByLabel('Username').fill(user);
	await page.getByLabel('Password').fill(pw);
	const t0 = Date.now();
	// The post always ends in a new page: the next one, or the form again
	// with an error.
	const nav = page.waitForNavigation({ waitUntil: 'load' });
	const posted = page.waitForResponse((resp) => resp.request().method() === 'POST' &&
		new URL(resp.url()).pathname === '/login');
	await page.locator('#sign-in, form[action="/login"] button[type=submit]').first().click();
	const resp = await posted;
	await nav;
	const ms = Date.now() - t0;
	const status = resp.status();
	const retryAfter = (await resp.allHeaders())['retry-after'] || '';
	const url = new URL(page.url());
	if (url.pathname === '/login') {
		return { ok: false, error: await pageError(page), ms, status, retryAfter };
	}
	return { ok: true, error: '', ms, status, retryAfter };
}

// enrolPasskey(page, base): adds a passkey on /passkeys through
// navigator.credentials.create and returns the newest enrolment record
// (the text of pre#enrolment, JSON).
export async function enrolPasskey(page, base) {
	await page.goto(`${base}/passkeys`);
	const before = ((await page.locator('#enrolment').count()) > 0)
		? (await page.locator('#enrolment').innerText()).trim() : '';
	await page.locator('button#add-passkey').click();
	// The page reloads or updates in place once the approver has checked
	// the registration: wait for a record other than the one shown before.
	const deadline = Date.now() + STEP_MS;
	for (;;) {
		const err = await pageError(page).catch(() => '');
		if (err) {
			throw new Error(`passkey registration refused: ${err}`);
		}
		const pre = page.locator('#enrolment');
		if ((await pre.count().catch(() => 0)) > 0) {
			const text = (await pre.innerText().catch(() => '')).trim();
			if (text && text !== before) {
				const rec = JSON.parse(text);
				return { text, record: rec };
			}
		}
		if (Date.now() > deadline) {
			throw new Error('no new enrolment record on /passkeys');
		}
		await page.waitForTimeout(100);
	}
}

// requestState(page, base, id): opens /requests/ID and returns #state.
export async function requestState(page, base, id) {
	await page.goto(`${base}/requests/${id}`);
	return (await page.locator('#state').innerText()).trim();
}

// decide(page, base, id, which, reason): opens the request's page, types
// the reason and clicks Approve or Deny; waits until the page shows an
// error or a state other than pending (or the page stays pending, for a
// quorum not met yet). Returns {state, error}.
async function decide(page, base, id, which, reason) {
	await page.goto(`${base}/requests/${id}`);
	await page.getByLabel('Reason').fill(reason);
	const button = page.locator(`button#${which}`);
	const nav = page.waitForNavigation({ timeout: STEP_MS }).catch(() => null);
	await button.click();
	// Approve runs JavaScript (the assertion) and then submits; Deny is a
	// plain form post. Either ends in a new page, or an error shown in place.
	const deadline = Date.now() + STEP_MS;
	let error = '';
	for (;;) {
		error = await pageError(page).catch(() => '');
		if (error) {
			break;
		}
		const done = await Promise.race([nav.then(() => true),
			new Promise((r) => setTimeout(() => r(false), 100))]);
		if (done) {
			await page.waitForLoadState('load').catch(() => {});
			error = await pageError(page).catch(() => '');
			break;
		}
		if (Date.now() > deadline) {
			break;
		}
	}
	let state = '';
	const st = page.locator('#state');
	if ((await st.count().catch(() => 0)) > 0) {
		state = (await st.innerText().catch(() => '')).trim();
	}
	return { state, error, url: page.url() };
}

export function approve(page, base, id, reason) {
	return decide(page, base, id, 'approve', reason);
}

export function deny(page, base, id, reason) {
	return decide(page, base, id, 'deny', reason);
}

// The ids listed in table#requests on /requests?QUERY.
export async function listedIds(page, base, query = 'state=pending') {
	await page.goto(`${base}/requests?${query}`);
	const hrefs = await page.locator('table#requests a[href*="/requests/"]').evaluateAll(
		(as) => as.map((a) => a.getAttribute('href')));
	const ids = new Set();
	for (const h of hrefs) {
		const m = /\/requests\/([0-9a-f]{32})/.exec(h || '');
		if (m) {
			ids.add(m[1]);
		}
	}
	return [...ids];
}

// --- the proxies' API on the unix socket, through curl -------------------

// canonical JSON (sorted keys, no spaces), as lib/cjson writes it.
export function canonical(v) {
	if (Array.isArray(v)) {
		return `[${v.map(canonical).join(',')}]`;
	}
	if (v !== null && typeof v === 'object') {
		return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
	}
	return JSON.stringify(v);
}

export function sha256hex(s) {
	return createHash('sha256').update(s).digest('hex');
}

export function newId() {
	return randomBytes(16).toString('hex');
}

// api(sock, method, path, body) -> {status, json, text}
export function api(sock, method, path, body) {
	const args = ['-s', '-S', '--max-time', '40', '--unix-socket', sock, '-X', method,
		'-w', '\n%{http_code}', `http://approver${path}`];
	if (body !== undefined) {
		args.push('-H', 'Content-Type: application/json', '--data-binary', JSON.stringify(body));
	}
	const out = execFileSync('curl', args, { encoding: 'utf8' });
	const nl = out.lastIndexOf('\n');
	const text = out.slice(0, nl);
	const status = Number(out.slice(nl + 1));
	let json = null;
	try {
		json = JSON.parse(text);
	} catch {
		json = null;
	}
	return { status, json, text };
}

// submit(sock, fields): POST /api/v1/requests for the given VM; args_sha256
// is computed here. Returns the API's answer and the id.
export function submit(sock, { vm, launchDigest, op, args, reason = '', ttl = 60,
	expires = 0, owner = '', id = newId() }) {
	const body = {
		id,
		aud: 'proxy',
		vm,
		launch_digest: launchDigest,
		op,
		args,
		args_sha256: sha256hex(canonical(args)),
		reason,
		requested_ttl: ttl,
	};
	if (expires) {
		body.expires = expires;
	}
	if (owner) {
		body.owner = owner;
	}
	const r = api(sock, 'POST', '/api/v1/requests', body);
	return { id, ...r };
}

// --- result lines -----------------------------------------------------------

export const results = { pass: 0, fail: 0, skip: 0 };

export function pass(name) {
	results.pass++;
	console.log(`PASS: ${name}`);
}

export function fail(name, why) {
	results.fail++;
	console.log(`FAIL: ${name} (${String(why).replace(/\s+/g, ' ').slice(0, 600)})`);
}

export function skip(name, why) {
	results.skip++;
	console.log(`SKIP: ${name} (${why})`);
}

// runScenario(name, fn): fn returns nothing (PASS), or a string (FAIL with
// that reason), or throws (FAIL with the error); never throws itself.
export async function runScenario(name, fn) {
	const t0 = Date.now();
	try {
		const r = await fn();
		if (typeof r === 'string' && r !== '') {
			fail(name, r);
			return false;
		}
		pass(`${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
		return true;
	} catch (e) {
		fail(name, e && e.message ? e.message : e);
		return false;
	}
}

export function sleep(ms) {
	return new Promise((r) => setTimeout(r, ms));
}
