"""The LangGraph integration end to end, offline: memory nodes, memory tools scoped by the
graph's config, the prebuilt memory agent (recall -> model <-> tools -> remember ->
experience) and the team (a supervisor over agents sharing a team scope)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import ToolException, tool
from langgraph.graph import START, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.store.memory import InMemoryStore
from langgraph.types import Command, interrupt

from agentmem import InvalidScope, InvalidSettings, Memory, MemoryKind, Settings
from agentmem.embedders import Embedder
from agentmem.experience import Experience
from agentmem_graphs import (
    MEMORY_TOOLS,
    AgentMemStore,
    MemoryState,
    TeamMember,
    create_memory_agent,
    create_team,
    experience,
    recall,
    remember,
    remember_node,
    trajectory,
)


@pytest.fixture(scope="module")
def mem(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Memory]:
    """One Memory for the module (opening one is the slow part); each test has its own users."""
    home = tmp_path_factory.mktemp("lg-graphs")
    with Memory(settings=Settings.load(home=home), embedder=embedder) as m:
        yield m
        # Close would flush every test's live turns into episodes: nobody reads them now.
        backend = m.buffers.ready()
        for thread in backend.threads():
            backend.delete(thread)


@pytest.fixture
def maya() -> str:
    return f"maya-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def ines() -> str:
    return f"ines-{uuid.uuid4().hex[:8]}"


def call(name: str, call_id: str, **args: Any) -> AIMessage:
    return AIMessage("", tool_calls=[{"name": name, "args": args, "id": call_id}])


def scripted(*messages: AIMessage | str) -> GenericFakeChatModel:
    """LangChain's fake chat model answering with these messages, in order."""
    return GenericFakeChatModel(messages=iter(messages))


def recording(answer: Callable[[list[BaseMessage]], AIMessage]) -> tuple[Any, list[str]]:
    """A stand-in model that records the system prompt it was given."""
    prompts: list[str] = []

    def run(messages: list[BaseMessage]) -> AIMessage:
        prompts.append(str(messages[0].content) if isinstance(messages[0], SystemMessage) else "")
        return answer(messages)

    return RunnableLambda(run), prompts


def cfg(**configurable: str) -> dict[str, Any]:
    return {"configurable": configurable}


def node_graph(mem: Memory, *nodes: tuple[str, Any]) -> Any:
    builder = StateGraph(MemoryState)
    previous = START
    for name, node in nodes:
        builder.add_node(name, node)
        builder.add_edge(previous, name)
        previous = name
    return builder.compile(store=AgentMemStore(mem))


class Booking:
    """A tiny world: booking fails until you log in."""

    def __init__(self) -> None:
        self.logged_in = False
        self.calls: list[str] = []

        @tool
        def login() -> str:
            """Log in to the booking service."""
            self.calls.append("login")
            self.logged_in = True
            return "logged in"

        @tool
        def book_table(place: str, people: int) -> str:
            """Book a table."""
            self.calls.append("book_table")
            if not self.logged_in:
                raise ToolException("E_AUTH: not logged in")
            return f"booked {place} for {people} at 19:30"

        self.tools = [login, book_table]


# nodes -----------------------------------------------------------------------------------------


def test_recall_puts_the_context_of_the_latest_user_message_in_state(
    mem: Memory, maya: str, ines: str
) -> None:
    mem.add("Maya's dog is called Pepper", user_id=maya, kind=MemoryKind.SEMANTIC)
    mem.add("Ines' dog is called Rex", user_id=ines, kind=MemoryKind.SEMANTIC)
    graph = node_graph(mem, ("recall", recall))
    state = {
        "messages": [
            HumanMessage("hello"),
            AIMessage("hi"),
            HumanMessage("What is my dog called?"),
        ]
    }
    out = graph.invoke(state, cfg(user_id=maya))
    assert "Pepper" in out["memory_context"] and "Rex" not in out["memory_context"]
    empty = graph.invoke({"messages": [AIMessage("no user yet")]}, cfg(user_id=maya))
    assert empty["memory_context"] == ""


