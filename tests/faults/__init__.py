"""Fault injection: crafted and damaged checkpoints, kills during saves, file modes, failing DataLoader workers."""
