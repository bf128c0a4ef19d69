-- Shared by the scenarios: the bearer token and a per-request counter for unique keys.
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  thread_id = id or 0
  math.randomseed(os.time() + thread_id)
end

function next_key(prefix)
  counter = counter + 1
  return string.format("%s-%s-%d-%d-%d", prefix, os.getenv("BENCH_RUN") or "", os.time(), thread_id, counter)
end

function auth_headers()
  return { ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN"), ["Content-Type"] = "application/json" }
end
