"""Credentials: records from config and auth-dir, the token store, and the pool that picks one."""
