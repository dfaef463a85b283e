"""Cross-cutting governance: privacy now; audit trail, access and model registry later."""
