-- wrk script of bench/soak.sh. The first script argument names a file of
-- "CATEGORY PATH" lines (soak.sh writes a weighted mix of endpoints); every
-- request GETs the path of a line drawn uniformly at random. response()
-- counts every status outside 200-299 (wrk's own status errors count only
-- >= 400). When wrk finishes, done() prints one "WRK key=value ..." line and
-- one "CAT category=requests ..." line that soak.sh parses.
--
--   wrk -t2 -c32 -d600s -s bench/soak-wrk.lua http://127.0.0.1:PORT -- PATHS_FILE

-- The categories soak.sh writes (done() runs where the file was not read).
local CATS = { "aggregates", "readings", "readings_range", "series", "latest", "devices" }

local paths, cats = {}, {}
local threads = {}

-- Per-thread globals, read by done() with thread:get.
non2xx = 0
for _, c in ipairs(CATS) do
  _G["n_" .. c] = 0
end

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("thread_no", #threads)
end

function init(args)
  local file = args[1] or error("usage: wrk ... -s soak-wrk.lua URL -- PATHS_FILE")
  for line in io.lines(file) do
    local cat, path = line:match("^(%S+)%s+(%S+)$")
    if cat then
      if _G["n_" .. cat] == nil then
        error("unknown category " .. cat .. " in " .. file)
      end
      cats[#cats + 1] = "n_" .. cat
      paths[#paths + 1] = path
    end
  end
  if #paths == 0 then
    error("no paths in " .. file)
  end
  math.randomseed(os.time() + 7919 * (thread_no or 0))
end

function request()
  local i = math.random(#paths)
  _G[cats[i]] = _G[cats[i]] + 1
  return wrk.format("GET", paths[i])
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local bad, bycat = 0, {}
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non2xx") or 0)
    for _, c in ipairs(CATS) do
      bycat[c] = (bycat[c] or 0) + (t:get("n_" .. c) or 0)
    end
  end
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_us=%d bytes=%d p50_us=%d p90_us=%d p99_us=%d p999_us=%d mean_us=%.0f max_us=%d "
      .. "non2xx=%d err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.mean, latency.max, bad, e.connect, e.read, e.write, e.status, e.timeout))
  local parts = {}
  for _, c in ipairs(CATS) do
    parts[#parts + 1] = c .. "=" .. bycat[c]
  end
  io.write("CAT " .. table.concat(parts, " ") .. "\n")
end
