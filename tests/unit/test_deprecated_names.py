"""Renamed public names keep working for a while, with a warning that names the new one."""

from __future__ import annotations

import pytest

import agentmem
import agentmem.experience


def test_recall_is_the_old_name_of_experience_advice() -> None:
    for module in (agentmem, agentmem.experience):
        with pytest.warns(DeprecationWarning, match="use ExperienceAdvice"):
            old = module.Recall
        assert old is agentmem.ExperienceAdvice


def test_unknown_names_still_raise_attribute_error() -> None:
    with pytest.raises(AttributeError):
        _ = agentmem.NoSuchName  # type: ignore[attr-defined]
