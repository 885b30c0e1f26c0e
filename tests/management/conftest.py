from tests.management.kit import served_factory  # noqa: F401
