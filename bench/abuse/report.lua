-- wrk script: the default request (GET of the URL given), reported as bench/http/predict.lua
-- reports, one line each for throughput, latency percentiles and errors (bench/abuse/run reads them).
-- DIGITS_BENCH_DELAY_MS: a pause before each request on a connection, so that the measurement
-- samples latency at a steady rate instead of taking the whole CPU from the clients it measures beside.
local pause = tonumber(os.getenv("DIGITS_BENCH_DELAY_MS") or "0")
if pause > 0 then
  function delay() return pause end
end
function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("requests: %d in %.1f s\n", summary.requests, seconds))
  io.write(string.format("requests/s: %.0f\n", summary.requests / seconds))
  io.write(string.format("latency ms: p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f\n",
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000))
  io.write(string.format("errors: connect %d, read %d, write %d, timeout %d, non-2xx %d\n",
    e.connect, e.read, e.write, e.timeout, e.status))
end
