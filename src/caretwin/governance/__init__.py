"""Cross-cutting governance: pseudonymisation, small-cell suppression, users and roles, the audit trail."""