def test_recall_and_the_team_supervisor_cut_a_message_over_the_text_limit(
    mem: Memory, maya: str
) -> None:
    mem.add("Maya's report is due on Friday", user_id=maya, kind=MemoryKind.SEMANTIC)
    pasted = "When is my report due? " + "The quarterly numbers went up. " * 1200
    assert len(pasted) > mem.settings.max_text_chars
    out = node_graph(mem, ("recall", recall)).invoke(
        {"messages": [HumanMessage(pasted)]}, cfg(user_id=maya)
    )
    assert "Friday" in out["memory_context"]
    supervisor = scripted(call("route", "r1", agent="writer"), "Done.")
    prompts: dict[str, list[str]] = {}
    team = create_team(team_members(prompts), mem, supervisor=supervisor, team="report")
    answer = team.invoke({"messages": [HumanMessage(pasted)]}, cfg(user_id=maya, thread_id="t"))
    assert [m.name for m in answer["messages"][1:]] == ["writer", "supervisor"]


def test_nodes_need_a_scope_and_an_agentmem_store(mem: Memory, maya: str) -> None:
    graph = node_graph(mem, ("recall", recall))
    with pytest.raises(InvalidScope, match="user_id"):
        graph.invoke({"messages": [HumanMessage("hi")]}, cfg(thread_id="t"))
    builder = StateGraph(MemoryState)
    builder.add_node("recall", recall)
    builder.add_edge(START, "recall")
    other = builder.compile(store=InMemoryStore())
    with pytest.raises(InvalidSettings, match="AgentMemStore"):
        other.invoke({"messages": [HumanMessage("hi")]}, cfg(user_id=maya))


def test_a_thread_id_that_is_no_scope_id_is_refused_before_any_tool_runs(
    mem: Memory, maya: str
) -> None:
    world = Booking()
    model = scripted(call("login", "c1"), "Logged in.")
    graph = create_memory_agent(model, mem, tools=world.tools)
    with pytest.raises(InvalidScope, match=r"thread_id='maya/monday' contains a path separator"):
        graph.invoke(
            {"messages": [HumanMessage("log in")]}, cfg(user_id=maya, thread_id="maya/monday")
        )
    assert world.calls == []  # refused by recall, before the model and the tools
    assert mem.list(user_id=maya) == []


def test_remember_writes_the_turn_to_the_threads_buffer_or_as_an_episode(
    mem: Memory, maya: str, ines: str
) -> None:
    graph = node_graph(mem, ("remember", remember))
    turn = {"messages": [HumanMessage("I booked Porto for August"), AIMessage("Lovely!")]}
    graph.invoke(turn, cfg(user_id=maya, thread_id="t-1"))
    lines = [t.line() for t in mem.buffer(thread_id="t-1", user_id=maya).messages()]
    assert lines == ["user: I booked Porto for August", "assistant: Lovely!"]
    assert mem.list(user_id=maya) == []  # still live in the buffer, not yet an episode
    graph.invoke(turn, cfg(user_id=ines))  # no thread: one episode at once
    (episode,) = mem.list(user_id=ines)
    assert episode.text == "user: I booked Porto for August\nassistant: Lovely!"


def test_remember_can_extract_facts_from_the_turn(mem: Memory, maya: str) -> None:
    graph = node_graph(mem, ("remember", remember_node(extract=True)))
    message = HumanMessage("I live in Lisbon and I work at Northwind.", name="Maya")
    graph.invoke({"messages": [message, AIMessage("Noted.")]}, cfg(user_id=maya, thread_id="t"))
    facts = [r.text for r in mem.list(user_id=maya, kinds="semantic")]
    assert any("Lisbon" in f for f in facts) and any("Northwind" in f for f in facts)


