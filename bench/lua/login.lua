-- POST /auth/login (Argon2id makes this slow on purpose).
package.path = package.path .. ";" .. os.getenv("BENCH_LUA") .. "/?.lua"
require "common"

request = function()
  return wrk.format("POST", "/auth/login", { ["Content-Type"] = "application/json" },
    string.format('{"email":"%s","password":"%s"}', os.getenv("BENCH_EMAIL"), os.getenv("BENCH_PASSWORD")))
end
