"""Maintained profiles of users and agents: typed fields with their source facts, validity and
history, set by hand or revised from facts.

A profile belongs to a user (``Scope(org_id, user_id)``) or, without a user, to an agent
(``Scope(org_id, agent_id)``). Every value a field takes is a stored version
(:mod:`agentmem.stores._notes_sql`): a revision closes the current one (``valid_to``: when the
old value stopped holding, ``superseded_at``: when it was replaced) and adds the new one, so
``history(field)`` shows every value, who set it and from which facts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from functools import partial
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic import ValidationError as PydanticValidationError

from agentmem.backends import Backends
from agentmem.errors import (
    AgentMemError,
    InvalidProfile,
    InvalidScope,
    ProfileSchemaChanged,
    first_message,
)
from agentmem.models import MemoryKind, MemoryRecord, Scope, new_id, utcnow
from agentmem.profiles.build import ask_llm, field_for, owner_names
from agentmem.profiles.items import RULES, item_sources, kept_items
from agentmem.profiles.model import FieldValue, ProfileView, UserProfile
from agentmem.profiles.stored import held_at
from agentmem.profiles.values import check_exact, check_strings, field_adapters, llm_value
from agentmem.stores import NoteStore, RecordQuery, require
from agentmem.stores._notes_sql import ProfileRow
from agentmem.twins import async_twin
from agentmem.validation import check_time

log = logging.getLogger(__name__)


def profile_scope(scope: Scope) -> tuple[Scope, str, str]:
    """(the profile's scope, its key, its owner id) for a memory scope: the user's profile when
    it names a user, else the agent's."""
    if scope.user_id:
        owned = Scope.of(org_id=scope.org_id, user_id=scope.user_id)
        return owned, f"user:{owned}", scope.user_id
    if scope.agent_id:
        owned = Scope.of(org_id=scope.org_id, agent_id=scope.agent_id)
        return owned, f"agent:{owned}", scope.agent_id
    raise InvalidScope("a profile belongs to a user or an agent: pass user_id= or agent_id=")


def _type_name(model: type[BaseModel], name: str) -> str:
    """What a stored version records of its field's type: ``Model.field: annotation``."""
    return f"{model.__name__}.{name}: {_field_type(model, name)}"


def _field_type(model: type[BaseModel], name: str) -> str:
    """The annotation of a field, as text (``str | None``)."""
    return str(model.model_fields[name].annotation).replace("typing.", "")


def _same_type(value_type: str, model: type[BaseModel], name: str) -> bool:
    """Whether a stored version's type is the field's: the annotations compared, not the
    model's class name (a renamed model with the same fields migrates nothing)."""
    return value_type.split(": ", 1)[-1] == _field_type(model, name)


def _epoch(when: datetime | None) -> float | None:
    return when.timestamp() if when is not None else None


def _time(value: float | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value is not None else None


def _field_value(row: ProfileRow) -> FieldValue:
    return FieldValue(
        name=row.field,
        value=row.value,
        sources=list(row.sources),
        actor=row.actor,
        reason=row.reason,
        valid_from=_time(row.valid_from),
        valid_to=_time(row.valid_to),
        recorded_at=datetime.fromtimestamp(row.recorded_at, UTC),
        superseded_at=_time(row.superseded_at),
    )


class Profile:
    """``mem.profile(user_id=...)``: one profile, typed by ``model`` (default
    :class:`~agentmem.profiles.model.UserProfile`)."""

    def __init__(
        self, backends: Backends, scope: Scope, model: type[BaseModel] | None = None
    ) -> None:
        model = model or UserProfile
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise InvalidProfile(f"model must be a pydantic BaseModel class, got {model!r}")
        required = [name for name, f in model.model_fields.items() if f.is_required()]
        if required:  # a profile starts empty: get() could never build the model
            raise InvalidProfile(
                f"profile model {model.__name__} has required fields ({', '.join(required)}); "
                "a profile starts empty, so give every field a default, e.g. "
                f"`{required[0]}: str | None = None`"
            )
        self._backends = backends
        self._call_gate = backends.calls
        self.model = model
        self.scope, self.key, self.owner = profile_scope(scope)
        self._adapters = field_adapters(model)
        if not isinstance(backends.store, NoteStore):
            raise InvalidProfile(
                f"{type(backends.store).__name__} keeps no profiles; use the SQLite or "
                "PostgreSQL store"
            )

    def _notes(self) -> NoteStore:
        return require(self._backends.store, NoteStore, "profiles")

    # reading -------------------------------------------------------------------------------

    def get(self, *, as_of: datetime | str | None = None) -> ProfileView:
        """The current profile, or with ``as_of`` the profile as it stood then (read from
        :meth:`history`, nothing written). Stored values whose type changed but still
        validate are migrated (a new version, actor ``migrate``); stored fields the model no
        longer accepts raise :class:`~agentmem.errors.ProfileSchemaChanged` (nothing is
        dropped)."""
        when = check_time(as_of, what="as_of")
        if when is not None:
            return self._view_at(when)
        rows = self._notes().profile_rows(self.key)
        problems: list[str] = []
        values: dict[str, Any] = {}
        migrated: list[tuple[ProfileRow, Any]] = []
        for row in rows:
            if row.field not in self._adapters:
                problems.append(f"{row.field!r} is not a field of {self.model.__name__}")
                continue
            try:
                value = self._adapters[row.field].validate_python(row.value)
            except PydanticValidationError as exc:
                problems.append(
                    f"{row.field}={row.value!r} is not a {_type_name(self.model, row.field)} "
                    f"({first_message(exc)})"
                )
                continue
            values[row.field] = value
            if not _same_type(row.value_type, self.model, row.field):
                migrated.append((row, value))
        if problems:
            raise ProfileSchemaChanged(
                f"profile {self.key} holds values the model {self.model.__name__} does not "
                f"accept: {'; '.join(problems)}. Nothing was dropped: add the fields back to "
                "the model, or call profile.migrate(rename={'old': 'new'}, drop=['old']) "
                "(their history is kept)"
            )
        if migrated:
            self._write(
                [
                    (row.field, value, list(row.sources), "migrate",
                     f"type {row.value_type} -> {_type_name(self.model, row.field)}",
                     _time(row.valid_from))
                    for row, value in migrated
                ],
                {r.field: r for r in rows},
            )  # fmt: skip
            rows = self._notes().profile_rows(self.key)
        return ProfileView(
            key=self.key,
            model=self._instance(values),
            fields={r.field: _field_value(r) for r in rows if r.field in self._adapters},
        )

    def _view_at(self, when: datetime) -> ProfileView:
        """Per field, the version that held at ``when`` (from its ``valid_from``, or when it
        was recorded if that is unknown, up to its ``valid_to``); where versions overlap, the
        latest recorded. Fields the model no longer has, and values it no longer accepts,
        are left out: this view writes no migration."""
        values: dict[str, Any] = {}

        def accept(row: ProfileRow) -> bool:
            if row.field not in self._adapters:
                return False
            try:
                values[row.field] = self._adapters[row.field].validate_python(row.value)
            except PydanticValidationError:
                return False
            return True

        rows = self._notes().profile_rows(self.key, current_only=False)
        held = held_at(rows, when.timestamp(), accept)
        return ProfileView(
            key=self.key,
            model=self._instance(values),
            fields={name: _field_value(row) for name, row in held.items()},
        )

    def history(self, field: str | None = None) -> list[FieldValue]:
        """Every version of one field (or of every field), oldest first."""
        if field is not None:
            self._check_name(field)
        rows = self._notes().profile_rows(self.key, current_only=False, field=field)
        return [_field_value(r) for r in rows]

    # writing -------------------------------------------------------------------------------

    def set(
        self,
        values: Mapping[str, Any] | None = None,
        /,
        *,
        reason: str | None = None,
        **fields: Any,
    ) -> ProfileView:
        """Set fields by hand (``set(location="Berlin")`` or ``set({"location": ...})``).
        Every value is validated against the model first: an unknown name, a wrong type or
        values the model's own validators refuse together raise
        :class:`~agentmem.errors.InvalidProfile` and nothing is written."""
        if values is not None and not isinstance(values, Mapping):
            raise InvalidProfile(
                f"set() takes a dict of fields or keywords, got {type(values).__name__}; "
                "e.g. set(location='Berlin')"
            )
        if reason is not None and not isinstance(reason, str):
            raise InvalidProfile(f"reason must be a string, got {type(reason).__name__}")
        wanted = {**(dict(values) if values else {}), **fields}
        if not wanted:
            raise InvalidProfile("set() needs at least one field, e.g. set(location='Berlin')")
        checked = {name: self._check(name, value) for name, value in wanted.items()}
        current = {r.field: r for r in self._notes().profile_rows(self.key)}
        kept = {n: r.value for n, r in current.items() if n in self._adapters}
        self._instance({**kept, **checked})  # the model's own validators, before any write
        self._write(
            [(n, v, [], "api", reason or "set by hand", utcnow()) for n, v in checked.items()],
            current,
        )
        return self.get()

    def migrate(
        self, *, rename: Mapping[str, str] | None = None, drop: Sequence[str] = ()
    ) -> ProfileView:
        """Move stored fields to new names (``rename``) or retire them (``drop``: closed,
        kept in history) after the model changed."""
        if rename is not None and not isinstance(rename, Mapping):
            raise InvalidProfile(f"rename is a dict of old to new names, got {rename!r}")
        if isinstance(drop, str) or not isinstance(drop, Sequence):
            raise InvalidProfile(f"drop is a list of field names, got {drop!r}")
        rows = {r.field: r for r in self._notes().profile_rows(self.key)}
        now = utcnow().timestamp()
        changes: list[tuple[str, Any, list[str], str, str, datetime | None]] = []
        closed: list[tuple[str, float, float | None]] = []
        for old, new in (rename or {}).items():
            if old not in rows:
                raise InvalidProfile(f"no stored field {old!r} to rename; stored: {sorted(rows)}")
            value = self._check(new, rows[old].value)
            changes.append((new, value, list(rows[old].sources), "migrate", f"renamed from {old}",
                            _time(rows[old].valid_from)))  # fmt: skip
            closed.append((rows[old].id, now, None))
        for old in drop:
            if old not in rows:
                raise InvalidProfile(f"no stored field {old!r} to drop; stored: {sorted(rows)}")
            closed.append((rows[old].id, now, now))
        self._notes().profile_write([], closed)
        if changes:
            current = {r.field: r for r in self._notes().profile_rows(self.key)}
            self._write(changes, current)
        return self.get()

    def observe(
        self,
        facts: Sequence[MemoryRecord],
        ended: Sequence[MemoryRecord] = (),
        *,
        llm: Any = None,
    ) -> int:
        """Revise the profile from new facts (and facts that stopped holding, ``ended``);
        returns how many fields changed. ``llm`` is an :class:`~agentmem.semantic.llm.LLMClient`
        (None: the rules; an unusable answer falls back to them)."""
        return self._observe(facts, ended, llm=llm, complete=False)

    def refresh(self) -> int:
        """Rebuild from every valid fact of the profile's scope (idempotent); returns how many
        fields changed. A value drawn from facts none of which holds any more is cleared."""
        facts = self._backends.store.query(
            RecordQuery(scope=self.scope, kinds=(MemoryKind.SEMANTIC,), limit=100_000)
        )
        facts.sort(key=lambda f: (f.valid_from or f.created_at, f.created_at))
        return self._observe(facts, (), llm=None, complete=True)

    # async twins: the same signatures, run in a worker thread (see agentmem.twins) ---------

    aget = async_twin(get)
    ahistory = async_twin(history)
    aset = async_twin(set)
    amigrate = async_twin(migrate)
    aobserve = async_twin(observe)
    arefresh = async_twin(refresh)

    def _observe(
        self,
        facts: Sequence[MemoryRecord],
        ended: Sequence[MemoryRecord],
        *,
        llm: Any,
        complete: bool,
    ) -> int:
        rows = {r.field: r for r in self._notes().profile_rows(self.key)}
        pruned = self._pruned(rows, facts, ended, complete=complete)
        base = {**rows, **{c[0]: replace(rows[c[0]], value=c[1], sources=tuple(c[2]))
                           for c in pruned}}  # fmt: skip
        changes = self._from_facts(facts, base, llm)  # new items join what stays
        done = {c[0] for c in changes}
        changes.extend(c for c in pruned if c[0] not in done)
        skip = done | {c[0] for c in pruned}
        changes.extend(self._ended_values(facts, ended, rows, skip, complete=complete))
        self._write(changes, rows)
        past = self._past_values(facts, rows)
        self._notes().profile_write(past, [])
        return len(changes) + len(past)

    def _pruned(
        self,
        rows: dict[str, ProfileRow],
        facts: Sequence[MemoryRecord],
        ended: Sequence[MemoryRecord],
        *,
        complete: bool,
    ) -> list[tuple[str, Any, list[str], str, str, datetime | None]]:
        """List items whose fact no longer gives them, taken out (the other items stay): the
        fact ended, was invalidated, was deleted (``complete``: ``facts`` is every valid fact,
        so one missing from them is gone) or was rewritten (by the rules it now gives another
        item, field or owner). Items set by hand stay. Items not paired with their facts (see
        :mod:`agentmem.profiles.items`) lose only the text of a fact in ``ended``."""
        by_id = {f.id: f for f in facts}
        gone = {f.id: f for f in ended}
        name_row = rows.get("name")
        owners = owner_names(self.owner, name_row.value if name_row else None)

        def keeps(name: str, item: Any, fact_id: str, exact: bool) -> bool:
            fact = by_id.get(fact_id)
            if fact_id in gone or (fact is None and complete):
                return False
            if fact is None:
                return True
            return fact.invalidated_at is None and (
                not exact or self._fed(fact, owners) == (name, item)
            )

        out: list[tuple[str, Any, list[str], str, str, datetime | None]] = []
        for name, row in rows.items():
            if name not in self._adapters or not self._is_list(name):
                continue  # (a field of another model this profile was not read with)
            if item_sources(row) is None:
                texts = {f.text for f in ended if f.id in row.sources}
                ids = sorted({f.id for f in ended if f.id in row.sources})
                if not ids:
                    continue
                items = [v for v in row.value if v not in texts]
                sources = [i for i in row.sources if i not in ids]
            else:
                found = kept_items(row, partial(keeps, name))
                if found is None:
                    continue
                items, sources, ids = found
            ends = [e for i in ids if i in gone and (e := gone[i].valid_to) is not None]
            reason = f"facts ended or changed: {', '.join(ids)}" if ids else "facts changed"
            out.append((name, items, sources, RULES, reason[:500], max(ends, default=None)))
        return out

    def _ended_values(
        self,
        facts: Sequence[MemoryRecord],
        ended: Sequence[MemoryRecord],
        rows: dict[str, ProfileRow],
        skip: Collection[str],
        *,
        complete: bool,
    ) -> list[tuple[str, Any, list[str], str, str, datetime | None]]:
        """Single values drawn from facts that no longer hold them, cleared: a field none of
        whose facts holds its value any more (ended, invalidated, negated or changed; with
        ``complete``, missing from ``facts``, every valid fact). Values set by hand are the
        caller's, and stay. (List items: :meth:`_pruned`.)"""
        by_id = {f.id: f for f in facts}
        ended_ids = {f.id for f in ended}

        def holds(fact_id: str, name: str, value: Any) -> bool:
            fact = by_id.get(fact_id)
            if fact_id in ended_ids or (fact is None and complete):
                return False
            return fact is None or (
                fact.invalidated_at is None and field_for(fact) == (name, value)
            )

        out: list[tuple[str, Any, list[str], str, str, datetime | None]] = []
        for name, row in rows.items():
            if name in skip or not row.actor.startswith("facts:") or row.value is None:
                continue
            if name not in self._adapters or self._is_list(name):
                continue  # a field of another model this profile was not read with
            if any(holds(i, name, row.value) for i in row.sources):
                continue
            try:
                self._adapters[name].validate_python(None)
            except PydanticValidationError:
                continue  # a field that cannot be empty keeps its last value
            reason = f"facts ended: {', '.join(sorted(row.sources))}"
            out.append((name, None, [], "facts:rules", reason[:500], _ended_at(row, ended)))
        return out

    def _past_values(
        self, facts: Sequence[MemoryRecord], rows: dict[str, ProfileRow]
    ) -> list[ProfileRow]:
        """Closed versions for values that held only in the past: a fact that arrived late for
        an earlier period ("moved to Rome in June 2021" told after Berlin, 2023) ends where a
        later value starts (:mod:`agentmem.semantic.decide`), so it is written as a version of
        its single-value field for [its start, its end), recorded and superseded now. Being
        the latest recorded, it is what ``get(as_of=...)`` shows in that period, as search
        does, over the version it revises; the current values stay. Idempotent."""
        now = utcnow()
        late = [
            f for f in facts
            if f.valid_from is not None and f.valid_to is not None and f.valid_to <= now
            and f.invalidated_at is None
        ]  # fmt: skip
        if not late:
            return []
        name_row = rows.get("name")
        owners = owner_names(self.owner, name_row.value if name_row else None)
        known = {
            (r.field, json.dumps(r.value), r.valid_from, r.valid_to)
            for r in self._notes().profile_rows(self.key, current_only=False)
        }
        out: list[ProfileRow] = []
        for fact in late:
            assert fact.valid_from is not None and fact.valid_to is not None
            found = field_for(fact)
            subject = str(fact.metadata.get("subject") or "user").lower()
            if found is None or subject not in owners or found[0] not in self._adapters:
                continue
            name, value = found
            try:
                value = self._adapters[name].dump_python(
                    self._adapters[name].validate_python(value), mode="json"
                )
            except PydanticValidationError:
                continue
            start, end = fact.valid_from.timestamp(), fact.valid_to.timestamp()
            key = (name, json.dumps(value), start, end)
            if self._is_list(name) or key in known:
                continue
            known.add(key)
            out.append(
                ProfileRow(
                    id=new_id(), profile_key=self.key, scope=self.scope, field=name,
                    value=value, value_type=_type_name(self.model, name), sources=(fact.id,),
                    actor="facts:rules", reason=f"from fact {fact.id}, held in the past",
                    valid_from=start, valid_to=end, recorded_at=now.timestamp(),
                    superseded_at=now.timestamp(),
                )
            )  # fmt: skip
        return out

    # helpers -------------------------------------------------------------------------------

    def _instance(self, values: dict[str, Any]) -> BaseModel:
        """The model of these field values; a model whose own validators refuse them (each
        value passed its field's check) raises :class:`InvalidProfile`, not pydantic's error."""
        try:
            return self.model.model_validate(values)
        except PydanticValidationError as exc:
            raise InvalidProfile(
                f"profile {self.key}: the model {self.model.__name__} refuses its stored values "
                f"together ({first_message(exc)}); relax the model's validators, or set() the "
                "fields they need"
            ) from None

    def _check_name(self, name: Any) -> None:
        if not isinstance(name, str) or name not in self._adapters:
            raise InvalidProfile(
                f"unknown profile field {name!r}; {self.model.__name__} has: "
                f"{', '.join(self._adapters)} (declare it in your pydantic model)"
            )

    def _check(self, name: Any, value: Any) -> Any:
        self._check_name(name)
        try:
            checked = self._adapters[name].validate_python(value)
        except PydanticValidationError as exc:
            raise InvalidProfile(
                f"profile field {name!r} expects {_field_type(self.model, name)}"
                f", got {value!r} ({first_message(exc)})"
            ) from None
        check_exact(name, value, checked, _field_type(self.model, name))
        check_strings(name, checked)
        return checked

    def _fed(self, fact: MemoryRecord, owners: Collection[str]) -> tuple[str, Any] | None:
        """The (field, item or value) a valid fact about the owner gives this profile by the
        rules (a list item as the field's type stores it), or None."""
        subject = str(fact.metadata.get("subject") or "user").lower()
        found = field_for(fact)
        if subject not in owners or found is None or fact.invalidated_at is not None:
            return None
        name, value = found
        if name not in self._adapters:
            return None
        if self._is_list(name):  # compared with stored items: as the field stores one
            try:
                adapter = self._adapters[name]
                (value,) = adapter.dump_python(adapter.validate_python([value]), mode="json")
            except (PydanticValidationError, ValueError, TypeError):
                return None
        return name, value

    def _is_list(self, name: str) -> bool:
        try:
            self._adapters[name].validate_python([])
        except PydanticValidationError:
            return False
        return True

    def _from_facts(
        self, facts: Sequence[MemoryRecord], rows: dict[str, ProfileRow], llm: Any
    ) -> list[tuple[str, Any, list[str], str, str, datetime | None]]:
        if llm is not None and facts:
            try:
                return self._from_llm(facts, rows, llm)
            except AgentMemError as exc:
                log.warning("LLM profile update unusable (%s); rules used", exc)
        name_row = rows.get("name")
        owners = owner_names(self.owner, name_row.value if name_row else None)
        values = {n: r.value for n, r in rows.items()}
        sources = {n: list(r.sources) for n, r in rows.items()}
        starts: dict[str, datetime | None] = {}
        changed: dict[str, str] = {}
        limit = self._backends.settings.profile.max_items
        for fact in facts:
            found = self._fed(fact, owners)
            if found is None:
                continue
            name, value = found
            start = fact.valid_from or fact.event_time or fact.created_at
            if name not in changed and self._older_than(name, rows.get(name), start):
                continue  # an older fact does not override what is known since
            if self._is_list(name):
                items = list(values.get(name) or [])
                if value in items:
                    continue
                items = [*items, value][-limit:]
                new_value: Any = items
                new_sources = [*sources.get(name, []), fact.id][-limit:]
            else:
                if values.get(name) == value:
                    continue
                new_value, new_sources = value, [fact.id]
            try:
                new_value = self._adapters[name].validate_python(new_value)
            except PydanticValidationError:
                continue
            values[name], sources[name], starts[name] = new_value, new_sources, start
            changed[name] = f"from fact {fact.id}"
        return [(n, values[n], sources[n], "facts:rules", changed[n], starts[n]) for n in changed]

    def _from_llm(
        self, facts: Sequence[MemoryRecord], rows: dict[str, ProfileRow], llm: Any
    ) -> list[tuple[str, Any, list[str], str, str, datetime | None]]:
        fields = {
            name: {"type": _field_type(self.model, name),
                   "value": rows[name].value if name in rows else None}
            for name in self._adapters
        }  # fmt: skip
        # One change per field: a field the answer names twice takes its last value (two
        # would be written as two current versions of it).
        out: dict[str, tuple[str, Any, list[str], str, str, datetime | None]] = {}
        starts = {f.id: f.valid_from or f.event_time or f.created_at for f in facts}
        for name, value, source_ids, reason in ask_llm(llm, self.owner, fields, facts):
            if name not in self._adapters:
                log.warning("LLM named unknown profile field %r; skipped", name)
                continue
            try:
                checked = self._adapters[name].validate_python(value)
                check_exact(name, value, checked, _field_type(self.model, name))
                checked = llm_value(name, checked, self._backends.settings.profile.max_items)
            except PydanticValidationError:
                log.warning("LLM gave %r for profile field %r, wrong type; skipped", value, name)
                continue
            except InvalidProfile as exc:
                log.warning("LLM gave an unusable value for profile field %r (%s); skipped",
                            name, exc)  # fmt: skip
                continue
            if name in rows and rows[name].value == TypeAdapter(Any).dump_python(checked):
                out.pop(name, None)
                continue
            start = max((starts[i] for i in source_ids if i in starts), default=None)
            if self._older_than(name, rows.get(name), start or max(starts.values())):
                log.warning("LLM value for profile field %r is drawn from facts older than its "
                            "current value; skipped", name)  # fmt: skip
                out.pop(name, None)
                continue
            out[name] = (name, checked, source_ids, f"facts:{llm.name}", reason, start)
        return list(out.values())

    def _older_than(self, name: str, row: ProfileRow | None, start: datetime) -> bool:
        """Whether a fact that started at ``start`` is older than the current value of a
        single-valued field, so does not override it: a value drawn from facts since it
        started, one set by hand since it was set (the rules' revision, for both paths)."""
        if row is None or self._is_list(name):
            return False
        since = row.valid_from if row.actor != "api" else row.recorded_at
        return since is not None and start.timestamp() < since

    def _write(
        self,
        changes: Sequence[tuple[str, Any, list[str], str, str, datetime | None]],
        current: dict[str, ProfileRow],
    ) -> None:
        if not changes:
            return
        now = utcnow()
        rows: list[ProfileRow] = []
        closed: list[tuple[str, float, float | None]] = []
        for name, value, sources, actor, reason, start in changes:
            old = current.get(name)
            if old is not None:
                ends = start.timestamp() if start is not None and actor != "migrate" else None
                closed.append((old.id, now.timestamp(), ends))
            rows.append(
                ProfileRow(
                    id=new_id(),
                    profile_key=self.key,
                    scope=self.scope,
                    field=name,
                    value=self._adapters[name].dump_python(value, mode="json"),
                    value_type=_type_name(self.model, name),
                    sources=tuple(sources),
                    actor=actor,
                    reason=reason[:500],
                    valid_from=_epoch(start),
                    valid_to=None,
                    recorded_at=now.timestamp(),
                )
            )
        self._notes().profile_write(rows, closed)


def _ended_at(row: ProfileRow, ended: Sequence[MemoryRecord]) -> datetime | None:
    """When a value stopped holding: the latest end of its ended facts (None when unknown,
    or when that is before the value started), so ``get(as_of=...)`` shows it until then."""
    ends = [f.valid_to for f in ended if f.id in row.sources and f.valid_to is not None]
    end = max(ends, default=None)
    if end is None or (row.valid_from is not None and end.timestamp() < row.valid_from):
        return None
    return end


__all__ = ["Profile", "profile_scope"]
