"""The batch store in Redis: keys, the record of a batch, and the Lua scripts that change it."""
