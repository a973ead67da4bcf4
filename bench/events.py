"""Writes N events in the send-event shape (the same inputs for our handler and Meta's SDK).
With --general each event also carries "optOut": false, a field the byte-level path leaves to
the full rules, so that every event takes the general path."""
import json, sys, time
n = int(sys.argv[1])
now = int(time.time()) - 30
events = []
for i in range(n):
    events.append({
        "eventName": "Purchase", "eventTime": now, "actionSource": "website", "eventId": f"bench-{i}",
        "eventSourceUrl": f"https://shop.example/checkout/done?order={i}",
        "userData": {"em": [f"Customer.{i}@Example.com "], "ph": [f"+1 (650) 555-{i % 10000:04d}"], "fn": ["Mary"], "ln": ["Smith"],
                     "ct": ["Menlo Park"], "st": ["ca"], "zp": ["94025"], "country": ["us"], "external_id": [f"crm-{i}"],
                     "client_ip_address": "203.0.113.9", "client_user_agent": "Mozilla/5.0 (X11; Linux x86_64)",
                     "fbp": f"fb.1.1700000000000.{i}"},
        "customData": {"value": 19.99 + i % 50, "currency": "USD", "contentIds": [f"sku-{i % 97}"], "contentType": "product",
                       "orderId": f"order-{i}", "numItems": 1 + i % 3},
    })
if "--general" in sys.argv[2:]:
    for event in events:
        event["optOut"] = False
json.dump({"events": events}, sys.stdout)
