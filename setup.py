"""The compiled part of graphdex, graph mode's walk step (graphdex/graph/_walk.c), which pip builds with the compiler
hnswlib needs anyway. Everything else about the package is declared in pyproject.toml."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("graphdex.graph._walk", ["graphdex/graph/_walk.c"], extra_compile_args=["-O2"])])
