"""The memory in Milvus: one collection of engrams (``collection``) and its columnar requests (``columns``)."""
