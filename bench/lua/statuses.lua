-- profile.lua with every answer counted by status code (for the overload scenario).
count_statuses = true
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "profile.lua")
