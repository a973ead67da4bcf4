// The client against the connector as scripts/serve runs it (scripts/lib/check-openapi starts
// it): node --test with META_CAPI_MODULE (the compiled client), COMPASS_META_CONNECTOR_URL,
// COMPASS_JWT_SECRET, TEST_TENANT (connected, with a pixel) and TEST_PIXEL set.
import assert from "node:assert/strict";
import { test } from "node:test";

const { sendCAPIEvent, sendCAPIEvents, MetaCAPIError } = await import(process.env.META_CAPI_MODULE);
const base = process.env.COMPASS_META_CONNECTOR_URL;
const tenant = process.env.TEST_TENANT;
const noWait = { sleep: async () => {} };

function event(id, fields = {}) {
  return {
    eventName: "Purchase",
    eventTime: Math.floor(Date.now() / 1000) - 60,
    actionSource: "website",
    eventId: id,
    eventSourceUrl: "https://shop.example/thanks",
    userData: { em: "jane@example.com", client_user_agent: "Mozilla/5.0 (node test)", client_ip_address: "203.0.113.9" },
    customData: { value: 42.5, currency: "USD" },
    ...fields,
  };
}

/** Meta fails the pixel's next `count` events calls (the Graph sandbox's fault control). */
async function metaFails(count) {
  const response = await fetch(base + "/graph/sandbox/faults", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ kind: "server_error", path: process.env.TEST_PIXEL + "/events", remaining: count }),
  });
  assert.equal(response.status, 201);
}

const unique = () => "node-" + Date.now() + "-" + Math.random().toString(16).slice(2);

test("an event is sent, and the same event again is a duplicate", async () => {
  const purchase = event(unique());
  const sent = await sendCAPIEvent(tenant, purchase);
  assert.equal(sent.status, "sent");
  assert.ok(sent.fbtraceIds.length >= 1);
  assert.deepEqual(await sendCAPIEvent(tenant, purchase), { status: "duplicate", warnings: [] });
});

test("an event without an id is sent without one, and its retry is still a duplicate", async () => {
  const { eventId: _, ...anonymous } = event("unused");
  assert.equal((await sendCAPIEvent(tenant, anonymous)).status, "sent");
  assert.equal((await sendCAPIEvent(tenant, anonymous)).status, "duplicate");
});

test("a rejected event comes back with each problem and its field", async () => {
  const result = await sendCAPIEvent(tenant, event(unique(), { eventSourceUrl: "ftp://shop.example", customData: { value: 1 } }));
  assert.equal(result.status, "rejected");
  const fields = result.problems.map((problem) => problem.field).sort();
  assert.ok(fields.includes("eventSourceUrl") && fields.some((field) => field.startsWith("customData")), JSON.stringify(result));
});

test("a batch: counts, and the rejected event by its index", async () => {
  const result = await sendCAPIEvents(tenant, [event(unique()), event(unique(), { actionSource: "carrier_pigeon" }), event(unique())]);
  assert.equal(result.sent, 2);
  assert.equal(result.rejected.length, 1);
  assert.equal(result.rejected[0].index, 1);
});

test("a 503 and a dropped connection are tried again, after Retry-After; the event is sent once", async () => {
  let calls = 0;
  const waits = [];
  const flaky = async (url, init) => {
    calls += 1;
    if (calls === 1) {
      const body = '{"error":{"code":"store_unavailable","message":"busy"}}';
      return new Response(body, { status: 503, headers: { "retry-after": "5" } });
    }
    if (calls === 2) throw new TypeError("fetch failed");
    return fetch(url, init);
  };
  const purchase = event(unique());
  const options = { fetch: flaky, sleep: async (ms) => void waits.push(ms) };
  assert.equal((await sendCAPIEvent(tenant, purchase, options)).status, "sent");
  assert.equal(calls, 3);
  assert.ok(waits[0] >= 5000 && waits[1] < 5000, JSON.stringify(waits));
  assert.equal((await sendCAPIEvent(tenant, purchase)).status, "duplicate");
});

