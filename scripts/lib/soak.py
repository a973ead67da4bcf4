#!/usr/bin/env python3
"""The load and the faults of scripts/soak, against scripts/serve already running (see there).

Clients send events one request at a time and retry each until it is accepted (200 or 202). Meanwhile
send-event processes are killed at random, Meta (the Graph sandbox) fails every events call for a
while, and the store's file system is filled for a while when it is a tmpfs of the soak's own. Then
the faults end, refresh-cron drains, and every accepted event must be delivered to the sandbox, or
still be queued or dead-lettered (`compass-dev audit`): none lost, no record unreadable.
Prints one JSON line of figures; exits 1 on a loss, an unreadable record or a refused event.
"""
import argparse
import errno
import json
import os
import random
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

parser = argparse.ArgumentParser()
parser.add_argument("--base", required=True)
parser.add_argument("--bearer", required=True)
parser.add_argument("--cron-secret", required=True)
parser.add_argument("--bin", required=True)
parser.add_argument("--tenant", required=True)
parser.add_argument("--pixel", required=True)
parser.add_argument("--seconds", type=int, default=60)
parser.add_argument("--clients", type=int, default=4)
parser.add_argument("--fill", default="", help="a folder on the store's own small file system to fill")
args = parser.parse_args()

load_seconds = max(10, args.seconds * 2 // 3)
stop = threading.Event()
lock = threading.Lock()
figures = {"accepted": 0, "attempts": 0, "refused": 0, "killed": 0, "meta_down_seconds": 0, "disk_full_seconds": 0}
accepted_ids = []
refusals = []


def call(method, path, body=None, headers=None, timeout=15):
    request = urllib.request.Request(args.base + path, method=method, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def client(number):
    sequence = 0
    while not stop.is_set():
        event_id = f"soak-{number}-{sequence}"
        sequence += 1
        event = {"eventName": "Lead", "eventTime": int(time.time()) - 30, "actionSource": "system_generated",
                 "eventId": event_id, "userData": {"em": f"{event_id}@example.com", "external_id": event_id}}
        body = json.dumps(event).encode()
        # The same event until it is accepted: a killed process, a full disk or Meta down is
        # answered 5xx or not at all, never taken as done.
        while True:
            with lock:
                figures["attempts"] += 1
            try:
                status, answer = call("POST", "/api/connect/meta/events", body,
                                      {"Authorization": "Bearer " + args.bearer, "Content-Type": "application/json"})
            except Exception:
                status, answer = 0, b""
            if status in (200, 202):
                with lock:
                    figures["accepted"] += 1
                    accepted_ids.append(event_id)
                break
            if 400 <= status < 500 and status not in (408, 409, 429):
                with lock:
                    figures["refused"] += 1
                    refusals.append(f"{status} {answer[:200]!r}")
                break
            time.sleep(0.2)
            if stop.is_set() and time.time() > deadline_retry:
                break


def killer():
    """SIGKILL a random send-event process every 0.1 to 0.5 s."""
    target = os.path.join(args.bin, "send-event")
    while not stop.is_set():
        time.sleep(random.uniform(0.1, 0.5))
        found = subprocess.run(["pgrep", "-f", target], capture_output=True, text=True).stdout.split()
        if found:
            try:
                os.kill(int(random.choice(found)), signal.SIGKILL)
                with lock:
                    figures["killed"] += 1
            except (ProcessLookupError, ValueError):
                pass


def meta_outage(start, length):
    time.sleep(start)
    fault = json.dumps({"kind": "server_error", "path": f"{args.pixel}/events", "remaining": 10_000_000}).encode()
    call("POST", "/graph/sandbox/faults", fault, {"Content-Type": "application/json"})
    time.sleep(length)
    call("DELETE", "/graph/sandbox/faults")
    figures["meta_down_seconds"] = length


def disk_full(start, length):
    time.sleep(start)
    path = os.path.join(args.fill, "soak-filler")
    chunk = b"\0" * (1 << 20)
    with open(path, "wb") as filler:
        try:
            while True:
                filler.write(chunk)
                filler.flush()
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
    time.sleep(length)
    os.remove(path)
    figures["disk_full_seconds"] = length


def cron():
    status, answer = call("POST", "/api/cron/meta/refresh", b"", {"Authorization": "Bearer " + args.cron_secret}, timeout=120)
    return json.loads(answer) if status == 200 else {}


threads = [threading.Thread(target=client, args=(n,)) for n in range(args.clients)]
threads.append(threading.Thread(target=killer))
threads.append(threading.Thread(target=meta_outage, args=(load_seconds * 0.2, load_seconds * 0.25)))
if args.fill:
    threads.append(threading.Thread(target=disk_full, args=(load_seconds * 0.55, load_seconds * 0.15)))
deadline_retry = time.time() + load_seconds + 30
for thread in threads:
    thread.start()
time.sleep(load_seconds)
stop.set()
for thread in threads:
    thread.join()

# Drain: refresh-cron until nothing waits (queued events wait out their backoff).
drain_until = time.time() + max(20, args.seconds - load_seconds)
while time.time() < drain_until:
    summary = cron()
    outbox = summary.get("outbox", {})
    if summary and outbox.get("waiting", 0) == 0 and outbox.get("retried", 0) == 0:
        audit_now = json.loads(subprocess.run([os.path.join(args.bin, "compass-dev"), "audit", args.tenant],
                                              capture_output=True, text=True, check=True).stdout)
        if not audit_now["queued"]:
            break
    time.sleep(2)

status, answer = call("GET", f"/graph/sandbox/events?pixel={args.pixel}")
delivered = {}
for stored in json.loads(answer)["events"]:
    event_id = stored["event"].get("event_id")
    delivered[event_id] = delivered.get(event_id, 0) + 1
audit = json.loads(subprocess.run([os.path.join(args.bin, "compass-dev"), "audit", args.tenant],
                                  capture_output=True, text=True, check=True).stdout)
queued, dead = set(audit["queued"]), set(audit["dead"])
lost = [event_id for event_id in accepted_ids if event_id not in delivered and event_id not in queued and event_id not in dead]
figures.update({
    "delivered": sum(1 for event_id in accepted_ids if event_id in delivered),
    "still_queued": len(queued), "dead_lettered": len(dead), "lost": len(lost),
    "delivered_twice": sum(1 for event_id in accepted_ids if delivered.get(event_id, 0) > 1),
    "unreadable_records": audit["corrupt"],
})
print(json.dumps(figures, sort_keys=True))
if lost:
    print("lost:", lost[:20])
if refusals:
    print("refused:", refusals[:5])
ok = not lost and audit["corrupt"] == 0 and not refusals and figures["accepted"] > 0
raise SystemExit(0 if ok else 1)
