-- wrk script for bench/http_load.py. The request (method, body, headers) comes from the
-- environment: BENCH_METHOD, BENCH_BODY_FILE (file whose content is the body), and, for the
-- authenticated case, BENCH_TOKENS_FILE (one pre-signed JWT per line, each used once, since the
-- service refuses a replayed jti). At the end one line "BENCH_JSON {...}" carries the numbers.

local method = os.getenv("BENCH_METHOD") or "GET"
local body_file = os.getenv("BENCH_BODY_FILE")
local tokens_file = os.getenv("BENCH_TOKENS_FILE")

wrk.method = method
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
end
wrk.headers["Accept"] = "application/json"

local tokens = nil
local next_token = 1
if tokens_file and tokens_file ~= "" then
  tokens = {}
  for line in io.lines(tokens_file) do
    tokens[#tokens + 1] = line
  end
end

if tokens then
  -- A fresh token per request; when they run out the service answers 401 (counted as errors).
  request = function()
    local token = tokens[next_token] or "exhausted"
    next_token = next_token + 1
    local headers = {}
    for k, v in pairs(wrk.headers) do headers[k] = v end
    headers["Authorization"] = "Bearer " .. token
    return wrk.format(nil, nil, headers, nil)
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  local pct = {}
  for _, p in ipairs({50, 90, 95, 99, 99.9}) do
    pct[#pct + 1] = string.format('"%s": %.3f', tostring(p), latency:percentile(p) / 1000.0)
  end
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_s": %.3f, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_ms": {"mean": %.3f, "max": %.3f, %s}}\n',
    summary.requests, summary.duration / 1e6, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean / 1000.0, latency.max / 1000.0, table.concat(pct, ", ")))
end
