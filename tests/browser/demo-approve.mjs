// The person in `make demo` (scripts/demo): headless Chromium with a
// virtual passkey, on the approver's pages.
//
//   node demo-approve.mjs enrol RECORD_FILE PASSKEY_FILE
//       sign in, add a passkey on /passkeys; the page's enrolment record
//       goes to RECORD_FILE (for root's `attestctl approvers add`), the
//       virtual authenticator's credential (with its private key: a test
//       passkey, never a real one) to PASSKEY_FILE for the next step
//   node demo-approve.mjs approve PASSKEY_FILE NEEDLE REASON
//       sign in again with that passkey, wait for the pending request whose
//       page mentions NEEDLE, show it, approve it; prints "REQUEST <id>"
//
// Environment: BASE (https://localhost:PORT), DEMO_USER, DEMO_PASSWORD.
// Exit 0 on success, 1 with a message otherwise.
import { readFileSync, writeFileSync } from 'node:fs';

import {
	addPasskeys, approve, credentials, enrolPasskey, launchBrowser, listedIds, login, newPerson,
	sleep,
} from './lib.mjs';

const BASE = process.env.BASE;
const USER = process.env.DEMO_USER || 'alice';
const PW = process.env.DEMO_PASSWORD;
const [mode, ...argv] = process.argv.slice(2);
const say = (s) => console.log(`browser: ${s}`);

async function signIn(p) {
	say(`${USER} signs in at ${BASE}/login`);
	const r = await login(p.page, BASE, USER, PW);
	if (!r.ok) {
		throw new Error(`sign-in refused: ${r.error}`);
	}
}

async function enrol(recordFile, passkeyFile) {
	const browser = await launchBrowser();
	try {
		const p = await newPerson(browser, USER);
		await signIn(p);
		say('Passkeys page: "Add a passkey" (navigator.credentials.create, a virtual authenticator)');
		const { text } = await enrolPasskey(p.page, BASE);
		writeFileSync(recordFile, `${text}\n`);
		writeFileSync(passkeyFile, JSON.stringify(await credentials(p)), { mode: 0o600 });
		say('the page shows the enrolment record:');
		console.log(text);
	} finally {
		await browser.close().catch(() => {});
	}
}

async function approveOne(passkeyFile, needle, reason) {
	const browser = await launchBrowser();
	try {
		const p = await newPerson(browser, USER);
		const saved = JSON.parse(readFileSync(passkeyFile, 'utf8'));
		await addPasskeys(p, saved);
		await signIn(p);
		say(`waiting for a pending request that mentions ${needle} (${BASE}/requests)`);
		let id = '';
		const deadline = Date.now() + 180000;
		while (!id) {
			for (const cand of await listedIds(p.page, BASE, 'state=pending')) {
				await p.page.goto(`${BASE}/requests/${cand}`);
				if ((await p.page.locator('body').innerText()).includes(needle)) {
					id = cand;
					break;
				}
			}
			if (!id) {
				if (Date.now() > deadline) {
					throw new Error(`no pending request mentioning ${needle}`);
				}
				await sleep(500);
			}
		}
		const field = async (sel) => ((await p.page.locator(sel).count()) > 0
			? (await p.page.locator(sel).innerText()).trim() : '');
		say(`request ${id}: ${await field('#state')}`);
		say(`  op ${await field('#op')}, arguments ${(await field('#args')).replace(/\s+/g, ' ')}`);
		say(`  the agent's reason: ${await field('#agent-reason')}`);
		say(`  digest (the challenge the passkey signs): ${await field('#digest')}`);
		say(`${USER} types a reason and clicks Approve; the passkey signs the digest`);
		const r = await approve(p.page, BASE, id, reason);
		if (r.error) {
			throw new Error(`approval refused: ${r.error}`);
		}
		say(`request ${id} is now ${r.state}`);
		console.log(`REQUEST ${id}`);
		if (r.state !== 'approved') {
			throw new Error(`the request is ${r.state}, not approved`);
		}
	} finally {
		await browser.close().catch(() => {});
	}
}

try {
	if (!BASE || !PW) {
		throw new Error('BASE and DEMO_PASSWORD must be set');
	}
	if (mode === 'enrol' && argv.length === 2) {
		await enrol(argv[0], argv[1]);
	} else if (mode === 'approve' && argv.length === 3) {
		await approveOne(argv[0], argv[1], argv[2]);
	} else {
		throw new Error('usage: demo-approve.mjs enrol RECORD PASSKEY | approve PASSKEY NEEDLE REASON');
	}
	process.exit(0);
} catch (e) {
	console.error(`demo-approve: ${e.message}`);
	process.exit(1);
}
