"""The Redis adapters, one module a port, and the client and Lua script loading they share."""
