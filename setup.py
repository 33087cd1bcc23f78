"""The compiled parts, optional: ingestion's fast path (collector/ingest/_cenvelope.c) and the
lookup index's terms (collector/store/_lookup_terms.c, whose fallback is the index's SQL).

`pip install -e .` builds it where a C compiler and Python's headers are present; where they are
not, the build logs why and goes on, and ingestion takes its pure-Python path (the reference,
about twice the CPU per item; collector/ingest/compiled.py). Everything else is in pyproject.toml.
"""

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """Never fails the install over the extension: it is an optimisation."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:  # no compiler at all: setuptools raises before building
            print(f"endpoint-insights: the compiled ingestion path was not built ({error}); using the pure-Python path")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as error:
            print(f"endpoint-insights: the compiled ingestion path was not built ({error}); using the pure-Python path")


setup(
    ext_modules=[Extension(
        "collector.ingest._cenvelope", ["collector/ingest/_cenvelope.c"],
        depends=[f"collector/ingest/_cenvelope_{part}.h" for part in ("float", "ryu", "json", "columns", "exceptions", "arrow")],
        extra_compile_args=["-O2"], optional=True,
    ), Extension(
        "collector.store._lookup_terms", ["collector/store/_lookup_terms.c"],
        extra_compile_args=["-O2"], optional=True,
    )],
    cmdclass={"build_ext": OptionalBuildExt},
)
