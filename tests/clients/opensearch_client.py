"""Drives a snapkeep node with the OpenSearch Python client (opensearch-py),
a client snapkeep did not write, and checks that each call returns what the
client's users expect. Usage: opensearch_client.py URL REPO_LOCATION TOKEN

Exits non-zero (with the failing assertion) when any call misbehaves; the
Rust test (tests/node_clients.rs) then compares the restored files.
"""
import sys

from opensearchpy import OpenSearch
from opensearchpy.exceptions import NotFoundError

url, location, token = sys.argv[1], sys.argv[2], sys.argv[3]
client = OpenSearch(hosts=[url], headers={"Authorization": f"Bearer {token}"})

def check(cond, what):
    if not cond:
        raise AssertionError(what)

reply = client.snapshot.create_repository(
    repository="backups", body={"type": "fs", "settings": {"location": location}}
)
check(reply == {"acknowledged": True}, f"create_repository: {reply}")
repos = client.snapshot.get_repository(repository="backups")
check(repos["backups"]["type"] == "fs", f"get_repository: {repos}")
check(repos["backups"]["settings"]["location"] == location, f"get_repository: {repos}")
verified = client.snapshot.verify_repository(repository="backups")
check("nodes" in verified and len(verified["nodes"]) == 1, f"verify_repository: {verified}")

created = client.snapshot.create(
    repository="backups",
    snapshot="first",
    body={"indices": "logs,users", "include_global_state": False},
    params={"wait_for_completion": "true"},
)
info = created["snapshot"]
check(info["snapshot"] == "first", f"create: {created}")
check(info["state"] == "SUCCESS", f"create: {created}")
check(sorted(info["indices"]) == ["logs", "users"], f"create: {created}")
check(info["shards"]["failed"] == 0, f"create: {created}")

got = client.snapshot.get(repository="backups", snapshot="first")
check([s["snapshot"] for s in got["snapshots"]] == ["first"], f"get: {got}")
check(got["snapshots"][0]["uuid"] == info["uuid"], f"get: {got}")
everything = client.snapshot.get(repository="backups", snapshot="_all")
check(len(everything["snapshots"]) == 1, f"get _all: {everything}")

status = client.snapshot.status(repository="backups", snapshot="first")
snap = status["snapshots"][0]
check(snap["snapshot"] == "first" and snap["state"] == "SUCCESS", f"status: {status}")
check(set(snap["indices"]) == {"logs", "users"}, f"status: {status}")
check(snap["stats"]["total"]["file_count"] > 0, f"status: {status}")

restored = client.snapshot.restore(
    repository="backups",
    snapshot="first",
    body={"indices": "logs", "rename_pattern": "(.+)", "rename_replacement": "restored_$1"},
    params={"wait_for_completion": "true"},
)
check(restored["snapshot"]["indices"] == ["restored_logs"], f"restore: {restored}")
check(restored["snapshot"]["shards"]["failed"] == 0, f"restore: {restored}")

try:
    client.snapshot.get(repository="backups", snapshot="missing")
    check(False, "get of a missing snapshot succeeded")
except NotFoundError as e:
    check(e.error == "snapshot_missing_exception", f"missing: {e.error} {e.info}")

deleted = client.snapshot.delete(repository="backups", snapshot="first")
check(deleted == {"acknowledged": True}, f"delete: {deleted}")
check(client.snapshot.get(repository="backups", snapshot="_all")["snapshots"] == [], "after delete")
print("opensearch-py: every call returned what the client expects")
