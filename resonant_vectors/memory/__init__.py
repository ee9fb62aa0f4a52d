"""The memory: the seam every decision reads through (``seam``), and its backends: in process
(``in_process``, ``replica``) and in Milvus (``milvus``, ``store``, with the species' ``ledger``)."""
