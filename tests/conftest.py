"""Shared pytest setup: hypothesis profiles and the tests folder on sys.path."""

import os
import sys

from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))

# CI and `make test` are deterministic (derandomize: the same examples every
# run, so a red CI is reproducible); HYPOTHESIS_PROFILE=explore searches anew.
_common = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                     HealthCheck.filter_too_much])
settings.register_profile("default", derandomize=True, database=None, **_common)
settings.register_profile("explore", derandomize=False, **_common)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
