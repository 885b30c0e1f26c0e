"""The shared PostgreSQL store: several cliproxy instances, one set of credentials.

`open_store` checks the database, applies the schema and mirrors tokens and config at
start (`StoreUnavailable` otherwise); `SharedStore` then holds the connection pool
(`twisted.enterprise.adbapi` over psycopg2), the cross-instance refresh lock and the one
LISTEN connection, read on the reactor, that every shared part rides on.

Modules: `settings` (which store), `database` (opening it: `open_store`,
`StoreUnavailable`), `_schema` (migrations), `shared` (`SharedStore`), `listener`
(`NotifyListener`), `cooldowns` (`SharedCooldowns`), `tokens` (`SharedTokens`: token
files), `config_doc` (`SharedConfig`: the imported config document), `usage`
(`SharedUsage`, `ClusterUsage`), `attach` (the hook `build_app` calls), `transfer`
(`cliproxy store import/export`). Only `settings` is imported without psycopg2 installed.
"""