def test_trajectory_turns_tool_calls_into_steps_and_skips_memory_tools() -> None:
    from langchain_core.messages import ToolMessage

    messages = [
        call("book_table", "c1", place="Nori", people=2),
        ToolMessage("Error: E_AUTH: not logged in", tool_call_id="c1", status="error"),
        call("search_memory", "c2", query="login"),
        ToolMessage("- a memory", tool_call_id="c2"),
        call("login", "c3"),
        ToolMessage("logged in", tool_call_id="c3"),
    ]
    steps = trajectory(messages)
    assert [(s["action"], s["ok"], s["error"]) for s in steps] == [
        ("book_table", False, "E_AUTH: not logged in"),
        ("login", True, None),
    ]
    assert steps[0]["args"] == {"place": "Nori", "people": 2}


def test_experience_records_the_run_and_reports_the_procedures_it_was_shown(
    mem: Memory, maya: str
) -> None:
    from langchain_core.messages import ToolMessage

    graph = node_graph(mem, ("recall", recall), ("experience", experience))
    failed_then_fixed = [
        HumanMessage("Book a table for two at Nori"),
        call("book_table", "c1", place="Nori", people=2),
        ToolMessage("Error: E_AUTH: not logged in", tool_call_id="c1", status="error"),
        call("login", "c2"),
        ToolMessage("logged in", tool_call_id="c2"),
        call("book_table", "c3", place="Nori", people=2),
        ToolMessage("booked", tool_call_id="c3"),
        AIMessage("Booked."),
    ]
    graph.invoke({"messages": failed_then_fixed}, cfg(user_id=maya, thread_id="t-1"))
    (exp,) = mem.list(user_id=maya, kinds="experience")
    assert exp.metadata["outcome"] == "success"
    (rule,) = [p for p in mem.procedures(user_id=maya) if p.type.value == "precondition"]
    assert "call `login` before `book_table`" in rule.text
    # The next run is shown the procedure and reports it as used, with the run's outcome.
    second = [
        HumanMessage("Book a table for four at Sora"),
        call("login", "c4"),
        ToolMessage("logged in", tool_call_id="c4"),
        call("book_table", "c5", place="Sora", people=4),
        ToolMessage("booked", tool_call_id="c5"),
        AIMessage("Booked."),
    ]
    out = graph.invoke({"messages": second}, cfg(user_id=maya, thread_id="t-2"))
    assert rule.id in out["memory_procedures"]
    used = next(p for p in mem.procedures(user_id=maya) if p.id == rule.id)
    assert used.successes == 1
    # What recall showed shares the run's outcome as feedback (learned utility), once.
    assert out["memory_retrieval_id"] is None  # cleared for the next run
    rated = {row.memory_id: row for row in mem.backends.store.rated_utilities(1)}
    assert rule.id in rated and rated[rule.id].utility > 0
    # A graded failure is recorded as such; a chat turn without tools records nothing.
    graded = {"messages": [*second[:3], AIMessage("gave up")], "outcome": "failure"}
    out = graph.invoke(graded, cfg(user_id=maya))
    assert out["outcome"] is None  # cleared for the next run
    chat = {"messages": [HumanMessage("thanks!"), AIMessage("you're welcome")]}
    graph.invoke(chat, cfg(user_id=maya))
    outcomes = sorted(r.metadata["outcome"] for r in mem.list(user_id=maya, kinds="experience"))
    assert outcomes == ["failure", "success", "success"]


def test_experience_cuts_a_task_and_feedback_over_the_text_limit(mem: Memory, maya: str) -> None:
    limit = mem.settings.max_text_chars
    pasted = "Log in and read this report. " + "The numbers went up. " * 1600
    assert len(pasted) > limit
    graph = create_memory_agent(scripted(call("login", "c1"), "Done."), mem, tools=Booking().tools)
    state = {"messages": [HumanMessage(pasted)], "feedback": "Too slow. " * 4000}
    graph.invoke(state, cfg(user_id=maya, thread_id="t"))  # a pasted report must not stop it
    (record,) = mem.list(user_id=maya, kinds="experience")
    exp = Experience.from_record(record)
    assert exp.task == pasted[:limit].strip() and exp.steps[0].action == "login"
    assert exp.feedback == ("Too slow. " * 4000)[:limit]


