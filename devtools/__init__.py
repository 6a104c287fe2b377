"""Developer tooling the tests, the demo and the benchmarks share: a throwaway PostgreSQL
(pgserver.py) and local S3 protocol servers (s3server.py). Not part of the shipped
package: nothing in engine/ imports it, and it never imports tests/."""
