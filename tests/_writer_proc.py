"""A writer for the killed-writer test: ``python -m tests._writer_proc DB``.

Forever: in one transaction, add a vendor ``@w-<i>`` and three notes about it; after the commit returns,
print ``i`` (an acknowledgement: the caller may rely on it being durable). The test SIGKILLs it at a
random moment and checks the store.
"""

from __future__ import annotations

import itertools
import sys

from node.records import Records
from node.store import Store


def main(path: str) -> None:
    with Store(path) as store:
        records = Records(store)
        start = store.query_one("SELECT count(*) AS n FROM vendors WHERE handle LIKE '@w-%'")["n"]
        for i in itertools.count(start):
            with store.transaction():
                vendor = records.add_vendor(f"Writer {i}", handle=f"@w-{i}")
                for k in range(3):
                    records.add_note(vendor.id, f"note {k} of writer {i}", tags=["kill-test"])
            print(i, flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
