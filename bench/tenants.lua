-- wrk script for the throughput runs: rotates through the request mix that
-- bench/run writes (bench/lib/Bench.pm request_mix: thousands of tenants in
-- X-Tenant-Id, a few X-Canary and Cookie overrides), one request a line,
-- built once per thread so that wrk spends nothing on it per request.
--
--   wrk -t1 -c32 -d10s -s bench/tenants.lua http://127.0.0.1:PORT/ -- MIX
--
-- Prints one machine-readable line at the end ("BENCH key=value ...").

local requests = {}
local n = 0
local i = 0
local threads = {}

function setup(thread)
    thread:set("offset", #threads * 7919)
    table.insert(threads, thread)
end

function init(args)
    local path = args[1] or error("usage: -- MIX_FILE")
    local fh = assert(io.open(path, "r"))

    for line in fh:lines() do
        local headers = { Host = "bench" }

        for name, value in line:gmatch("([^\t:]+): ([^\t]*)") do
            headers[name] = value
        end

        n = n + 1
        requests[n] = wrk.format("GET", "/", headers)
    end

    fh:close()

    i = (tonumber(wrk.thread:get("offset")) or 0) % n
end

function request()
    i = i % n + 1
    return requests[i]
end

function done(summary, latency, req)
    local e = summary.errors

    io.write(string.format(
        "BENCH requests=%d duration_us=%d connect=%d read=%d write=%d "
        .. "status=%d timeout=%d p50_us=%d p90_us=%d p99_us=%d "
        .. "p999_us=%d mean_us=%.1f max_us=%d\n",
        summary.requests, summary.duration, e.connect, e.read, e.write,
        e.status, e.timeout, latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency:percentile(99.9), latency.mean,
        latency.max))
end