# tools -----------------------------------------------------------------------------------------


def test_memory_tools_are_scoped_by_the_config_never_by_the_model(
    mem: Memory, maya: str, ines: str
) -> None:
    mem.add("Ines keeps her passport in the blue drawer", user_id=ines)
    model = scripted(
        call("save_memory", "c1", text="Maya prefers window seats", user_id=ines),
        call("search_memory", "c2", query="passport drawer window seats", user_id=ines),
        AIMessage("done"),
    )
    graph = create_memory_agent(model, mem, learn=False)
    out = graph.invoke({"messages": [HumanMessage("remember")]}, cfg(user_id=maya, thread_id="t"))
    saved, searched = (m.content for m in out["messages"] if m.type == "tool")
    assert "Saved" in str(saved)
    assert "window seats" in str(searched) and "passport" not in str(searched)
    (fact,) = mem.list(user_id=maya, kinds="semantic")
    assert fact.text == "Maya prefers window seats" and fact.scope.agent_id is None
    assert mem.list(user_id=ines, kinds="semantic") == []


def test_memory_tools_in_a_plain_tool_node_return_a_refused_argument_to_the_model(
    mem: Memory, maya: str
) -> None:
    graph = node_graph(mem, ("tools", ToolNode(MEMORY_TOOLS)))
    calls = AIMessage(
        "",
        tool_calls=[
            {"name": "search_memory", "args": {"query": "  "}, "id": "c1"},
            {"name": "save_memory", "args": {"text": ""}, "id": "c2"},
            {"name": "search_memory", "args": {"query": "x" * 40_000}, "id": "c3"},
            {"name": "recall_experience", "args": {"task": "\u200b"}, "id": "c4"},
        ],
    )
    out = graph.invoke({"messages": [HumanMessage("hi"), calls]}, cfg(user_id=maya))
    results = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert [m.status for m in results] == ["error"] * 4
    assert [str(m.content).split(" ")[:3] for m in results] == [
        ["Error:", "query", "is"],
        ["Error:", "text", "is"],
        ["Error:", "query", "is"],
        ["Error:", "task", "is"],
    ]
    assert mem.list(user_id=maya) == []
    with pytest.raises(InvalidScope):  # a graph without a scope is the developer's error
        graph.invoke({"messages": [HumanMessage("hi"), calls]}, cfg())


def test_save_memory_stores_once_per_tool_call_when_a_resume_reruns_the_tools(
    mem: Memory, maya: str
) -> None:
    @tool
    def pay(amount: int) -> str:
        """Pay, once a human approves."""
        return "paid" if interrupt({"approve": amount}) == "yes" else "refused"

    both = AIMessage(
        "",
        tool_calls=[
            {"name": "save_memory", "args": {"text": "Maya pays by card"}, "id": "s1"},
            {"name": "pay", "args": {"amount": 30}, "id": "p1"},
        ],
    )
    graph = create_memory_agent(scripted(both, "Paid."), mem, tools=[pay], learn=False)
    config = cfg(user_id=maya, thread_id="pay-1")
    graph.invoke({"messages": [HumanMessage("pay 30 for the table")]}, config)
    out = graph.invoke(Command(resume="yes"), config)  # LangGraph runs the tools node again
    assert out["messages"][-1].content == "Paid."
    assert [r.text for r in mem.list(user_id=maya, kinds="semantic")] == ["Maya pays by card"]


def test_agents_save_privately_or_to_their_team_and_never_read_another_agents_notes(
    mem: Memory, maya: str
) -> None:
    writer = mem.for_agent("writer", user_id=maya, team="report")
    writer.add("Writer's private style notes: short paragraphs")
    model = scripted(
        call("save_memory", "c1", text="Lanes: 142 km (verified)", shared=True),
        call("save_memory", "c2", text="Raw blog claim: 300 km"),
        call("search_memory", "c3", query="style notes paragraphs lanes"),
        AIMessage("done"),
    )
    graph = create_memory_agent(model, mem, learn=False)
    config = cfg(user_id=maya, agent_id="researcher", team="report", thread_id="t")
    out = graph.invoke({"messages": [HumanMessage("research")]}, config)
    searched = str([m.content for m in out["messages"] if m.type == "tool"][-1])
    assert "142 km" in searched and "300 km" in searched and "style" not in searched
    assert [r.text for r in writer.list(shared=True)] == ["Lanes: 142 km (verified)"]
    assert "300 km" not in str([r.text for r in writer.list()])


