"""Meta's official SDK building and normalizing the same events, in-process. Prints the median
milliseconds of one pass over all of them."""
import json, statistics, sys, time
from facebook_business.adobjects.serverside.event import Event
from facebook_business.adobjects.serverside.user_data import UserData
from facebook_business.adobjects.serverside.custom_data import CustomData
from facebook_business.adobjects.serverside.action_source import ActionSource

events = json.load(open(sys.argv[1]))["events"]
runs = int(sys.argv[2]) if len(sys.argv) > 2 else 15

def one_pass():
    payload = []
    for e in events:
        u = e["userData"]
        user = UserData(emails=u["em"], phones=u["ph"], first_names=u["fn"], last_names=u["ln"], cities=u["ct"],
                        states=u["st"], zip_codes=u["zp"], country_codes=u["country"], external_ids=u["external_id"],
                        client_ip_address=u["client_ip_address"], client_user_agent=u["client_user_agent"], fbp=u["fbp"])
        c = e["customData"]
        custom = CustomData(value=c["value"], currency=c["currency"], content_ids=c["contentIds"], content_type=c["contentType"],
                            order_id=c["orderId"], num_items=c["numItems"])
        event = Event(event_name=e["eventName"], event_time=e["eventTime"], event_id=e["eventId"],
                      event_source_url=e["eventSourceUrl"], action_source=ActionSource.WEBSITE, user_data=user, custom_data=custom)
        payload.append(event.normalize())
    return json.dumps({"data": payload})

one_pass()
timings = []
for _ in range(runs):
    start = time.perf_counter()
    one_pass()
    timings.append((time.perf_counter() - start) * 1000)
print(f"{statistics.median(timings):.3f}")
