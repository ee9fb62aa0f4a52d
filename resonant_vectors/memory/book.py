"""The species' book: every trial row of a species, in Milvus beside the engrams.

Why its own module: a species may fly on several machines, each with its own run folder, and nothing
shared but the memory's server. Each member writes its rows here as well as into its own folder, and
a machine's run folder takes in the others' from here (``runs.shared_rows``), so that ``summary``,
``compare``, ``evaluate`` and ``--keep`` on any machine see every trial. The book knows rows only as
the run folder's columns (a dict each); what they mean is the run folder's business.
"""
from __future__ import annotations

import hashlib
import json
from typing import Callable, Dict, Iterable, List, Optional, Tuple, TypeVar

from pymilvus import DataType, MilvusClient

from resonant_vectors.config import BOOK_SUFFIX, Settings
from resonant_vectors.errors import ResonantVectorsError
from resonant_vectors.memory.milvus.collection import connect, create_table, retried

ROW_LENGTH = 65535             # an entry, as JSON, is at most this long (Milvus's longest VARCHAR; a trial
                               # row is about 300 characters, a settings file about 1,500)
READ_BATCH = 4096              # entries per answer while reading the whole book
FIRST_KEY = 1 - 2 ** 63         # below every key (a file's is at least -2^56; Milvus cannot parse -2^63)
T = TypeVar("T")


class BookReadError(ResonantVectorsError):
    """The species' book could not be read whole."""


class SpeciesBook:
    """Every trial row of one species (``<instance>_book``), keyed by trial number, and the files a
    run folder needs beside them (its settings), keyed by a negative number drawn from their name.

    Why keyed by trial number: every worker numbers its trials in a namespace of its own
    (``memory.seam.WORKER_TRIALS``), so a trial number names one trial across the whole species;
    writing an entry again (an upsert) changes nothing, so members may write what they are unsure of.

    :param settings: the species' settings (its instance names the book).
    :param client: an open client to share.
    """

    def __init__(self, settings: Settings, client: Optional[MilvusClient] = None) -> None:
        self.settings = settings
        self.name = species_book_name(settings.instance_name)
        self.memory_name = settings.instance_name
        self.client = client or connect(settings)

    def exists(self) -> bool:
        return self._request("looking for the species' book", lambda: self.client.has_collection(self.name))

    def memory_id(self) -> Optional[int]:
        """The Milvus id of the memory whose species this is (None: there is no memory). Why: a
        fresh start makes a new memory, with a new id, under the same name; a book or a run folder
        that names another id holds the rows of a run before it."""
        if not self._request("looking for the memory", lambda: self.client.has_collection(self.memory_name)):
            return None
        return int(self._request("reading the memory's description",
                                 lambda: self.client.describe_collection(self.memory_name))["collection_id"])

    def kept_for(self) -> Optional[int]:
        """The memory id the book was made for (None: there is no book)."""
        if not self.exists():
            return None
        described = self._request("reading the species' book", lambda: self.client.describe_collection(self.name))
        return int(described["description"]) if described.get("description", "").isdigit() else None

    def open_for(self, memory_id: int) -> None:
        """Make sure the book is the one of this memory: created if there is none; one made for an
        earlier memory of the instance (started afresh since) is made again, empty."""
        if self.exists():
            if self.kept_for() == memory_id:
                return
            self.drop()
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False, description=str(memory_id))
        schema.add_field("trial", DataType.INT64, is_primary=True)
        schema.add_field("worker", DataType.INT64)
        schema.add_field("row", DataType.VARCHAR, max_length=ROW_LENGTH)
        create_table(self.settings, self.client, self.name, schema, "creating the species' book")

    def drop(self) -> None:
        """Delete the book, if there is one (a fresh start's memory begins a new species)."""
        if self.exists():
            self._request("dropping the species' book", lambda: self.client.drop_collection(self.name))

    def add(self, rows: Iterable[Dict]) -> None:
        """Write rows (each with its ``trial`` and ``worker``); one already there is written again, unchanged."""
        self._upsert([(int(row["trial"]), int(row["worker"]), row) for row in rows])

    def add_files(self, files: Dict[str, str]) -> None:
        """Write files (name -> text); one already there is written again."""
        self._upsert([(_file_key(name), -1, {"name": name, "text": text}) for name, text in files.items()])

    def _upsert(self, entries: List[Tuple[int, int, Dict]]) -> None:
        """Write (key, worker, content) entries, the content as JSON."""
        if entries:
            rows = [{"trial": key, "worker": worker, "row": json.dumps(content), "unused": [0.0, 0.0]}
                    for key, worker, content in entries]
            self._request("writing the species' book", lambda: self.client.upsert(self.name, rows))

    def rows(self) -> List[Dict]:
        """Every trial row of the book (none where there is no book), read in batches."""
        return self._entries("trial >= 0")

    def files(self) -> Dict[str, str]:
        """Every file of the book, name -> text (none where there is no book)."""
        return {entry["name"]: entry["text"] for entry in self._entries("trial < 0")}

    def _entries(self, condition: str) -> List[Dict]:
        if not self.exists():
            return []
        return self._request("reading the species' book", lambda: self._read_all(condition))

    def _read_all(self, condition: str) -> List[Dict]:
        """Pages of ``READ_BATCH`` entries, each after the last key of the one before. Why not
        Milvus's query iterator: its first batch may miss entries just written, even at Strong
        consistency. A query with a limit answers in primary-key order (as that iterator relies on);
        each page is checked for it. (A count would not do: Milvus may count an upserted key twice.)"""
        found, last = [], FIRST_KEY
        while True:
            page = self._query(f"({condition}) and trial > {last}", ["trial", "row"], limit=READ_BATCH)
            keys = [entry["trial"] for entry in page]
            if keys != sorted(keys) or (keys and keys[0] <= last):
                raise BookReadError(f"the species' book {self.name} was not answered in key order, so it cannot "
                                    "be read whole. Nothing was changed; please report it.")
            found.extend(json.loads(entry["row"]) for entry in page)
            if len(page) < READ_BATCH:
                break
            last = keys[-1]
        return found

    def _query(self, condition: str, fields: list, **limit) -> list:
        return self.client.query(self.name, filter=condition, output_fields=fields, consistency_level="Strong",
                                 **limit)

    def _request(self, what: str, send: Callable[[], T]) -> T:
        return retried(self.settings, what, send)


def _file_key(name: str) -> int:
    """A file's key: negative (trial numbers are not), from a 56-bit digest of its name."""
    return -1 - int.from_bytes(hashlib.blake2b(name.encode(), digest_size=7).digest(), "big")


def species_book_name(instance_name: str) -> str:
    """The book collection of an instance's species."""
    return f"{instance_name}{BOOK_SUFFIX}"
