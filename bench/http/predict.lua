-- wrk script: POST the drawing in $DIGITS_BENCH_BODY to /api/predict, then report throughput,
-- latency percentiles and every kind of error on one line each (report.lua; bench/http/run reads them).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local file = assert(io.open(os.getenv("DIGITS_BENCH_BODY"), "rb"))
wrk.body = file:read("*a")
file:close()

-- The report: bench/http/report.lua, beside this file.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")
