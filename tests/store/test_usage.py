"""Usage records of several instances in one table; cluster totals; retention."""

from __future__ import annotations

import json
import time

import psycopg2
import pytest_twisted
import treq

from cliproxy.store.usage import SharedUsage
from tests.oauth.test_serving_oauth import chat, post
from tests.store.test_shared import MODEL, SECRET, _start, _until, stop_all


def _count(dsn) -> int:
    conn = psycopg2.connect(dsn)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM cliproxy_usage")
        n = int(cur.fetchone()[0])
    conn.close()
    return n


async def _get(instance, path, key=None):
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = await treq.get(instance.url + path, headers=headers)
    return response.code, await response.content()


@pytest_twisted.ensureDeferred
async def test_usage_of_every_instance_lands_in_one_table_and_both_totals_are_shown(
    start_fake, pg_dsn, tmp_path
):
    oauth, claude, instances = _start(start_fake, pg_dsn, tmp_path, time.time() + 3600, n=2)
    try:
        for instance, times in ((instances[0], 3), (instances[1], 2)):
            for _ in range(times):
                code, _ = await post(instance, "/v1/chat/completions", chat(MODEL))
                assert code == 200
        await _until(lambda: _count(pg_dsn) == 5, seconds=5.0)
        code, body = await _get(instances[0], "/v0/management/cluster-usage", SECRET)
        assert code == 200, body
        seen = json.loads(body)
        assert seen["cluster"]["total"]["requests"] == 5
        assert seen["local"]["requests"] == 3
        assert sorted(v["requests"] for v in seen["cluster"]["by_instance"].values()) == [2, 3]
        assert seen["cluster"]["total"]["input_tokens"] > 0
        code, _ = await _get(instances[0], "/v0/management/cluster-usage", "wrong-key")
        assert code == 401
        # /metrics: this instance's own counters and, apart, everyone's
        code, text = await _get(instances[1], "/metrics")
        lines = text.decode().splitlines()
        cluster = [ln for ln in lines if ln.startswith("cliproxy_cluster_requests_total{")]
        assert any('result="success"' in ln and ln.endswith(" 5.0") for ln in cluster), cluster
        local = [ln for ln in lines if ln.startswith("cliproxy_requests_total{")]
        assert sum(float(ln.rsplit(" ", 1)[1]) for ln in local) == 2
    finally:
        await stop_all(instances)


@pytest_twisted.ensureDeferred
async def test_rows_older_than_the_retention_are_deleted(start_fake, pg_dsn, tmp_path):
    oauth, claude, instances = _start(start_fake, pg_dsn, tmp_path, time.time() + 3600, n=1)
    try:
        conn = psycopg2.connect(pg_dsn)
        with conn.cursor() as cur:
            for days in (45, 29):
                cur.execute(
                    "INSERT INTO cliproxy_usage (at, instance, provider, model, credential_id)"
                    " VALUES (now() - make_interval(days => %s), 'old', 'claude', 'm', 'c')",
                    (days,),
                )
        conn.commit()
        conn.close()
        usage = SharedUsage(instances[0].shared)  # store.usage-retention: 30 days (default)
        await usage.prune()
        assert _count(pg_dsn) == 1
    finally:
        await stop_all(instances)
