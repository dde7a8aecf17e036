# natter-local's emulator: moto_server with DynamoDB's transactions made isolated and cheap.
#
# 1. Isolation. moto serves requests on threads, and its TransactWriteItems backs up the tables it touches, applies
#    the items and, when a condition fails, puts the backup back: every write other threads made to those tables in
#    between is lost. DynamoDB never does that (a transaction is isolated from other writes to its items). Running
#    every DynamoDB backend operation under one lock makes moto's transactions atomic with respect to all other
#    DynamoDB calls; the GIL serialised them anyway, so this costs next to nothing. SQS (long polls) stays concurrent.
#
# 2. Cost. That backup is a deep copy of the whole table, once per operation in the transaction: the time and memory
#    of every transaction grow with the table, so a long run slows down and its memory grows until the machine swaps
#    (a 30-minute soak took moto to 24 GB). Here the backup is of the items the transaction names instead, and a
#    cancelled transaction puts exactly those back, which is what DynamoDB's all-or-nothing means.
import copy
import functools
import inspect
import sys
import threading
import types

import moto.dynamodb.models as _models
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table

_lock = threading.RLock()


def _deepcopy_except_tables(x, memo=None):
    # moto's whole-table backup becomes the table itself (its rollback then assigns a table to itself); every other
    # deep copy in the module (items in update_item) is a real one.
    return x if isinstance(x, Table) else copy.deepcopy(x, memo)


_models.copy = types.SimpleNamespace(deepcopy=_deepcopy_except_tables)  # the only name moto 5.2.5 uses there

_moto_transact_write_items = DynamoDBBackend.transact_write_items


def _transact_write_items(self, transact_items):
    # The items before: one (table, hash, range, copy or None) per write, in order.
    before = []
    for entry in transact_items:
        for op_type, op in entry.items():
            if op_type == "ConditionCheck" or not isinstance(op, dict):
                continue
            try:
                table = self.get_table(op["TableName"])
                hash_key, range_key = self.get_keys_value(table, op["Item"] if op_type == "Put" else op["Key"])
                current = table.get_item(hash_key, range_key)
            except Exception:
                continue  # an operation moto cannot even locate is refused before it writes anything
            before.append((table, hash_key, range_key, copy.deepcopy(current)))
    try:
        _moto_transact_write_items(self, transact_items)
    except BaseException:
        # Newest first, so an item named twice ends as it was before the first.
        for table, hash_key, range_key, item in reversed(before):
            if item is None:
                table.delete_item(hash_key, range_key)
            elif table.has_range_key:
                table.items[hash_key][range_key] = item
            else:
                table.items[hash_key] = item
        raise


DynamoDBBackend.transact_write_items = _transact_write_items


def _serialised(fn):
    @functools.wraps(fn)
    def run(*args, **kwargs):
        with _lock:
            return fn(*args, **kwargs)

    return run


for _name, _fn in list(vars(DynamoDBBackend).items()):
    if inspect.isfunction(_fn) and not _name.startswith("__"):
        setattr(DynamoDBBackend, _name, _serialised(_fn))

from moto.server import main  # noqa: E402  (after the patch)

sys.exit(main(sys.argv[1:]))
