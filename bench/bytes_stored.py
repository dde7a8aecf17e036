"""Bytes natter keeps per message, measured on the tables of a running natter-local after a load.

Usage: bytes_stored.py EMULATOR_URL (natter-local prints it: "emulator http://127.0.0.1:PORT").

Scans every table and sizes each item as DynamoDB bills storage: attribute names and values in UTF-8 (numbers
about one byte per two digits, plus one), plus 100 bytes of overhead per item, and the same again for each global
secondary index entry an item has (its keys and projected attributes). Prints, per table, items and bytes, and
per one-on-one message the bytes that stay (Messages, MessageIndex) against what expires within a day (SendClaims,
and the Mailbox rows: acknowledged ones are tombstones kept for a day).
"""
import sys

import boto3

OVERHEAD = 100


def value_size(v):
    (kind, x), = v.items()
    if kind == "S":
        return len(x.encode())
    if kind == "N":
        digits = x.lstrip("-").replace(".", "").lstrip("0") or "0"
        return (len(digits) + 1) // 2 + 1
    if kind == "B":
        return len(x)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind in ("SS", "NS", "BS"):
        return sum(value_size({kind[0]: e}) for e in x)
    if kind == "L":
        return 3 + sum(1 + value_size(e) for e in x)
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + value_size(e) for k, e in x.items())
    raise ValueError(kind)


def item_size(item, names=None):
    return sum(len(k.encode()) + value_size(v) for k, v in item.items() if names is None or k in names)


def main():
    ddb = boto3.client("dynamodb", endpoint_url=sys.argv[1], region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    rows = {}
    for table in ddb.list_tables()["TableNames"]:
        desc = ddb.describe_table(TableName=table)["Table"]
        indexes = []
        for gsi in desc.get("GlobalSecondaryIndexes", []):
            keys = {k["AttributeName"] for k in gsi["KeySchema"]} | {k["AttributeName"] for k in desc["KeySchema"]}
            projection = gsi["Projection"]
            names = None if projection["ProjectionType"] == "ALL" else keys | set(projection.get("NonKeyAttributes", []))
            indexes.append((keys, names))
        count, size = 0, 0
        for page in ddb.get_paginator("scan").paginate(TableName=table):
            for item in page["Items"]:
                count += 1
                size += item_size(item) + OVERHEAD
                for keys, names in indexes:
                    if keys <= item.keys():
                        size += item_size(item, names) + OVERHEAD
        rows[table] = (count, size)
    logical = lambda suffix: next((v for k, v in rows.items() if k.endswith(suffix)), (0, 0))
    print("| table | items | bytes | bytes per item |")
    print("|---|---|---|---|")
    for table, (count, size) in sorted(rows.items()):
        if count:
            print(f"| {table} | {count} | {size} | {size / count:.0f} |")
    messages, message_bytes = logical("MessagesTable")
    _, index_bytes = logical("MessageIndexTable")
    claims, claim_bytes = logical("SendClaimsTable")
    boxed, mailbox_bytes = logical("MailboxTable")
    if messages:
        print(f"\nper message: Messages {message_bytes / messages:.0f} B (with its index entries), "
              f"MessageIndex {index_bytes / messages:.0f} B, kept {(message_bytes + index_bytes) / messages:.0f} B; "
              f"SendClaims {claim_bytes / max(claims, 1):.0f} B and Mailbox {mailbox_bytes / max(boxed, 1):.0f} B "
              f"for a day")


main()
