-- Argo CD health check for authedapi.dev/AuthedApi (kstatus conditions written by the
-- operator: Ready, Reconciling, Stalled). Argo CD passes the live object as `obj`.
local hs = {}

-- The condition of type `kind` in the object's status, or nil.
local function condition(status, kind)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

-- A condition's message, else its reason, else `fallback`.
local function explain(c, fallback)
  if c ~= nil and c.message ~= nil and c.message ~= "" then
    return c.message
  end
  if c ~= nil and c.reason ~= nil and c.reason ~= "" then
    return c.reason
  end
  return fallback
end

-- Argo CD's Lua numbers are floats: print a generation as a whole number.
local function whole(n)
  if type(n) == "number" then
    return string.format("%d", n)
  end
  return tostring(n)
end

local generation = nil
if obj.metadata ~= nil then
  generation = obj.metadata.generation
end
local status = obj.status

if status == nil or status.observedGeneration == nil or status.observedGeneration ~= generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to observe generation " .. whole(generation)
  return hs
end

local stalled = condition(status, "Stalled")
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = explain(stalled, "Stalled")
  return hs
end

local ready = condition(status, "Ready")
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = explain(ready, "Ready")
  return hs
end

local reconciling = condition(status, "Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  hs.status = "Progressing"
  hs.message = explain(reconciling, "Reconciling")
  return hs
end

hs.status = "Progressing"
hs.message = explain(ready, "Waiting for the Ready condition")
return hs
