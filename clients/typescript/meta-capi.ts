// Compass Meta connector: the ingest pipeline's side, `lib/connectors/meta-capi.ts`.
//
// Dependency-free, for Node 18+ (global `fetch`, `node:crypto`). Copy this file into the
// pipeline, set COMPASS_META_CONNECTOR_URL (where the connector's routes are served) and
// COMPASS_JWT_SECRET (the secret the connector verifies sessions with; COMPASS_JWT_AUDIENCE and
// COMPASS_JWT_ISSUER too when the connector is configured with them), then:
//
//   import { sendCAPIEvent } from "@/lib/connectors/meta-capi";
//   const result = await sendCAPIEvent(tenantId, { eventName: "Purchase", ... });
//
// With `{ testEventCode: "TEST12345" }` as the options, that call's events go to Meta's Test
// Events tool under that code (it wins over the tenant's own code, for that call only).
//
// Each call mints a short-lived session for the tenant (HS256, five minutes) and posts to
// POST /api/connect/meta/events (openapi.yaml). Connection errors, 5xx and 429 answers are
// retried with exponential backoff and jitter (honouring Retry-After): safe, because the
// connector sends each event once, keyed by its `eventId` or, when it has none, by its content.
// No `eventId` is made up here: an event without one goes to Meta without one, so that Meta can
// still deduplicate it with the browser pixel's copy by `fbp` or `external_id`; a made-up id
// would make Meta count both copies.

import { createHmac } from "node:crypto";

// ---- Types: the event, the batch and the answers, as openapi.yaml defines them (scripts/lib/check-openapi
// compares the property names of each interface marked `openapi:` with its schema).

/** Meta's `action_source` values. */
export type ActionSource =
  | "website"
  | "app"
  | "email"
  | "phone_call"
  | "chat"
  | "physical_store"
  | "system_generated"
  | "business_messaging"
  | "other";

/** openapi: UserData. Plain values are normalized and SHA-256 hashed by the connector; SHA-256
 * digests pass as they are. */
export interface UserData {
  em?: string | string[];
  ph?: string | string[];
  fn?: string | string[];
  ln?: string | string[];
  ge?: string | string[];
  db?: string | string[];
  ct?: string | string[];
  st?: string | string[];
  zp?: string | string[];
  country?: string | string[];
  external_id?: string | string[];
  f5first?: string | string[];
  f5last?: string | string[];
  fi?: string | string[];
  dobd?: string | string[];
  dobm?: string | string[];
  doby?: string | string[];
  client_ip_address?: string;
  client_user_agent?: string;
  fbc?: string;
  fbp?: string;
  subscription_id?: string | number;
  fb_login_id?: string | number;
  lead_id?: string | number;
  anon_id?: string;
  madid?: string;
  page_id?: string;
  page_scoped_user_id?: string;
  ctwa_clid?: string;
  ig_account_id?: string;
  ig_sid?: string;
  app_user_id?: string;
  whatsapp_business_account_id?: string | number;
}

/** Meta's `custom_data`, in camelCase or snake_case; other keys pass as they are. */
export interface CustomData {
  value?: number;
  currency?: string;
  contentIds?: (string | number)[];
  contentType?: string;
  contents?: { id: string; quantity?: number; item_price?: number; delivery_category?: string }[];
  orderId?: string;
  numItems?: number;
  [key: string]: unknown;
}

/** openapi: Event. The event of the seed's `sendCAPIEvent(tenantId, event)`. */
export interface CAPIEvent {
  eventName: string;
  /** Unix seconds: within the last 7 days (62 for `physical_store`), at most a minute ahead. */
  eventTime: number;
  actionSource: ActionSource;
  /** The browser pixel's `eventID`, to deduplicate the two copies at Meta. */
  eventId?: string;
  /** Required for `website` events. */
  eventSourceUrl?: string;
  userData: UserData;
  customData?: CustomData;
  optOut?: boolean;
  referrerUrl?: string;
  messagingChannel?: "whatsapp" | "messenger" | "instagram";
  appData?: Record<string, unknown>;
  /** Limited Data Use: `["LDU"]` with the two fields below (Meta's shape), or one object. */
  dataProcessingOptions?: string[] | { options: string[]; country?: number; state?: number };
  dataProcessingOptionsCountry?: number;
  dataProcessingOptionsState?: number;
  advancedMeasurementTable?: string;
  advertiserTrackingEnabled?: boolean;
  originalEventData?: Record<string, unknown>;
  attributionData?: Record<string, unknown>;
}

/** openapi: Problem. */
export interface Problem {
  field: string;
  code: string;
  message: string;
}

/** openapi: Rejection. Why one event was not sent: the connector's check, or Meta's refusal. */
export interface Rejection {
  index: number;
  eventId?: string;
  code: string;
  message: string;
  problems?: Problem[];
}

/** openapi: EventBatch. The body of a request of several events. */
interface EventBatch {
  events: CAPIEvent[];
  testEventCode?: string;
}

/** openapi: EventWarning. */
export interface EventWarning {
  index: number;
  message: string;
}

