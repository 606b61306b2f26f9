"""User and agent profiles: a small set of named, typed fields per user (and per agent), built
bottom-up from facts and set by hand, each value with its source facts, validity and history.

>>> mem.profile(user_id="alice").set(location="Berlin")            # doctest: +SKIP
>>> mem.profile(user_id="alice").get().model.location
'Berlin'

- :mod:`~agentmem.profiles.model`: the default :class:`UserProfile` and what reads return.
- :mod:`~agentmem.profiles.build`: which fact feeds which field (rules, or the LLM).
- :mod:`~agentmem.profiles.api`: :class:`Profile`.
- :mod:`~agentmem.profiles.stored`: a profile as stored, without its model (``context()``).
- :mod:`~agentmem.profiles.items`: which fact each item of a list field came from.
- :mod:`~agentmem.profiles.hooks`: the profile following its facts (extraction, a fact
  rewritten, invalidated or deleted, an import).
"""

from __future__ import annotations

from agentmem.profiles.api import Profile, profile_scope
from agentmem.profiles.hooks import observe_applied
from agentmem.profiles.model import FieldValue, ProfileView, UserProfile

__all__ = ["FieldValue", "Profile", "ProfileView", "UserProfile", "observe_applied",
           "profile_scope"]  # fmt: skip
