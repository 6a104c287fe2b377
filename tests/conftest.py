import os
import tempfile

from hypothesis import HealthCheck, settings

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.s3",
    "tests.fixtures.wrangler",
    "tests.fixtures.browser",
]

# Fuzz tests (marked `fuzz`) take their example count from the profile: a small budget in
# `make test`, a large one in `make fuzz` (HYPOTHESIS_PROFILE=fuzz). A fuzz test sets no
# max_examples of its own, so that the profile decides.
settings.register_profile(
    "default",
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "fuzz",
    max_examples=5000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

# Compiled templates are cached on disk between processes (engine/sql/sqlcache.py): the
# session gets a fresh cache of its own, so that it neither reads nor fills the user's,
# and every test and the processes it starts run with the cache on.
os.environ["CRONWRIGHT_CACHE_DIR"] = tempfile.mkdtemp(prefix="cronwright-test-cache-")
