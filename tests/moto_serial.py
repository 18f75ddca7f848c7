"""Start moto's server with one request at a time.

`moto_server` handles requests on threads without isolating transactions, so two concurrent
conditional writes can both pass their conditions - something DynamoDB never allows. Serving
requests one by one restores DynamoDB's serializable semantics for the contract tests.

moto backs up every table a TransactWriteItems touches with a deep copy of the whole table
(once per operation naming it), so that a cancelled transaction can be rolled back. A write
then costs time in proportion to everything stored in its tables, and the suite slowed down as
its tables filled (a profile of the emulator during the Rust tests: 56 % of its time in
`deepcopy`). Since requests are served one at a time, the rollback only needs the items the
transaction names: this keeps their previous versions and restores exactly those when moto
cancels the transaction, and skips the table copies.

Usage: python tests/moto_serial.py PORT
"""

import copy
import sys

import moto.dynamodb.models as ddb_models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.server import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import run_simple


class _KeepTables:
    """Stands in for the `copy` module inside moto's DynamoDB models during a transaction:
    a table "copy" is the table itself (nothing to restore wholesale), anything else is
    copied as before."""

    @staticmethod
    def deepcopy(x, memo=None):
        if isinstance(x, Table):
            return x
        return copy.deepcopy(x, memo)


_original_transact = DynamoDBBackend.transact_write_items


def _item_key(backend, op_type, op):
    """The table name and key of one operation of a transaction, or None if moto would refuse
    it before touching anything."""
    table_name = op.get("TableName")
    if not table_name or table_name not in backend.tables:
        return None
    if op_type == "Put":
        table = backend.tables[table_name]
        attrs = op.get("Item", {})
        names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
        if any(n not in attrs for n in names):
            return None
        return table_name, {n: attrs[n] for n in names}
    key = op.get("Key")
    return (table_name, key) if key else None


def _transact_with_item_undo(self, transact_items):
    before = []
    for entry in transact_items:
        if len(entry) != 1:
            continue
        op_type, op = next(iter(entry.items()))
        target = _item_key(self, op_type, op)
        if target is None:
            continue
        table_name, key = target
        current = self.get_item(table_name, key)
        before.append((table_name, key, current.to_json()["Attributes"] if current else None))
    ddb_models.copy = _KeepTables
    try:
        return _original_transact(self, transact_items)
    except Exception:
        # Undo in reverse order, so an item named twice ends as it was before the first.
        for table_name, key, attrs in reversed(before):
            if attrs is None:
                if self.get_item(table_name, key) is not None:
                    self.delete_item(table_name, key)
            else:
                self.put_item(table_name, attrs)
        raise
    finally:
        ddb_models.copy = copy


DynamoDBBackend.transact_write_items = _transact_with_item_undo

if __name__ == "__main__":
    port = int(sys.argv[1])
    app = DomainDispatcherApplication(create_backend_app)
    run_simple("127.0.0.1", port, app, threaded=False)
