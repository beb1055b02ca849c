-- wrk script for the memory run: valid and invalid requests in turn, each thread stopping after
-- DIGITS_BENCH_REQUESTS / DIGITS_BENCH_THREADS answers. Non-2xx answers are expected here (half
-- the mix is invalid on purpose); bench/abuse/run counts them by status from the server's log.
local total = tonumber(os.getenv("DIGITS_BENCH_REQUESTS") or "1000000")
local threads_count = tonumber(os.getenv("DIGITS_BENCH_THREADS") or "2")
local json = {["Content-Type"] = "application/json"}
local pixels = {}
for y = 0, 27 do
  for x = 0, 27 do pixels[#pixels + 1] = (x >= 12 and x <= 15 and y >= 4 and y <= 23) and "255" or "0" end
end
local one = '{"width":28,"height":28,"pixels":[' .. table.concat(pixels, ",") .. ']}'
local blank = '{"width":2,"height":2,"pixels":[0,0,0,0]}'
local mix = {
  {"GET", "/api/health", nil, nil},                                        -- 200
  {"POST", "/api/predict", json, one},                                     -- 200: a drawn 1, raw pixels
  {"GET", "/app.js", nil, nil},                                            -- 200: a page file
  {"GET", "/v2/models/digits", nil, nil},                                  -- 200
  {"GET", "/api/nothing-here", nil, nil},                                  -- 404
  {"POST", "/api/health", json, "{}"},                                     -- 405
  {"POST", "/api/predict", json, '{"image": '},                            -- 400 malformed JSON
  {"POST", "/api/predict", json, '{"image": "data:image/png;base64,@@@"}'},-- 400 bad base64
  {"POST", "/api/predict", json, blank},                                   -- 422 empty drawing
  {"POST", "/v2/models/digits/infer", json, '{"inputs": 7}'},              -- 400
  {"GET", "/api/health", {["Connection"] = "close"}, nil},                 -- 200, then a new connection
}
local requests = {}
for i, r in ipairs(mix) do requests[i] = wrk.format(r[1], r[2], r[3], r[4]) end

local counter = 0
local answered = 0
local limit = math.ceil(total / threads_count)

function request()
  counter = counter + 1
  return requests[(counter % #requests) + 1]
end

function response(status, headers, body)
  answered = answered + 1
  if answered >= limit then wrk.thread:stop() end
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("requests: %d in %.1f s\n", summary.requests, seconds))
  io.write(string.format("requests/s: %.0f\n", summary.requests / seconds))
  io.write(string.format("errors: connect %d, read %d, write %d, timeout %d\n", e.connect, e.read, e.write, e.timeout))
end
