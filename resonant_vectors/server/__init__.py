"""The embedded Milvus server: supervision (the keeper), its private network, the relay, the credential."""
