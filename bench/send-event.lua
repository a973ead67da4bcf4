-- wrk: one new event per request (so none is a duplicate), with the session token from the environment.
local counter = 0
local token = os.getenv("BENCH_TOKEN")
wrk.method = "POST"
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Content-Type"] = "application/json"
request = function()
  counter = counter + 1
  local body = string.format('{"eventName":"Lead","eventTime":%d,"actionSource":"system_generated","eventId":"wrk-%d-%d","userData":{"em":"lead%d@example.com","external_id":"x%d"}}',
    os.time() - 30, math.random(1, 1000000000), counter, counter, counter)
  return wrk.format(nil, nil, nil, body)
end
