-- The floor: JWT check and one insert.
package.path = package.path .. ";" .. os.getenv("BENCH_LUA") .. "/?.lua"
require "common"

request = function()
  return wrk.format("POST", "/floor", auth_headers(), '{"note":"floor"}')
end
