-- wrk script of bench/api.sh. Every request GETs a path drawn uniformly at
-- random from the file named by the first script argument (one path per line,
-- as api.sh writes them: one per series, so that the pgbench scripts can draw
-- the same series with \set sid random(:lo, :hi)). With a second argument
-- "seq", each thread instead walks the file in order from its own start
-- (thread n of T at line 1 + (n-1) * lines / T; at most 2 threads), so
-- that no path is requested twice until the threads' walks meet: the
-- distinct-request runs, which no response cache can help. When wrk
-- finishes, done() prints one "WRK key=value ..." line that api.sh parses.
--
--   wrk -t2 -c32 -d30s -s bench/api-wrk.lua http://127.0.0.1:PORT -- PATHS_FILE [seq]

local paths = {}
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_no", threads)
end

local seq, next_path = false, 1

function init(args)
  local file = args[1] or error("usage: wrk ... -s api-wrk.lua URL -- PATHS_FILE [seq]")
  for line in io.lines(file) do
    if line ~= "" then
      paths[#paths + 1] = line
    end
  end
  if #paths == 0 then
    error("no paths in " .. file)
  end
  math.randomseed(os.time() + 7919 * (thread_no or 0))
  seq = args[2] == "seq"
  next_path = 1 + math.floor(((thread_no or 1) - 1) * #paths / 2)
end

function request()
  if seq then
    local p = paths[next_path]
    next_path = next_path % #paths + 1
    return wrk.format("GET", p)
  end
  return wrk.format("GET", paths[math.random(#paths)])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d duration_us=%d bytes=%d p50_us=%d p99_us=%d mean_us=%.0f max_us=%d "
      .. "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency.mean, latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
