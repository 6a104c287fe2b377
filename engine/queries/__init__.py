"""cronwright's own SQL as package data: named statements (``*.sql``, read by
``engine/core/queries.py``) and ``schema.sql``, the schema a fresh ``db migrate`` creates
(``make schema`` writes it; a test keeps it true)."""
