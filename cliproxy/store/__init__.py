"""The shared PostgreSQL store: several cliproxy instances, one set of credentials.

`open_store` checks the database and applies the schema at start (`StoreUnavailable`
otherwise); `SharedStore` then holds the connection pool (`twisted.enterprise.adbapi`
over psycopg2), the token table with its cross-instance refresh lock, and the shared
cooldowns (written on every bench, broadcast with NOTIFY, read on the reactor).

Modules: `settings` (which store), `database` (opening it: `open_store`,
`StoreUnavailable`), `shared` (`SharedStore`), `cooldowns` (`SharedCooldowns`),
`listener` (`NotifyListener`), `transfer` (`cliproxy store import/export`). Only
`settings` is imported without psycopg2 installed.
"""
