# natter-local's emulator: moto_server with DynamoDB's isolation restored.
#
# moto serves requests on threads, and its TransactWriteItems backs up the tables it touches, applies the items
# and, when a condition fails, puts the backup back: every write other threads made to those tables in between
# is lost. DynamoDB never does that (a transaction is isolated from other writes to its items). Running every
# DynamoDB backend operation under one lock makes moto's transactions atomic with respect to all other DynamoDB
# calls; the GIL serialised them anyway, so this costs next to nothing. SQS (long polls) stays concurrent.
import functools
import inspect
import sys
import threading

from moto.dynamodb.models import DynamoDBBackend

_lock = threading.RLock()


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