DEPLOY_STEPS = [
    {"action": "deploy", "ok": False, "error": "E_PRECONDITION: run tests first"},
    {"action": "test", "observation": "ok"},
    {"action": "deploy", "observation": "deployed"},
]


def test_recall_experience_tool_reports_procedures(mem: Memory, maya: str) -> None:
    mem.record_experience("Deploy the api service", DEPLOY_STEPS, "success", user_id=maya)
    model = scripted(
        call("recall_experience", "c1", task="Deploy the web service"), AIMessage("ok")
    )
    graph = create_memory_agent(model, mem, learn=False)
    out = graph.invoke({"messages": [HumanMessage("deploy web")]}, cfg(user_id=maya, thread_id="t"))
    answer = str(next(m.content for m in out["messages"] if m.type == "tool"))
    assert "Procedures:" in answer and "call `test` before `deploy`" in answer
    assert "Past attempts:" in answer and "Deploy the api service -> success" in answer


def test_recall_experience_tool_clamps_k_as_it_searches(mem: Memory, maya: str) -> None:
    mem.record_experience("Deploy the api service", DEPLOY_STEPS, "success", user_id=maya)
    graph = node_graph(mem, ("tools", ToolNode(MEMORY_TOOLS)))
    calls = [
        {"name": "recall_experience", "args": {"task": "Deploy the web service", "k": k}, "id": k}
        for k in ("0", "-1", "1", "99")
    ]
    out = graph.invoke({"messages": [AIMessage("", tool_calls=calls)]}, cfg(user_id=maya))
    shown: dict[str, list[str]] = {}
    for result in (m for m in out["messages"] if isinstance(m, ToolMessage)):
        lines = str(result.content).splitlines()
        assert lines[0] == "Procedures:"
        shown[result.tool_call_id] = lines[1 : lines.index("Past attempts:")]
    assert shown["0"] == shown["-1"] == shown["1"] and len(shown["1"]) == 1  # k < 1 is 1
    assert len(shown["99"]) == 2  # both procedures learned


# prebuilt agent ----------------------------------------------------------------------------------


def test_the_memory_agent_learns_in_one_thread_and_uses_it_in_another(
    mem: Memory, maya: str
) -> None:
    world = Booking()
    mem.add("Maya is vegetarian", user_id=maya, kind=MemoryKind.SEMANTIC)
    model = scripted(
        call("book_table", "c1", place="Nori", people=2),
        call("login", "c2"),
        call("book_table", "c3", place="Nori", people=2),
        "Booked Nori for two at 19:30.",
        "Sora is booked too.",
    )
    graph = create_memory_agent(model, mem, tools=world.tools)
    first = graph.invoke(
        {"messages": [HumanMessage("Book a table for two at Nori")]},
        cfg(user_id=maya, thread_id="monday"),
    )
    assert world.calls == ["book_table", "login", "book_table"]
    assert first["messages"][-1].content == "Booked Nori for two at 19:30."
    assert "Maya is vegetarian" in first["memory_context"]
    rules = [p.text for p in mem.procedures(user_id=maya)]
    assert any("call `login` before `book_table`" in r for r in rules)
    # A new thread: a fresh conversation (checkpointer), the same long-term memory.
    second = graph.invoke(
        {"messages": [HumanMessage("Book a table for four at Sora")]},
        cfg(user_id=maya, thread_id="tuesday"),
    )
    assert [m.type for m in second["messages"]] == ["human", "ai"]
    assert "call `login` before `book_table`" in second["memory_context"]
    # The checkpointer kept Monday's thread; the buffer holds its turns.
    monday = graph.get_state(cfg(user_id=maya, thread_id="monday")).values["messages"]
    assert len(monday) == 8
    turns = mem.buffer(thread_id="monday", user_id=maya).messages()
    assert [t.content for t in turns] == [
        "Book a table for two at Nori",
        "Booked Nori for two at 19:30.",
    ]


