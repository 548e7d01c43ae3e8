-- The canary split done in Lua the way ingress-style canaries do it, for
-- benchmark (c) (bench/variant-lua.conf):
--
--   rewrite phase: an override header (X-Canary: always|never), then a
--   cookie (canary=always|never), then a sticky hash of the tenant
--   (X-Tenant-Id) against the weight, read from a lua_shared_dict on
--   every request so that it can change at run time;
--   log phase: per-variant counters in the shared dict, the same ones the
--   module keeps (requests, status classes, upstream errors, latency and
--   upstream latency histograms with the module's bucket layout, sums).
--
-- Written to be fast (keys built once, no per-request tables), so that
-- the comparison with the module is fair to Lua.

local _M = {}

local ngx = ngx
local var = ngx.var
local now = ngx.now
local start_time = ngx.req.start_time
local crc32 = ngx.crc32_short
local floor = math.floor
local frexp = math.frexp
local random = math.random
local tonumber = tonumber

local dict
local keys = {}

-- the module's histogram: [0, 64us), then 16 linear buckets per octave
-- up to 2^26us, then the rest (src/core/ngx_http_canary_histogram.h)
local function hist_index(us)
    if us < 64 then
        return 0
    end

    if us >= 67108864 then
        return 321
    end

    local _, e = frexp(us)
    local shift = e - 1

    return 1 + (shift - 6) * 16 + floor(us / 2 ^ (shift - 4)) % 16
end


function _M.init(shared, weight)
    dict = shared
    dict:set("weight", weight * 100)        -- hundredths of percent

    for _, side in ipairs({ "stable", "canary" }) do
        local k = {
            requests = side .. ":requests",
            upstream_errors = side .. ":upstream_errors",
            latency_sum = side .. ":latency_sum_us",
            upstream_sum = side .. ":upstream_sum_us",
            upstream_count = side .. ":upstream_count",
            class = {}, latency = {}, upstream = {},
        }

        for c = 1, 5 do
            k.class[c] = side .. ":" .. c .. "xx"
        end

        for b = 0, 321 do
            k.latency[b] = side .. ":latency:" .. b
            k.upstream[b] = side .. ":upstream:" .. b
        end

        keys[side] = k
    end
end


function _M.rewrite()
    local side
    local h = var.http_x_canary

    if h == "always" then
        side = "canary"

    elseif h == "never" then
        side = "stable"

    else
        local c = var.cookie_canary

        if c == "always" then
            side = "canary"

        elseif c == "never" then
            side = "stable"

        else
            local weight = dict:get("weight") or 0
            local tenant = var.http_x_tenant_id
            local bucket

            if tenant and tenant ~= "" then
                bucket = crc32(tenant) % 10000
            else
                bucket = random(0, 9999)
            end

            side = bucket < weight and "canary" or "stable"
        end
    end

    var.lua_up = side
end


function _M.log()
    local k = keys[var.lua_up]

    if not k then
        return
    end

    dict:incr(k.requests, 1, 0)

    local status = ngx.status

    if (status == 502 or status == 503 or status == 504)
       and (var.upstream_header_time or "-") == "-"
    then
        dict:incr(k.upstream_errors, 1, 0)

    elseif status >= 100 and status < 600 then
        dict:incr(k.class[floor(status / 100)], 1, 0)
    end

    local us = floor((now() - start_time()) * 1000) * 1000

    dict:incr(k.latency[hist_index(us)], 1, 0)
    dict:incr(k.latency_sum, us, 0)

    local urt = tonumber(var.upstream_response_time)

    if urt then
        us = floor(urt * 1000) * 1000
        dict:incr(k.upstream[hist_index(us)], 1, 0)
        dict:incr(k.upstream_sum, us, 0)
        dict:incr(k.upstream_count, 1, 0)
    end
end


return _M
