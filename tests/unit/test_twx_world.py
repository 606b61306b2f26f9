"""The TextWorldExpress agents' pure parts: commands as actions and arguments, putting a fact
learned on one entity onto another, turns as agentmem steps. No game runs here."""

from __future__ import annotations

import pytest

from benchmarks.twx_world import (
    NOT_VALID,
    Turn,
    parse_command,
    render_command,
    rewarded_commands,
    substitute,
)


@pytest.mark.parametrize(
    ("command", "action", "args"),
    [
        ("put dirty cup in dishwasher", "put in", {"obj": "dirty cup", "target": "dishwasher"}),
        ("open chest of drawers", "open", {"obj": "chest of drawers"}),
        ("open door to south", "open to", {"obj": "door", "target": "south"}),
        ("cook red apple in oven", "cook in", {"obj": "red apple", "target": "oven"}),
        ("inventory", "inventory", {}),
        ("move west", "move", {"obj": "west"}),
    ],
)
def test_commands_round_trip(command: str, action: str, args: dict[str, str]) -> None:
    assert parse_command(command) == (action, args)
    assert render_command(action, args) == command


def test_empty_command_is_refused() -> None:
    with pytest.raises(ValueError, match="empty command"):
        parse_command("  ")


def test_substitute_puts_a_fact_on_another_entity_in_the_object_slot_only() -> None:
    assert substitute("put gray pillow in bed", "gray pillow", "black pillow") == (
        "put black pillow in bed"
    )
    assert substitute("open wardrobe", "gray pillow", "black pillow") == "open wardrobe"


def test_rewarded_commands_are_distinct_and_signed() -> None:
    turns = [
        Turn("take cup", "You take the cup.", 0.25),
        Turn("put cup in sink", "You put the cup in the sink.", -0.25),
        Turn("take cup", "You take the cup.", 0.25),
        Turn("put cup in dishwasher", "You put the cup in the dishwasher.", 0.25),
        Turn("take plate", "You take the plate.", 0.25),
    ]
    assert rewarded_commands(turns, "cup") == [("take cup", 0.25), ("put cup in dishwasher", 0.25)]
    assert rewarded_commands(turns, "cup", sign=-1) == [("put cup in sink", -0.25)]


def test_turns_become_steps_a_goal_check_fails_without_a_move() -> None:
    check = Turn("put cup in dishwasher", NOT_VALID, moved=False).step()
    assert check.failed and check.error == NOT_VALID and check.action == "put in"
    move = Turn("take cup", "You take the cup.", 0.25).step()
    assert not move.failed and "[reward +0.25]" in move.observation
    lost = Turn("eat raw chicken", "You die.", 0.0, failed_game=True).step()
    assert lost.failed
