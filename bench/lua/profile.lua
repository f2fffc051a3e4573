-- One wrk script for every scenario: a weighted list of requests.
-- Arguments (after `--`): tag, then groups of four: weight, method, path, body.
-- "{n}" in a body becomes a token unique to this run, thread and request, so a
-- response cache keyed on the body never hits. A list of one fixed request is
-- formatted once, so wrk's own cost stays minimal.
-- done() prints one line "@@bench {json}" with exact percentiles (microseconds).
-- statuses.lua runs this script with count_statuses set: then each thread counts its
-- answers per status code and done() prints "@@statuses {json}" too. Off by default:
-- a response() hook makes wrk parse every answer's headers, which costs the load
-- generator on the cheap scenarios.

local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
  thread:set("tid", #threads)
end

statuses = {}

if count_statuses then
  function response(status, headers, body)
    statuses[status] = (statuses[status] or 0) + 1
  end
end

local entries = {}
local total_weight = 0
local counter = 0
local tag = "run"

function init(args)
  tag = args[1] or "run"
  math.randomseed((tid or 1) * 7919)
  local i = 2
  while args[i + 3] ~= nil do
    local entry = {
      weight = tonumber(args[i]),
      method = args[i + 1],
      path = args[i + 2],
      body = args[i + 3],
    }
    entry.varies = string.find(entry.body, "{n}", 1, true) ~= nil
    if not entry.varies then
      entry.request = build(entry, entry.body)
    end
    total_weight = total_weight + entry.weight
    entry.upto = total_weight
    entries[#entries + 1] = entry
    i = i + 4
  end
end

function build(entry, body)
  -- wrk.format uses the table given instead of wrk.headers: copy the -H headers in.
  local headers = {}
  for name, value in pairs(wrk.headers) do
    headers[name] = value
  end
  if body == "" then
    return wrk.format(entry.method, entry.path, headers)
  end
  headers["Content-Type"] = "application/json"
  return wrk.format(entry.method, entry.path, headers, body)
end

local function pick()
  if #entries == 1 then
    return entries[1]
  end
  local r = math.random() * total_weight
  for _, entry in ipairs(entries) do
    if r < entry.upto then
      return entry
    end
  end
  return entries[#entries]
end

function request()
  local entry = pick()
  if not entry.varies then
    return entry.request
  end
  counter = counter + 1
  local token = tag .. "-" .. tostring(tid or 1) .. "-" .. tostring(counter)
  local body = string.gsub(entry.body, "{n}", token)
  return build(entry, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  local parts = {
    string.format('"requests":%d', summary.requests),
    string.format('"duration_us":%d', summary.duration),
    string.format('"bytes":%d', summary.bytes),
    string.format('"connect":%d,"read":%d,"write":%d', e.connect, e.read, e.write),
    string.format('"status":%d,"timeout":%d', e.status, e.timeout),
    string.format('"min_us":%d,"max_us":%d', latency.min, latency.max),
    string.format('"mean_us":%.1f,"stdev_us":%.1f', latency.mean, latency.stdev),
  }
  for _, p in ipairs({50, 75, 90, 95, 99, 99.9}) do
    parts[#parts + 1] = string.format('"p%s_us":%d', tostring(p), latency:percentile(p))
  end
  io.write("@@bench {" .. table.concat(parts, ",") .. "}\n")
  if count_statuses then
    local totals = {}
    for _, thread in ipairs(threads) do
      for status, n in pairs(thread:get("statuses")) do
        totals[status] = (totals[status] or 0) + n
      end
    end
    local counted = {}
    for status, n in pairs(totals) do
      counted[#counted + 1] = string.format('"%d":%d', status, n)
    end
    io.write("@@statuses {" .. table.concat(counted, ",") .. "}\n")
  end
end
