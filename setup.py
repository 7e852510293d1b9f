"""The optional C scanner of tapes (``monitor.sources._tapescan``); everything else is in
pyproject.toml. Without a C compiler the build goes on without it and replays use the numpy
scanner, which reads the same tapes the same way, more slowly."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "monitor.sources._tapescan",
            ["monitor/sources/_tapescan.c"],
            optional=True,
            py_limited_api=True,
            extra_compile_args=["-O2", "-ffp-contract=off"],
        )
    ]
)