test("a wrong secret is a 401, not tried again", async () => {
  let calls = 0;
  const counting = async (url, init) => {
    calls += 1;
    return fetch(url, init);
  };
  const wrong = { ...noWait, fetch: counting, jwtSecret: "x".repeat(40) };
  await assert.rejects(sendCAPIEvent(tenant, event(unique()), wrong), (error) => {
    assert.ok(error instanceof MetaCAPIError);
    assert.equal(error.status, 401);
    assert.equal(error.code, "unauthorized");
    return true;
  });
  assert.equal(calls, 1);
});

test("an unreachable connector is tried the given number of times, then reported", async () => {
  let waits = 0;
  const options = { baseUrl: "http://127.0.0.1:9", attempts: 3, sleep: async () => void (waits += 1) };
  await assert.rejects(sendCAPIEvent(tenant, event(unique()), options), (error) => {
    assert.ok(error instanceof MetaCAPIError);
    assert.equal(error.code, "unreachable");
    return true;
  });
  assert.equal(waits, 2);
});

test("a secret with spaces around it works, as the connector trims its own", async () => {
  const padded = { jwtSecret: " " + process.env.COMPASS_JWT_SECRET + "\t " };
  assert.equal((await sendCAPIEvent(tenant, event(unique()), padded)).status, "sent");
});

test("a batch whose second request fails reports what the first did and where to resume", async () => {
  const answered = { status: "sent", eventsReceived: 1000, queued: 0, duplicates: 0, rejected: [], warnings: [], fbtraceIds: ["t"] };
  let calls = 0;
  const fake = async () => {
    calls += 1;
    if (calls === 1) return new Response(JSON.stringify(answered), { status: 200 });
    return new Response('{"error":{"code":"pixel_not_configured","message":"no pixel"}}', { status: 409 });
  };
  const events = Array.from({ length: 1001 }, () => event(unique()));
  await assert.rejects(sendCAPIEvents(tenant, events, { ...noWait, fetch: fake }), (error) => {
    assert.ok(error instanceof MetaCAPIError);
    assert.equal(error.code, "pixel_not_configured");
    assert.equal(error.partial.sent, 1000);
    assert.equal(error.unsentFrom, 1000);
    return true;
  });
});

/** The test event code each of the pixel's stored events reached Meta with ("-" for none), by event id. */
async function codesAtMeta() {
  const response = await fetch(base + "/graph/sandbox/events?pixel=" + process.env.TEST_PIXEL);
  assert.equal(response.status, 200);
  const codes = {};
  for (const stored of (await response.json()).events) codes[stored.event.event_id] = stored.test_event_code ?? "-";
  return codes;
}

test("a call's own test event code goes to Meta with that call's events only", async () => {
  const [one, many, plain] = [unique(), unique(), unique()];
  assert.equal((await sendCAPIEvent(tenant, event(one), { testEventCode: "NODE1" })).status, "sent");
  assert.equal((await sendCAPIEvents(tenant, [event(many)], { testEventCode: "NODE2" })).sent, 1);
  assert.equal((await sendCAPIEvent(tenant, event(plain))).status, "sent");
  const codes = await codesAtMeta();
  assert.deepEqual([codes[one], codes[many], codes[plain]], ["NODE1", "NODE2", "-"]);
});

test("a tenant id that cannot be a session is refused before any call", async () => {
  await assert.rejects(sendCAPIEvent("tenant/../x", event(unique())), TypeError);
});

// Last: the queued copy waits in the outbox, where the next refresh-cron run finds it sent and
// removes it.
test("while Meta is down the event is queued; a retry once Meta answers sends it, once", async () => {
  await metaFails(1);
  const purchase = event(unique());
  assert.deepEqual(await sendCAPIEvent(tenant, purchase), { status: "queued", warnings: [] });
  // A queued event holds no claim: the retry is sent, and a copy after it is a duplicate.
  assert.equal((await sendCAPIEvent(tenant, purchase)).status, "sent");
  assert.equal((await sendCAPIEvent(tenant, purchase)).status, "duplicate");
});
