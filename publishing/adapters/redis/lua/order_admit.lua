-- Before an attempt, in one round trip: the firing-before-resolved gate, then, only when the
-- gate lets the attempt go, the target's admission. The adapter prepends order_gate.lua and
-- breaker_acquire.lua as the functions gate(KEYS, ARGV) and acquire(KEYS, ARGV), so each
-- decision keeps one text. A firing job the breaker then defers keeps its in-flight lease
-- until the attempt's order_leave, as with two calls.
-- KEYS: the order hash, then the breaker's four keys (one hash tag: one cluster slot).
-- ARGV: the gate's five arguments, then the admission's eight.
-- Returns {gate ('go'|'superseded'|'wait'), wait_ms}, followed, when the gate says go, by
-- the admission's six values.
local order_key = KEYS[1]
local breaker_key = KEYS[2]
local probes_key = KEYS[3]
local pause_key = KEYS[4]
local rate_key = KEYS[5]

-- The gate's arguments are the first five, the admission's the eight after them.
local gate_args, acquire_args = {}, {}
for i = 1, #ARGV do
  local value = ARGV[i]
  if i <= 5 then gate_args[i] = value else acquire_args[i - 5] = value end
end

local decision = gate({order_key}, gate_args)
if decision[1] ~= 'go' then return decision end
local admitted = acquire({breaker_key, probes_key, pause_key, rate_key}, acquire_args)
return {decision[1], decision[2], admitted[1], admitted[2], admitted[3], admitted[4], admitted[5], admitted[6]}
