# -*- test-case-name: tests.store.test_tokens -*-
"""Token files shared by every instance: the table and each instance's auth-dir agree.

Every change to a row (a refresh, a new login, an upload, a delete) is announced with
NOTIFY on `cliproxy_auth` (payload: the file name); each instance then reads the row and
writes (or removes) its own copy of the file, and rescans its auth-dir at once. The other
way, a scan that finds a file added, changed or removed locally (`cliproxy login`, the
management API, a hand edit) writes it into the table and announces it.

`_known` is what the table held when this instance last looked, per file: a local file
that differs from it was changed here; a row that differs from it was changed elsewhere.
A change made here while the database was away (a login, an upload, a removal: never a
refresh, which needs the database's lock) is sent when it is back and wins. Otherwise,
when both changed, the table wins: it holds the newest refresh token, and the one in the
file may already be spent.
"""

from __future__ import annotations

import os
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from cliproxy.credentials.authdir import AuthDir
from cliproxy.credentials.store import AuthFileError, read_auth_file, serialize, write_auth_file
from cliproxy.store.database import parse_record
from cliproxy.store.shared import SharedStore

__all__ = ["CHANNEL", "SharedTokens"]

CHANNEL = "cliproxy_auth"

Record = dict[str, Any]


class SharedTokens:
    """Keeps `authdir` and the `cliproxy_auth` table in step."""

    log = Logger()

    def __init__(self, store: SharedStore, authdir: AuthDir) -> None:
        self.store = store
        self.authdir = authdir
        self._known: dict[str, Record] = {}
        #: changed or removed here while the database was away: sent when it is back
        self._unsent: set[str] = set()
        #: the table has been read once: local changes may be sent from now on
        self._ready = False
        authdir.subscribe(self.local_changed)
        store.listen(CHANNEL, self.heard, self.reconcile)

    # -- the local copies ----------------------------------------------------------------

    def _local(self) -> dict[str, Record]:
        directory = self.authdir.path
        try:
            names = os.listdir(directory)
        except OSError:
            return {}
        out: dict[str, Record] = {}
        for name in names:
            if not name.endswith(".json") or name.startswith("."):
                continue
            try:
                out[name] = read_auth_file(os.path.join(directory, name)).record
            except AuthFileError:
                continue
        return out

    def _write(self, name: str, record: Record) -> None:
        path = os.path.join(self.authdir.path, os.path.basename(name))
        try:
            write_auth_file(path, record)
        except OSError as e:
            self.log.error("store: cannot write {name}: {e}", name=name, e=e)

    def _remove(self, name: str) -> None:
        try:
            os.remove(os.path.join(self.authdir.path, os.path.basename(name)))
        except FileNotFoundError:
            pass
        except OSError as e:
            self.log.error("store: cannot remove {name}: {e}", name=name, e=e)

    # -- the table -----------------------------------------------------------------------

    def _send(self, name: str, record: Record | None) -> None:
        if record is None:
            sql = "DELETE FROM cliproxy_auth WHERE id = %(id)s"
        else:
            sql = (
                "INSERT INTO cliproxy_auth (id, content) VALUES (%(id)s, %(content)s)"
                " ON CONFLICT (id) DO UPDATE SET content = EXCLUDED.content, updated_at = now()"
            )
        sql += "; SELECT pg_notify('" + CHANNEL + "', %(id)s)"
        content = None if record is None else serialize(record).decode()
        d = defer.ensureDeferred(self.store.run(sql, {"id": name, "content": content}))

        def failed(failure: Any) -> None:
            self.log.warn(
                "store: {name} not shared ({e}); sent again when the database is back",
                name=name,
                e=failure.getErrorMessage(),
            )
            self._unsent.add(name)

        d.addCallback(lambda _: self._unsent.discard(name))
        d.addErrback(failed)

    def local_changed(self) -> None:
        """The auth-dir scan found changes: send the ones made here."""
        if not self._ready:
            return
        local = self._local()
        for name, record in local.items():
            if self._known.get(name) != record:
                self.log.info("store: sharing {name}", name=name)
                self._known[name] = record
                self._send(name, record)
        for name in [n for n in self._known if n not in local]:
            self.log.info("store: {name} removed here; removing it everywhere", name=name)
            del self._known[name]
            self._send(name, None)

    def heard(self, name: str) -> None:
        """Some instance changed `name`'s row: bring the local file in line."""
        d = defer.ensureDeferred(
            self.store.query("SELECT content FROM cliproxy_auth WHERE id = %s", (name,))
        )
        d.addCallback(lambda rows: self._apply(name, rows))
        d.addErrback(
            lambda f: self.log.warn(
                "store: {name} not re-read: {e}", name=name, e=f.getErrorMessage()
            )
        )

    def _apply(self, name: str, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            if self._known.pop(name, None) is not None:
                self._remove(name)
                self.authdir.scan()
            return
        record = parse_record(name, rows[0][0])
        if record is None:
            return
        self._known[name] = record
        if self._local().get(name) != record:
            self._write(name, record)
            self.authdir.scan()

    def reconcile(self) -> defer.Deferred[None]:
        """Compare the whole table with the auth-dir (start, and after the database was away)."""
        return defer.ensureDeferred(self._reconcile_now())

    async def _reconcile_now(self) -> None:
        try:
            rows = await self.store.query("SELECT id, content FROM cliproxy_auth")
        except Exception as e:
            self.log.warn("store: token files not compared: {e}", e=e)
            return
        self._reconcile(rows)

    def _reconcile(self, rows: list[tuple[Any, ...]]) -> None:
        table: dict[str, Record] = {}
        broken: set[str] = set()
        for name, content in rows:
            record = parse_record(str(name), content)
            if record is None:
                broken.add(str(name))
            else:
                table[str(name)] = record
        local = self._local()
        changed = False
        for name in list(self._unsent):  # made here while cut off: these win
            mine = local.get(name)
            self._send(name, mine)
            table.pop(name, None)
            if mine is not None:
                self._known[name] = mine
            else:
                self._known.pop(name, None)
        for name, record in table.items():
            mine = local.get(name)
            if mine == record:
                pass
            elif mine is not None and self._known.get(name) == record:
                self._send(name, mine)  # changed only here while the database was away
                record = mine
            else:
                self._write(name, record)
                changed = True
            self._known[name] = record
        for name, mine in local.items():
            if name in table or name in broken or name in self._unsent:
                continue
            if name in self._known:  # removed elsewhere while we were cut off
                del self._known[name]
                self._remove(name)
                changed = True
            else:
                self._known[name] = mine
                self._send(name, mine)
        self._ready = True
        if changed:
            self.authdir.scan()
