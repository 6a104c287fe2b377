"""cronwright's own migrations: numbered SQL files, shipped as package data."""
