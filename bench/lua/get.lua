-- GET of BENCH_PATH with the bearer token; BENCH_PATHS (comma separated) picks one at random.
package.path = package.path .. ";" .. os.getenv("BENCH_LUA") .. "/?.lua"
require "common"
local paths = {}
for p in string.gmatch(os.getenv("BENCH_PATHS") or "", "[^,]+") do table.insert(paths, p) end

request = function()
  return wrk.format("GET", paths[math.random(#paths)], auth_headers())
end
