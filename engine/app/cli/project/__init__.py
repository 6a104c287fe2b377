"""The files `cronwright init` writes into a new project (package data only)."""
