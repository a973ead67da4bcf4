"""The baseline of the EtcdStore benchmark: the same put, range and compare-and-swap calls on
etcd's JSON gateway over one kept-alive connection, with nothing else. Prints operations/s."""
import base64, http.client, json, sys, time
host, operations = sys.argv[1], int(sys.argv[2])
connection = http.client.HTTPConnection(host)
value = base64.b64encode(b"x" * 512).decode()
def call(path, body):
    connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    return json.loads(connection.getresponse().read())
start, done, i = time.perf_counter(), 0, 0
while done < operations:
    key = base64.b64encode(f"baseline/k{i % 1000}".encode()).decode()
    revision = call("/v3/kv/put", {"key": key, "value": value})["header"]["revision"]
    call("/v3/kv/range", {"key": key})
    call("/v3/kv/txn", {"compare": [{"key": key, "target": "MOD", "mod_revision": revision}],
                        "success": [{"request_put": {"key": key, "value": value}}]})
    done, i = done + 3, i + 1
print(int(operations / (time.perf_counter() - start)))
