"""``EmbeddedMilvusError``: the embedded server could not be started, secured or reached."""
from resonant_vectors.errors import ResonantVectorsError


class EmbeddedMilvusError(ResonantVectorsError, RuntimeError):
    """The embedded Milvus server could not be started."""