/** openapi: EventsAnswer. The connector's answer to a request of events. */
export interface EventsAnswer {
  status: "sent" | "partial" | "queued" | "rejected";
  eventsReceived: number;
  queued: number;
  duplicates: number;
  rejected: Rejection[];
  warnings: EventWarning[];
  fbtraceIds: string[];
}

/** What became of one event. */
export type SendResult =
  | { status: "sent"; fbtraceIds: string[]; warnings: string[] }
  | { status: "queued"; warnings: string[] }
  | { status: "duplicate"; warnings: string[] }
  | { status: "rejected"; code: string; message: string; problems: Problem[] };

/** What became of a batch: counts, and each rejected event by its index in the batch. */
export interface BatchResult {
  sent: number;
  queued: number;
  duplicates: number;
  rejected: Rejection[];
  warnings: EventWarning[];
  fbtraceIds: string[];
}

export interface ClientOptions {
  /** Default: COMPASS_META_CONNECTOR_URL. */
  baseUrl?: string;
  /** Default: COMPASS_JWT_SECRET (at least 32 bytes). */
  jwtSecret?: string;
  /** Defaults: COMPASS_JWT_AUDIENCE and COMPASS_JWT_ISSUER, when set. */
  audience?: string;
  issuer?: string;
  /** Tries in all (default 5), the first wait (default 250 ms, doubled each time, with jitter,
   * at most 10 s) and each try's time limit (default 30 s). */
  attempts?: number;
  initialBackoffMs?: number;
  timeoutMs?: number;
  /** For tests: the fetch to use and how to wait. */
  fetch?: typeof fetch;
  sleep?: (ms: number) => Promise<void>;
  /** Meta's test event code (1 to 64 letters and digits) for this call's events only: sent as
   * the batch's `testEventCode`, it wins over the tenant's code in the settings. */
  testEventCode?: string;
}

/** An answer that no retry changes (a bad session, no pixel chosen, a malformed request), or
 * retries that ran out. */
export class MetaCAPIError extends Error {
  /** From `sendCAPIEvents`: what the requests before the failed one did, and the index of the
   * first event not known to be sent (send from there again: the connector deduplicates). */
  partial?: BatchResult;
  unsentFrom?: number;

  constructor(
    message: string,
    readonly status: number | undefined,
    readonly code: string,
  ) {
    super(message);
    this.name = "MetaCAPIError";
  }
}

// ---- The calls

/** One event: sent, queued (Meta unreachable: the connector sends it later), a duplicate of
 * one already delivered, or rejected with the reasons. */
export async function sendCAPIEvent(tenantId: string, event: CAPIEvent, options: ClientOptions = {}): Promise<SendResult> {
  // A test event code goes beside `events`: the one-event body has no place for it.
  const body = options.testEventCode === undefined ? event : batch([event], options);
  const answer = await post(tenantId, "/api/connect/meta/events", body, options);
  const warnings = answer.warnings.map((warning) => warning.message);
  const rejection = answer.rejected[0];
  if (rejection !== undefined) {
    return { status: "rejected", code: rejection.code, message: rejection.message, problems: rejection.problems ?? [] };
  }
  if (answer.queued > 0) return { status: "queued", warnings };
  if (answer.duplicates > 0 && answer.eventsReceived === 0) return { status: "duplicate", warnings };
  return { status: "sent", fbtraceIds: answer.fbtraceIds, warnings };
}

/** Events in requests of at most 1000 (Meta's batch); indexes are the events' places in
 * `events`. */
export async function sendCAPIEvents(tenantId: string, events: CAPIEvent[], options: ClientOptions = {}): Promise<BatchResult> {
  const result: BatchResult = { sent: 0, queued: 0, duplicates: 0, rejected: [], warnings: [], fbtraceIds: [] };
  for (let start = 0; start < events.length; start += 1000) {
    let answer: EventsAnswer;
    try {
      answer = await post(tenantId, "/api/connect/meta/events", batch(events.slice(start, start + 1000), options), options);
    } catch (error) {
      if (error instanceof MetaCAPIError) {
        error.partial = result;
        error.unsentFrom = start;
      }
      throw error;
    }
    result.sent += answer.eventsReceived;
    result.queued += answer.queued;
    result.duplicates += answer.duplicates;
    result.rejected.push(...answer.rejected.map((rejection) => ({ ...rejection, index: rejection.index + start })));
    result.warnings.push(...answer.warnings.map((warning) => ({ ...warning, index: warning.index + start })));
    result.fbtraceIds.push(...answer.fbtraceIds);
  }
  return result;
}

function batch(events: CAPIEvent[], options: ClientOptions): EventBatch {
  return options.testEventCode === undefined ? { events } : { events, testEventCode: options.testEventCode };
}

// ---- HTTP, retries and the session

declare const process: { env: Record<string, string | undefined> };

