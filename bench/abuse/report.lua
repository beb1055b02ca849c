-- wrk script: the default request (GET of the URL given), reported by bench/http/report.lua as
-- bench/http/predict.lua is (bench/abuse/run reads the lines).
-- DIGITS_BENCH_DELAY_MS: a pause before each request on a connection, so that the measurement
-- samples latency at a steady rate instead of taking the whole CPU from the clients it measures beside.
local pause = tonumber(os.getenv("DIGITS_BENCH_DELAY_MS") or "0")
if pause > 0 then
  function delay() return pause end
end
-- The report: bench/http/report.lua.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "../http/report.lua")