def test_the_memory_agent_puts_recalled_memory_in_the_models_prompt(mem: Memory, maya: str) -> None:
    mem.add("Maya's sister Ines lives in Porto", user_id=maya, kind=MemoryKind.SEMANTIC)
    model, prompts = recording(lambda messages: AIMessage("In Porto."))
    graph = create_memory_agent(model, mem, prompt="You are Maya's assistant.")
    config = cfg(user_id=maya, thread_id="t")
    out = graph.invoke({"messages": [HumanMessage("Where does my sister live?")]}, config)
    assert prompts[0].startswith("You are Maya's assistant.")
    assert "Ines lives in Porto" in prompts[0]
    assert out["messages"][-1].content == "In Porto."
    assert asyncio.run(graph.ainvoke({"messages": [HumanMessage("And Ines?")]}, config))
    assert len(graph.get_state(config).values["messages"]) == 4


# team --------------------------------------------------------------------------------------------


def team_members(prompts: dict[str, list[str]]) -> dict[str, TeamMember]:
    def member(name: str, answer: str, description: str) -> TeamMember:
        model, seen = recording(lambda messages: AIMessage(answer))
        prompts[name] = seen
        return TeamMember(model=model, description=description)

    return {
        "researcher": member("researcher", "Verified: 142 km of lanes.", "finds facts"),
        "writer": member("writer", "Draft: the city has 142 km of lanes.", "writes"),
    }


def test_a_team_runs_each_agent_in_turn_and_shares_answers(mem: Memory, maya: str) -> None:
    mem.for_agent("writer", user_id=maya, team="report").add("Writer's secret style guide")
    prompts: dict[str, list[str]] = {}
    graph = create_team(team_members(prompts), mem, team="report")
    config = cfg(user_id=maya, thread_id="t-1")
    out = graph.invoke({"messages": [HumanMessage("Write about the lanes and style")]}, config)
    assert [(m.type, m.name) for m in out["messages"]] == [
        ("human", None),
        ("ai", "researcher"),
        ("ai", "writer"),
    ]
    shared = mem.for_agent("writer", user_id=maya, team="report").list(shared=True)
    assert [r.text for r in shared] == [
        "researcher: Verified: 142 km of lanes.",
        "writer: Draft: the city has 142 km of lanes.",
    ]
    assert "secret style" not in prompts["researcher"][0]  # another agent's private memory
    # A later thread: the researcher recalls what the team shared.
    graph.invoke(
        {"messages": [HumanMessage("How many km of lanes?")]}, cfg(user_id=maya, thread_id="t-2")
    )
    assert "Verified: 142 km" in prompts["researcher"][1]
    buffer = mem.for_agent("researcher", user_id=maya, team="report").buffer("t-1")
    assert [t.line() for t in buffer.messages()][-1].startswith("assistant/researcher:")


def test_a_team_shares_an_answer_over_the_text_limit_cut(mem: Memory, maya: str) -> None:
    limit = mem.settings.max_text_chars
    report = "The report. " + "Lanes grew again. " * 2000
    assert len(report) > limit
    graph = create_team({"writer": scripted(report)}, mem, team="long")
    out = graph.invoke(
        {"messages": [HumanMessage("Write it all")]}, cfg(user_id=maya, thread_id="t")
    )
    assert out["messages"][-1].content == report  # the user gets the whole answer
    (shared,) = mem.for_agent("writer", user_id=maya, team="long").list(shared=True)
    assert shared.text == f"writer: {report}"[:limit]


