-- wrk script: a fixed request rate, evenly spaced, for the soak (tests/hardening/soak.py).
--
-- wrk is a closed loop; this script turns it into a paced one. Every request claims the next slot
-- of one schedule (a slot every 1/PACED_RATE s) and its connection waits for that slot (wrk's
-- `delay` hook, in whole milliseconds). The offered rate is therefore fixed and spread evenly,
-- not in bursts; connections only bound how many requests may be outstanding. A request that
-- goes out more than 1 ms after its slot (every connection was busy) is counted as late, so a
-- run that could not keep its schedule says so instead of quietly measuring a lower rate.
--
-- Environment:
--   PACED_TOKEN      bearer token sent with every request
--   PACED_BODY_FILE  JSON body to POST (the same bytes on every request)
--   PACED_RATE       requests per second for this wrk process (use -t1)
-- When the run ends, one line "PACED_RESULT {json}" carries counts, errors, lateness and latency
-- percentiles in microseconds.

local ffi = require("ffi")
ffi.cdef [[
typedef struct { long tv_sec; long tv_nsec; } paced_timespec;
int clock_gettime(int clock_id, paced_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("paced_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1e6
end

local token = os.getenv("PACED_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

local body_file = os.getenv("PACED_BODY_FILE")
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
end

local interval_ms = 1000 / assert(tonumber(os.getenv("PACED_RATE")), "PACED_RATE is required")

-- Per-thread state (wrk runs one Lua state per thread); read back in `done` through thread:get.
next_slot = nil
late = 0
max_late_ms = 0

function delay()
  local now = now_ms()
  if next_slot == nil then
    next_slot = now
  end
  local wait = next_slot - now
  next_slot = next_slot + interval_ms
  if wait < -1 then
    late = late + 1
    if -wait > max_late_ms then
      max_late_ms = -wait
    end
  end
  if wait <= 0 then
    return 0
  end
  return math.floor(wait + 0.5)
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function done(summary, latency, requests)
  local total_late, worst = 0, 0
  for _, thread in ipairs(threads) do
    total_late = total_late + (thread:get("late") or 0)
    worst = math.max(worst, thread:get("max_late_ms") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'PACED_RESULT {"requests":%d,"duration_us":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"late":%d,"max_late_ms":%.1f,' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p99.9":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    total_late, worst,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
