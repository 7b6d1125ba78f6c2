"""The arm counters' Lua script (ranking/arm_counters.py applies it): per change, a user's
counts in one scope (a step, or "all") read from the scope's per-user hash, the change
applied to them, and the difference of every delta-method sum added to the arm's totals.

A user's field in the per-user hash (keyed by the user's tag) holds their counts over the
experiment's placements and on each placement they were exposed on:

    "x,y,z;hero=x,y,z;cta=x,y,z"    x exposures, y clicks, z conversions

(a value written before conversions and placements were counted, "x,y", reads as x, y, 0 with
no placement). Placement ids cannot hold ",", ";", "=" or ":" (edge_functions.identifiers).

The totals hash of an arm holds, for the whole experiment, the fields `users`, `exposures`,
`exposures_squared`, `clicks`, `clicks_squared`, `exposures_times_clicks`, `conversions`,
`conversions_squared` and `exposures_times_conversions`, and the same names prefixed with
"PLACEMENT:" for each placement (e.g. `hero:clicks`): click-through and conversion rate are
two ratio metrics sharing their denominator (exposures), each with its own y sums.

A click or conversion counts in a scope only once the user has an exposure there: one on a
placement where the user has none counts for the experiment (the user is in its denominator)
but not for that placement.
"""

from __future__ import annotations

# KEYS[1]: the once-marker; then per change: users of the step, users of "all", totals of the
# step, totals of "all". ARGV: use the marker (1/0), TTL, marker TTL; then per change: user
# tag, placement, exposures added, clicks added, conversions added. Returns one character a
# change: "1" when it was the user's first exposure in the step (over all placements). With
# the marker set already, returns what it holds.
APPLY = """
local use_marker = ARGV[1] == '1'
if use_marker then
  local done = redis.call('GET', KEYS[1])
  if done then return done end
end
local sums, order, touched, firsts = {}, {}, {}, {}
local function add(key, field, delta)
  if delta == 0 then return end
  local t = sums[key]
  if not t then t = {}; sums[key] = t; order[#order + 1] = key end
  t[field] = (t[field] or 0) + delta
end
local function counts(text)
  local c, i = {0, 0, 0}, 1
  for n in string.gmatch(text, '[^,]+') do
    if i <= 3 then c[i] = tonumber(n) or 0 end
    i = i + 1
  end
  return c
end
local function parse(v)
  local user = {all = {0, 0, 0}, names = {}, by = {}}
  if not v then return user end
  local first = true
  for part in string.gmatch(v, '[^;]+') do
    if first then
      user.all = counts(part)
      first = false
    else
      local eq = string.find(part, '=', 1, true)
      if eq then
        local name = string.sub(part, 1, eq - 1)
        if not user.by[name] then user.names[#user.names + 1] = name end
        user.by[name] = counts(string.sub(part, eq + 1))
      end
    end
  end
  return user
end
local function dump(user)
  local c = user.all
  local parts = {string.format('%d,%d,%d', c[1], c[2], c[3])}
  for _, name in ipairs(user.names) do
    c = user.by[name]
    parts[#parts + 1] = string.format('%s=%d,%d,%d', name, c[1], c[2], c[3])
  end
  return table.concat(parts, ';')
end
local function moved(tkey, prefix, c, dx, dy, dz)
  local x, y, z = c[1], c[2], c[3]
  local x1, y1, z1 = x + dx, y, z
  if x1 > 0 then y1 = y + dy; z1 = z + dz end
  if x == 0 and x1 > 0 then add(tkey, prefix .. 'users', 1) end
  add(tkey, prefix .. 'exposures', x1 - x)
  add(tkey, prefix .. 'exposures_squared', x1 * x1 - x * x)
  add(tkey, prefix .. 'clicks', y1 - y)
  add(tkey, prefix .. 'clicks_squared', y1 * y1 - y * y)
  add(tkey, prefix .. 'exposures_times_clicks', x1 * y1 - x * y)
  add(tkey, prefix .. 'conversions', z1 - z)
  add(tkey, prefix .. 'conversions_squared', z1 * z1 - z * z)
  add(tkey, prefix .. 'exposures_times_conversions', x1 * z1 - x * z)
  return {x1, y1, z1}, x1 ~= x or y1 ~= y or z1 ~= z
end
local function apply(ukey, tkey, tag, placement, dx, dy, dz)
  local user = parse(redis.call('HGET', ukey, tag))
  local before = user.all[1]
  local all, all_moved = moved(tkey, '', user.all, dx, dy, dz)
  local mine = user.by[placement] or {0, 0, 0}
  local here, here_moved = moved(tkey, placement .. ':', mine, dx, dy, dz)
  if not all_moved and not here_moved then return before end
  user.all = all
  if here_moved then
    if not user.by[placement] then user.names[#user.names + 1] = placement end
    user.by[placement] = here
  end
  redis.call('HSET', ukey, tag, dump(user))
  touched[ukey] = true
  touched[tkey] = true
  return before
end
for i = 0, (#KEYS - 1) / 4 - 1 do
  local k, a = 2 + 4 * i, 4 + 5 * i
  local tag, placement = ARGV[a], ARGV[a + 1]
  local dx, dy, dz = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local before = apply(KEYS[k], KEYS[k + 2], tag, placement, dx, dy, dz)
  apply(KEYS[k + 1], KEYS[k + 3], tag, placement, dx, dy, dz)
  if dx > 0 and before == 0 then firsts[#firsts + 1] = '1' else firsts[#firsts + 1] = '0' end
end
for _, key in ipairs(order) do
  for field, delta in pairs(sums[key]) do
    if delta ~= 0 then redis.call('HINCRBY', key, field, string.format('%d', delta)) end
  end
end
for key in pairs(touched) do redis.call('EXPIRE', key, ARGV[2]) end
local result = table.concat(firsts)
if use_marker then redis.call('SET', KEYS[1], result, 'EX', ARGV[3]) end
return result
"""
