"""Run folders: trial records, the folder of a run, its plots, and recovery after a crash."""
