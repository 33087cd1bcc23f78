"""A package missing at import: ERR_2100."""
import package_that_is_not_installed  # noqa: F401


def init():
    pass


def run(raw_data):
    return raw_data
