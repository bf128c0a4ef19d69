-- POST /spends with a fresh Idempotency-Key and a realistic body per request.
package.path = package.path .. ";" .. os.getenv("BENCH_LUA") .. "/?.lua"
require "common"
local categories = {}
for id in string.gmatch(os.getenv("BENCH_CATEGORIES") or "", "[^,]+") do table.insert(categories, id) end

request = function()
  local headers = auth_headers()
  headers["Idempotency-Key"] = next_key("spend")
  local amount = string.format("%d.%02d", math.random(5, 1500), math.random(0, 99))
  local body = string.format(
    '{"amount":"%s","currency":"USD","spend_date":"2026-11-%02d","description":"Bench purchase","category_id":"%s"}',
    amount, math.random(1, 20), categories[math.random(#categories)])
  return wrk.format("POST", "/spends", headers, body)
end
