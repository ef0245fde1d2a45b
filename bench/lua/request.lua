-- wrk script for the KubeKMS benchmarks.
--
-- Environment:
--   BENCH_TOKEN          bearer token sent with every request
--   BENCH_BODY_FILE      JSON body to POST (the same bytes on every request)
--   BENCH_REPLY_BYTES    reply size the bare baseline server should mimic (ignored by the API)
--   BENCH_PATH_TEMPLATE  GET paths instead: "{n}" is replaced by a random integer in [0, BENCH_RANGE)
--   BENCH_RANGE          see above
--   BENCH_NAMESPACE      sent as X-Vault-Namespace (KubeKMS's Transit routes: the project)
-- When the run ends, one line "BENCH_RESULT {json}" carries the counts and latency percentiles
-- (microseconds), including p99.9, which wrk's own --latency table does not print, and the
-- count of replies outside 2xx ("non2xx": wrk's own "status" count only sees 4xx/5xx, so a 1xx
-- or 3xx reply would pass unnoticed). A run with any is not a result (bench/loadgen.py).

-- Each wrk thread has its own Lua state: `setup` keeps the threads so `done` can sum their counts.
local threads = {}
function setup(thread)
  table.insert(threads, thread)
end

non2xx = 0
function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

-- Vault Transit requests: the namespace (KubeKMS project) of the key.
local namespace = os.getenv("BENCH_NAMESPACE")
if namespace and namespace ~= "" then
  wrk.headers["X-Vault-Namespace"] = namespace
end

local body_file = os.getenv("BENCH_BODY_FILE")
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
end

local reply_bytes = os.getenv("BENCH_REPLY_BYTES")
if reply_bytes and reply_bytes ~= "" then
  wrk.headers["X-Bench-Reply-Bytes"] = reply_bytes
end

local template = os.getenv("BENCH_PATH_TEMPLATE")
if template and template ~= "" then
  local range = tonumber(os.getenv("BENCH_RANGE") or "1")
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
  request = function()
    local path = template:gsub("{n}", tostring(math.random(0, range - 1)))
    return wrk.format("GET", path)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  local bad = 0
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("non2xx") or 0)
  end
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,"non2xx":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"p99.9":%d,"max":%d,"mean":%.1f}}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout, bad,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, latency.mean))
end
