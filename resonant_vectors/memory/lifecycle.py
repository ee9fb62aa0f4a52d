"""One instance's memory from opening to closing: ``InstanceMemory``, the one handle the trainer, the
species, the run folder and evaluation use.

Why its own module: opening a memory to read it, to resume it and to start it afresh differ in what
each may change (a read never creates; a resume creates only what is missing; a fresh start keeps or
drops the earlier memory, and does so last), and those rules were spread over the trainer, the run
folder, the species and the collection. Here they are one object's: opening changes nothing, and
each change is one method named for what it does.
"""
from __future__ import annotations

import warnings
from typing import Iterator, List, Optional

from resonant_vectors.config import BOOK_SUFFIX, SPECIES_SUFFIX, Settings
from resonant_vectors.errors import EmptyMemoryWarning
from resonant_vectors.memory.book import SpeciesBook
from resonant_vectors.memory.ledger import AliveInLedger, SpeciesLedger, refuse_if_trained_elsewhere
from resonant_vectors.memory.milvus.collection import EngramCollection, release_unused_server
from resonant_vectors.memory.seam import EngramColumns
from resonant_vectors.memory.store import EngramStore, MemoryNotFoundError, consistency_for


class InstanceMemory:
    """The memory of ``settings.instance_name`` in Milvus.

    Opening connects and checks an existing collection's schema (``CollectionMismatchError``), and
    changes nothing. Then exactly one of ``open_kept``, ``open_afresh`` (after ``set_aside`` or
    ``drop``) or, for ``to_read``, nothing more, gives the ``store`` that is searched and written.
    ``close`` gives the process's share of the embedded server back, whether a store was opened or not.

    :param search_backend: who searches the store (``SEARCH_BACKEND`` by default; a species' command,
        which searches nothing, opens it without a replica).
    """

    def __init__(self, settings: Settings, search_backend: Optional[str] = None) -> None:
        self.settings = settings
        self.name = settings.instance_name
        self.search_backend = search_backend
        self.store: Optional[EngramStore] = None
        self._alive_as: Optional[str] = None  # the label a training is alive under in the ledger (to_train)
        self._alive: Optional[AliveInLedger] = None
        try:
            self._collection = EngramCollection(self.name, settings)
        except BaseException:
            release_unused_server(settings)
            raise

    @classmethod
    def to_read(cls, settings: Settings) -> "InstanceMemory":
        """An existing memory, its store open to be read (nothing is dropped or created).

        :raises MemoryNotFoundError: no collection has the instance's name (the message names those there).
        :warns EmptyMemoryWarning: it exists but holds no engrams.
        """
        memory = cls.existing(settings)
        memory.warn_if_empty()
        return memory

    @classmethod
    def existing(cls, settings: Settings) -> "InstanceMemory":
        """An existing memory, its store open as it is (nothing is dropped or created). A species'
        worker opens its species' memory so, without ``to_read``'s warning: a species starts empty.

        :raises MemoryNotFoundError: no collection has the instance's name (the message names those there).
        """
        memory = cls(settings)
        if not memory.exists:
            instances = ", ".join(memory.instance_names()) or "none yet"
            memory.close()
            where = settings.milvus_uri or f"the embedded server in {settings.milvus_data_dir}"
            raise MemoryNotFoundError(
                f"no memory named {settings.instance_name!r} on {where}, and reading one never creates it. "
                f"Instances there: {instances}. Check --instance, or train it first: "
                f"python main.py --instance {settings.instance_name}")
        memory.open_kept()
        return memory

    def warn_if_empty(self) -> None:
        """A memory that exists but holds nothing is read without complaint by Milvus, and every
        decision from it is a guess: say so once, with what to do."""
        if self.count() == 0:
            warnings.warn(EmptyMemoryWarning(
                f"the memory {self.name!r} holds no engrams, so every decision read from it is a guess. "
                f"Train it first: python main.py --instance {self.name} --trials 100"), stacklevel=3)

    @classmethod
    def to_train(cls, settings: Settings, search_backend: Optional[str] = None,
                 alive_as: Optional[str] = None) -> "InstanceMemory":
        """A memory about to be trained: refused while another process trains it, on this machine or
        another (it is alive in the instance's ledger).

        :param alive_as: from just before its first change until it closes, this training is alive
            in the ledger under this label (``ledger.ONE_PROCESS``), so that a start elsewhere is
            refused; None: it is not (a species' command says so itself, ``drop`` is no training).
        :raises CollectionInUseError: another process is alive in the instance's ledger.
        """
        memory = cls(settings, search_backend)
        try:
            refuse_if_trained_elsewhere(settings, client=memory._collection.client)
        except BaseException:
            memory.close()
            raise
        memory._alive_as = alive_as
        return memory

    # --- what it holds ---
    @property
    def exists(self) -> bool:
        return self._collection.exists

    @property
    def writer(self) -> int:
        """This process's stamp on the engrams it writes (a run folder notes each worker's)."""
        return self._collection.writer

    def count(self) -> int:
        """How many engrams the memory holds (0 where it does not exist yet), whether loaded or not."""
        return self._collection.count_held() if self.exists else 0

    def written_by(self, writer: int) -> Iterator[EngramColumns]:
        """The engrams one writer stored, in pages (how a killed worker's unrecorded trials are found)."""
        return self._collection.pages(f"writer == {writer}", "Strong")

    def instance_names(self) -> List[str]:
        """The memories on this Milvus (species' ledgers and books left out)."""
        return [name for name in self._collection.names_on_server() if not name.endswith((SPECIES_SUFFIX, BOOK_SUFFIX))]

    def is_taken(self, name: str) -> bool:
        """Whether a collection of that name is on this Milvus."""
        return name in self._collection.names_on_server()

    # --- changing it (a fresh start's last step) ---
    def set_aside(self, name: str) -> int:
        """Keep the memory, every engram of it, under another instance name; returns how many engrams.
        The instance's own name is then free for a fresh memory (``open_afresh``)."""
        self._say_alive()
        count = self.count()
        if self.exists:
            self._collection.set_aside_as(name)
            self._collection = EngramCollection(self.name, self.settings, self._collection.client)
        return count

    def drop(self) -> int:
        """Delete the memory and every engram in it, for good; returns how many engrams it held."""
        self._say_alive()
        return self._collection.drop_counting()

    def species_book(self) -> SpeciesBook:
        """The book of the instance's species (``memory.book``; it may not exist), on this memory's client."""
        return SpeciesBook(self.settings, self._collection.client)

    def drop_with_its_species(self) -> int:
        """Delete the memory for good with its species' ledger and book (a species trained it, or a
        kept run was resumed as one); returns how many engrams it held. Why together: a ledger or
        book left behind would speak of a memory that is gone."""
        engrams = self.drop()
        SpeciesLedger(self.settings, self._collection.client).drop()
        self.species_book().drop()
        return engrams

    # --- the store ---
    def open_kept(self) -> EngramStore:
        """The store of the memory as it is (created empty where there is none)."""
        return self._open(reset=False)

    def open_afresh(self) -> EngramStore:
        """The store of an empty memory: what was there is dropped (``set_aside`` first to keep it)."""
        return self._open(reset=True)

    def _open(self, reset: bool) -> EngramStore:
        self._say_alive()
        self.store = EngramStore(self.name, reset=reset, settings=self.settings, collection=self._collection,
                                 consistency=consistency_for(self.settings), search_backend=self.search_backend)
        return self.store

    def flush(self) -> None:
        """Seal what was stored into durable segments (before the server may stop)."""
        if self.store is not None:
            self.store.flush()

    def _say_alive(self) -> None:
        """Before its first change, a training (``to_train``'s ``alive_as``) says in the instance's
        ledger that it is alive, then looks for others once more. Why in this order: of two starts at
        once, on two machines, each wrote its own row before it read the other's, so at least one of
        them sees the other and is refused before it changes anything (Milvus has no conditional write
        to make it exactly one)."""
        if self._alive_as is None or self._alive is not None:
            return
        client = self._collection.client
        ledger = SpeciesLedger(self.settings, client)
        ledger.create()
        self._alive = AliveInLedger(ledger, self._alive_as).__enter__()
        try:
            refuse_if_trained_elsewhere(self.settings, client)
        except BaseException:
            self._leave_ledger()
            raise

    def _leave_ledger(self) -> None:
        if self._alive is not None:
            self._alive.__exit__(None, None, None)
            self._alive = None

    def close(self) -> None:
        """This handle is done: a training leaves the ledger, and the store's share of the embedded
        server is given back (or, where no store was opened, the share the connection took)."""
        self._leave_ledger()
        if self.store is not None:
            self.store.close()
        else:
            release_unused_server(self.settings)
