-- wrk: POST the quota body named by the BODY environment variable.
local f = assert(io.open(os.getenv("BODY") or "benches/load/demo-quota-body.json", "r"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
