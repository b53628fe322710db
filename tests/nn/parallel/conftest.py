"""The DDP tests' default process group: the shared ``world`` fixture (tests/process_group_fixtures.py), destroyed
after the last test of this package."""

from process_group_fixtures import _clean_up_groups, world  # noqa: F401
