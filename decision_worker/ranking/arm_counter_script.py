"""The arm counters' Lua script (ranking/arm_counters.py applies it): per change, a user's
counts in one scope (a step, or "all") read from the scope's per-user hash, the change
applied to them, and the difference of every delta-method sum added to the arm's totals.
Changes apply in order; a user's field is read once per call and written once at its end,
and each totals field gets one HINCRBY per call.

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

Every change counts under the person's tag: a tag found in the owners hash (an anonymous id
merged into a known user, keys.ARM_OWNERS) counts under the known user's, so an exposure the
edge served under the anonymous id and the click the worker applied to the known user meet
in one pair. Exposures counted before the merge stay with the anonymous tag.
"""

from __future__ import annotations

# KEYS[1]: the once-marker; KEYS[2]: the owners hash; then per change: users of the step,
# users of "all", totals of the step, totals of "all". ARGV: use the marker (1/0), TTL,
# marker TTL; then per change: user tag, placement, exposures added, clicks added,
# conversions added. Returns one character a change: "1" when it was the user's first
# exposure in the step (over all placements). With the marker set already, returns what it
# holds.
APPLY = """
local use_marker = ARGV[1] == '1'
if use_marker then
  local done = redis.call('GET', KEYS[1])
  if done then return done end
end
local owner_of = {}
local function person(tag)
  local owner = owner_of[tag]
  if owner == nil then
    owner = redis.call('HGET', KEYS[2], tag) or tag
    owner_of[tag] = owner
  end
  return owner
end
local sums, order, touched, firsts = {}, {}, {}, {}
local function sums_of(key)
  local t = sums[key]
  if not t then t = {}; sums[key] = t; order[#order + 1] = key end
  return t
end
local function parse(v)
  local user = {all = {0, 0, 0}, names = {}, by = {}}
  if not v then return user end
  local x, y, z = string.match(v, '^(%d+),(%d+),?(%d*)')
  if x then user.all = {tonumber(x), tonumber(y), tonumber(z) or 0} end
  for name, px, py, pz in string.gmatch(v, ';([^=;]+)=(%d+),(%d+),(%d+)') do
    if not user.by[name] then user.names[#user.names + 1] = name end
    user.by[name] = {tonumber(px), tonumber(py), tonumber(pz)}
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
local names = {}
local function named(prefix)
  local n = names[prefix]
  if not n then
    n = {}
    for j, field in ipairs({'users', 'exposures', 'exposures_squared', 'clicks',
                            'clicks_squared', 'exposures_times_clicks', 'conversions',
                            'conversions_squared', 'exposures_times_conversions'}) do
      n[j] = prefix .. field
    end
    names[prefix] = n
  end
  return n
end
local function moved(t, prefix, c, dx, dy, dz)
  local x, y, z = c[1], c[2], c[3]
  local x1, y1, z1 = x + dx, y, z
  if x1 > 0 then y1 = y + dy; z1 = z + dz end
  if x1 == x and y1 == y and z1 == z then return c, false end
  local n = named(prefix)
  if x == 0 and x1 > 0 then t[n[1]] = (t[n[1]] or 0) + 1 end
  if x1 ~= x then
    t[n[2]] = (t[n[2]] or 0) + x1 - x
    t[n[3]] = (t[n[3]] or 0) + x1 * x1 - x * x
  end
  if y1 ~= y or x1 ~= x then
    t[n[4]] = (t[n[4]] or 0) + y1 - y
    t[n[5]] = (t[n[5]] or 0) + y1 * y1 - y * y
    t[n[6]] = (t[n[6]] or 0) + x1 * y1 - x * y
  end
  if z1 ~= z or x1 ~= x then
    t[n[7]] = (t[n[7]] or 0) + z1 - z
    t[n[8]] = (t[n[8]] or 0) + z1 * z1 - z * z
    t[n[9]] = (t[n[9]] or 0) + x1 * z1 - x * z
  end
  return {x1, y1, z1}, true
end
-- Each user's counts are read once and written once per call, however many changes name
-- them (one per placement): `users` caches them, `dirty` lists what to write back.
local users, dirty = {}, {}
local function user_of(ukey, tag)
  local id = ukey .. '|' .. tag
  local user = users[id]
  if not user then
    user = parse(redis.call('HGET', ukey, tag))
    user.ukey, user.tag = ukey, tag
    users[id] = user
  end
  return user
end
local function apply(ukey, tkey, tag, placement, dx, dy, dz)
  local user = user_of(ukey, tag)
  local before = user.all[1]
  local t = sums_of(tkey)
  local all, all_moved = moved(t, '', user.all, dx, dy, dz)
  local here, here_moved = moved(t, placement .. ':', user.by[placement] or {0, 0, 0},
                                 dx, dy, dz)
  if not all_moved and not here_moved then return before end
  user.all = all
  if here_moved then
    if not user.by[placement] then user.names[#user.names + 1] = placement end
    user.by[placement] = here
  end
  if not user.dirty then
    user.dirty = true
    dirty[#dirty + 1] = user
  end
  touched[ukey] = true
  touched[tkey] = true
  return before
end
for i = 0, (#KEYS - 2) / 4 - 1 do
  local k, a = 3 + 4 * i, 4 + 5 * i
  local tag, placement = person(ARGV[a]), ARGV[a + 1]
  local dx, dy, dz = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local before = apply(KEYS[k], KEYS[k + 2], tag, placement, dx, dy, dz)
  apply(KEYS[k + 1], KEYS[k + 3], tag, placement, dx, dy, dz)
  if dx > 0 and before == 0 then firsts[#firsts + 1] = '1' else firsts[#firsts + 1] = '0' end
end
for _, user in ipairs(dirty) do redis.call('HSET', user.ukey, user.tag, dump(user)) end
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
