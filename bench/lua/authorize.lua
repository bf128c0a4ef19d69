-- POST /card-network/authorizations with the webhook secret, a unique authorization_id, over the
-- cards in BENCH_CARDS (comma separated: one card concentrates the load, many spread it).
package.path = package.path .. ";" .. os.getenv("BENCH_LUA") .. "/?.lua"
require "common"
local cards = {}
for id in string.gmatch(os.getenv("BENCH_CARDS") or "", "[^,]+") do table.insert(cards, id) end
local amount = os.getenv("BENCH_AMOUNT") or "0.01"

request = function()
  local body = string.format(
    '{"card_id":"%s","amount":"%s","currency":"USD","merchant_name":"Bench Cafe","authorization_id":"%s"}',
    cards[math.random(#cards)], amount, next_key("auth"))
  return wrk.format("POST", "/card-network/authorizations",
    { ["x-webhook-secret"] = os.getenv("BENCH_SECRET"), ["Content-Type"] = "application/json" }, body)
end
