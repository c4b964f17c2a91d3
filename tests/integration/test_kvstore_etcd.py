"""The store contract (tests/kvstore_contract.py) on the real etcd: what the in-memory store
of the unit tests claims about revisions, compares, transactions, ranges and leases is what
etcd does (tests/unit/test_kvstore.py runs the same checks on the in-memory store)."""

import pytest

from kvstore_contract import CHECKS
from slurmdeploy.kvstore import EtcdStore


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__[len("check_"):])
def test_etcd_keeps_the_store_contract(check, etcd_client, configdb_prefix):
    check(EtcdStore(etcd_client), configdb_prefix)