async function post(tenantId: string, path: string, body: unknown, options: ClientOptions): Promise<EventsAnswer> {
  const baseUrl = setting(options.baseUrl ?? process.env.COMPASS_META_CONNECTOR_URL).replace(/\/+$/, "");
  if (!/^https?:\/\//.test(baseUrl)) throw new MetaCAPIError("COMPASS_META_CONNECTOR_URL is not set", undefined, "misconfigured");
  const payload = JSON.stringify(body);
  const attempts = Math.max(1, options.attempts ?? 5);
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let last: Attempt | undefined;
  for (let attempt = 1; attempt <= attempts; attempt++) {
    last = await once(baseUrl + path, tenantId, payload, options);
    if (last.answer !== undefined) return last.answer;
    if (!last.retry || attempt === attempts) break;
    const backoff = Math.min(10_000, (options.initialBackoffMs ?? 250) * 2 ** (attempt - 1));
    await sleep(Math.max(last.retryAfterMs ?? 0, backoff / 2 + Math.random() * (backoff / 2)));
  }
  throw last?.error ?? new MetaCAPIError("no attempt made", undefined, "unavailable");
}

interface Attempt {
  answer?: EventsAnswer;
  error?: MetaCAPIError;
  retry: boolean;
  retryAfterMs?: number;
}

/** One try: the answer, or the error and whether trying again can change it. */
async function once(url: string, tenantId: string, payload: string, options: ClientOptions): Promise<Attempt> {
  // A bad tenant id or secret is thrown from here: no retry changes it.
  const authorization = "Bearer " + session(tenantId, options);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs ?? 30_000);
  try {
    const response = await (options.fetch ?? fetch)(url, {
      method: "POST",
      headers: { authorization, "content-type": "application/json" },
      body: payload,
      signal: controller.signal,
    });
    const text = await response.text();
    if ([200, 202, 207, 422].includes(response.status)) {
      const answer = parse(text);
      if (answer !== undefined) return { answer, retry: false };
    }
    const error = errorOf(text);
    return {
      error: new MetaCAPIError(error.message, response.status, error.code),
      retry: response.status === 429 || response.status >= 500,
      retryAfterMs: retryAfter(response.headers.get("retry-after")),
    };
  } catch (error) {
    // No answer (refused, reset, timed out): the request may or may not have arrived.
    return { error: new MetaCAPIError("the connector could not be reached: " + String(error), undefined, "unreachable"), retry: true };
  } finally {
    clearTimeout(timer);
  }
}

function parse(text: string): EventsAnswer | undefined {
  try {
    const value = JSON.parse(text) as Partial<EventsAnswer>;
    if (typeof value.status !== "string" || !Array.isArray(value.rejected)) return undefined;
    return {
      status: value.status,
      eventsReceived: value.eventsReceived ?? 0,
      queued: value.queued ?? 0,
      duplicates: value.duplicates ?? 0,
      rejected: value.rejected,
      warnings: value.warnings ?? [],
      fbtraceIds: value.fbtraceIds ?? [],
    };
  } catch {
    return undefined;
  }
}

/** openapi: ErrorBody. */
interface ErrorBody {
  error: { code: string; message: string };
}

function errorOf(text: string): { code: string; message: string } {
  try {
    const body = JSON.parse(text) as Partial<ErrorBody>;
    if (body.error !== undefined && typeof body.error.code === "string") return body.error;
  } catch {
    // not JSON: a proxy's page
  }
  return { code: "bad_answer", message: "the connector answered without the answer or error body openapi.yaml gives" };
}

function retryAfter(header: string | null): number | undefined {
  if (header === null) return undefined;
  const seconds = Number(header);
  return Number.isFinite(seconds) && seconds >= 0 ? Math.min(seconds, 60) * 1000 : undefined;
}

/** A Compass session for the tenant: HS256, `sub` the tenant, valid five minutes. */
function session(tenantId: string, options: ClientOptions): string {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(tenantId)) throw new TypeError("tenantId must be 1 to 64 of A-Z a-z 0-9 _ -");
  const secret = setting(options.jwtSecret ?? process.env.COMPASS_JWT_SECRET);
  if (new TextEncoder().encode(secret).length < 32) {
    throw new MetaCAPIError("COMPASS_JWT_SECRET must be at least 32 bytes", undefined, "misconfigured");
  }
  const now = Math.floor(Date.now() / 1000);
  const claims: Record<string, string | number> = { sub: tenantId, iat: now, exp: now + 300 };
  const audience = setting(options.audience ?? process.env.COMPASS_JWT_AUDIENCE);
  const issuer = setting(options.issuer ?? process.env.COMPASS_JWT_ISSUER);
  if (audience) claims.aud = audience;
  if (issuer) claims.iss = issuer;
  const unsigned = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" })) + "." + base64url(JSON.stringify(claims));
  return unsigned + "." + createHmac("sha256", secret).update(unsigned).digest("base64url");
}

/** A setting as the connector reads its own: spaces and tabs at either end dropped. */
function setting(value: string | undefined): string {
  return (value ?? "").replace(/^[ \t]+|[ \t]+$/g, "");
}

function base64url(text: string): string {
  let binary = "";
  for (const byte of new TextEncoder().encode(text)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
