"""Shared fixtures: where the repository's test vectors are, raw items for them."""

import os
import pathlib

import pytest

SOURCE_DIR = pathlib.Path(os.environ.get('SPC_SOURCE_DIR',
                                         pathlib.Path(__file__).resolve().parents[2]))
VECTOR_DIR = SOURCE_DIR / 'tests' / 'vectors' / 'spead2'


class RawItem:
    """An item given as its exact wire bytes (what spead2's Item.to_buffer returned)."""

    def __init__(self, id, raw, allow_immediate=True):
        self.id = id
        self.raw = raw
        self._allow = allow_immediate

    def to_buffer(self):
        return self.raw

    def allow_immediate(self):
        return self._allow


@pytest.fixture
def vector_dir():
    return VECTOR_DIR
