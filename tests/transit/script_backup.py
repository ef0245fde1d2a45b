"""Differential steps of Transit plaintext backups (`backup/:name`, `restore(/:name)`) and the
`allow_plaintext_backup` flag, with tests/transit/script.py's conventions. A backup is saved per
server and restored into the same server. Requests OpenBao answers with a 500 are not here
(KubeKMS answers 400 with the same text: tests/transit/test_backup.py)."""

from __future__ import annotations

from typing import Final

from differential import SHAPE, Step
from script import HELLO, KEY_READ, S

RESTORED: Final = ("latest_version", "exportable", "allow_plaintext_backup", "type", "imported_key")


def backup_steps() -> list[Step]:
    steps = [
        S("POST", "transit/keys/bk-a", {"exportable": True, "allow_plaintext_backup": True}, loose=KEY_READ),
        S("POST", "transit/keys/bk-a/rotate", {}, loose=KEY_READ),
        S("POST", "transit/encrypt/bk-a", {"plaintext": HELLO}, save={"bk-ct": "data.ciphertext"}),
        S("GET", "transit/backup/bk-a", loose={"backup": SHAPE}, save={"bk-backup": "data.backup"}),
        S("POST", "transit/keys/bk-b", {}, loose=KEY_READ),
        S("POST", "transit/keys/bk-b/config", {"allow_plaintext_backup": True}, loose=KEY_READ),
        S("POST", "transit/keys/bk-b/config", {"allow_plaintext_backup": False}, loose=KEY_READ,
          note="stays allowed"),
        S("POST", "transit/keys/bk-b/config", {"allow_plaintext_backup": "x"}, note="not a bool"),
        S("POST", "transit/restore", {}, note="no backup"),
        S("POST", "transit/restore/bk-c", {"backup": "$bk-backup", "force": "maybe"}),
        S("POST", "transit/restore/bk-c", {"backup": "$bk-backup"}),
        S("POST", "transit/decrypt/bk-c", {"ciphertext": "$bk-ct"}, note="restored material"),
        S("POST", "transit/restore/bk-a", {"backup": "$bk-backup", "force": True}, note="force"),
        S("POST", "transit/decrypt/bk-a", {"ciphertext": "$bk-ct"}, note="replaced by itself"),
    ]
    steps += [S("GET", "transit/keys/bk-c", select=f"data.{field}", note="restored") for field in RESTORED]
    return steps