def test_a_team_supervisor_model_routes_with_the_route_tool(mem: Memory, maya: str) -> None:
    supervisor = scripted(
        call("route", "r1", agent="writer"),
        call("route", "r2", agent="researcher"),
        "All done: the report is drafted.",
    )
    prompts: dict[str, list[str]] = {}
    graph = create_team(team_members(prompts), mem, supervisor=supervisor, team="report")
    out = graph.invoke({"messages": [HumanMessage("Draft it")]}, cfg(user_id=maya, thread_id="t"))
    assert [m.name for m in out["messages"][1:]] == ["writer", "researcher", "supervisor"]
    assert out["messages"][-1].content == "All done: the report is drafted."


def test_a_team_supervisor_gets_a_bad_route_back_as_an_error_and_never_leaves_no_answer(
    mem: Memory, maya: str
) -> None:
    script = [
        call("route", "r1", agent=["writer"]),  # not a string: sent back to the supervisor
        call("route", "r2", agent="writer "),  # stray whitespace: the writer
        call("route", "r3", agent={"name": "editor"}),
        call("route", "r4", agent="editor"),  # wrong again after the error: the fallback
    ]
    seen: list[list[BaseMessage]] = []

    def supervise(messages: list[BaseMessage]) -> AIMessage:
        seen.append(messages)
        return script.pop(0)

    prompts: dict[str, list[str]] = {}
    graph = create_team(
        team_members(prompts), mem, supervisor=RunnableLambda(supervise), team="report"
    )
    out = graph.invoke({"messages": [HumanMessage("Draft it")]}, cfg(user_id=maya, thread_id="t"))
    assert [m.name for m in out["messages"][1:]] == ["writer", "supervisor"]
    error = seen[1][-1]
    assert isinstance(error, ToolMessage) and error.status == "error"
    assert error.tool_call_id == "r1" and str(error.content) == (
        "Error: agent must be one agent's name as a string, got ['writer']; call route with one "
        "of: researcher, writer, or answer the user yourself"
    )
    answer = str(out["messages"][-1].content)
    assert "could not hand your request to the team" in answer and not script
    assert "{'name': 'editor'}" in str(seen[3][-1].content)
    # A supervisor function naming no agent (or not a string) finishes the turn.
    for chosen in (["writer"], "editor", " writer"):
        team = create_team(
            team_members(prompts), mem, supervisor=lambda s, c=chosen: c, max_turns=1
        )
        out = team.invoke({"messages": [HumanMessage("Go")]}, cfg(user_id=maya, thread_id="u"))
        assert [m.name for m in out["messages"][1:]] == (["writer"] if chosen == " writer" else [])


def test_a_team_supervisor_function_and_the_turn_limit(mem: Memory, maya: str) -> None:
    chosen: list[Sequence[str]] = []

    def always_writer(state: dict[str, Any]) -> str:
        chosen.append([m.name or m.type for m in state["messages"]])
        return "writer"

    prompts: dict[str, list[str]] = {}
    graph = create_team(
        team_members(prompts), mem, supervisor=always_writer, team="report", max_turns=2
    )
    out = graph.invoke({"messages": [HumanMessage("Go")]}, cfg(user_id=maya, thread_id="t"))
    assert [m.name for m in out["messages"][1:]] == ["writer", "writer"]
    assert len(chosen) == 2 and not prompts["researcher"]
    with pytest.raises(InvalidSettings):
        create_team({"supervisor": scripted("x")}, mem)


@pytest.mark.parametrize(
    ("names", "error"),
    [
        (["writer", "writer "], r"'writer' and 'writer ' are one agent id 'writer'"),
        (["caf\u00e9", "cafe\u0301"], r"are one agent id"),
        (["writer", "a/b"], r"'a/b' is not a valid agent id"),
        (["writer", " team:x"], r"reserved"),
    ],
)
def test_a_team_refuses_agent_names_that_are_no_distinct_agent_ids(
    mem: Memory, names: list[str], error: str
) -> None:
    with pytest.raises(InvalidSettings, match=error):
        create_team({name: scripted("x") for name in names}, mem, team="report")
    with pytest.raises(InvalidSettings, match="not a valid team name"):
        create_team({"writer": scripted("x")}, mem, team="a/b")
