"""``python -m resonant_vectors.server keep|exec|exec-isolated ...``: the embedded server's keeper and the
helper that executes Milvus (started by ``supervision.EmbeddedMilvus``, not by hand)."""
import sys

from resonant_vectors.server.errors import EmbeddedMilvusError
from resonant_vectors.server.supervision import main

try:
    main(sys.argv[1:])
except EmbeddedMilvusError as failure:
    sys.exit(str(failure))
