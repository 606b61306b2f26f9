"""Small scopes of independent memories: the right memory first.

The first thing a user of a memory layer does is store a few facts with separate ``add`` calls
(no session, no thread) and search them. Each case is one user scope of 2-6 such memories and a
question whose answer is one of them; the default search must put that memory first. The cases
are written for this test (preferences, facts, changed facts, near-duplicates, paraphrased
questions) and are not the small-scope evaluation set (``agentmem eval --dataset small``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agentmem import Memory, Settings
from agentmem.embedders import Embedder

# (memories added one by one, question, index of the memory that answers it)
CASES: list[tuple[list[str], str, int]] = [
    (
        [
            "Alice adopted a golden retriever named Max in March.",
            "Alice works as a nurse in Leeds.",
        ],
        "What pet does Alice have?",
        0,
    ),
    (
        [
            "Alice adopted a golden retriever named Max in March.",
            "Alice works as a nurse in Leeds.",
        ],
        "What is Alice's job?",
        1,
    ),
    (
        ["Bob is allergic to peanuts.", "Bob plays bass in a jazz band on Fridays."],
        "Which foods should Bob avoid?",
        0,
    ),
    (
        ["Bob is allergic to peanuts.", "Bob plays bass in a jazz band on Fridays."],
        "What instrument does Bob play?",
        1,
    ),
    (
        [
            "Carla prefers aisle seats on long flights.",
            "Carla's daughter starts school in September.",
            "Carla drinks her coffee black.",
        ],
        "How does Carla take her coffee?",
        2,
    ),
    (
        [
            "Carla prefers aisle seats on long flights.",
            "Carla's daughter starts school in September.",
            "Carla drinks her coffee black.",
        ],
        "Where does Carla like to sit on a plane?",
        0,
    ),
    (
        [
            "Carla prefers aisle seats on long flights.",
            "Carla's daughter starts school in September.",
            "Carla drinks her coffee black.",
        ],
        "When does Carla's child begin school?",
        1,
    ),
    (
        [
            "Dev's birthday is on the 14th of February.",
            "Dev is learning Japanese for a trip to Osaka.",
            "Dev's manager is called Priya.",
        ],
        "Who is Dev's boss?",
        2,
    ),
    (
        [
            "Dev's birthday is on the 14th of February.",
            "Dev is learning Japanese for a trip to Osaka.",
            "Dev's manager is called Priya.",
        ],
        "Which language is Dev studying?",
        1,
    ),
    (
        [
            "Dev's birthday is on the 14th of February.",
            "Dev is learning Japanese for a trip to Osaka.",
            "Dev's manager is called Priya.",
        ],
        "When should I wish Dev a happy birthday?",
        0,
    ),
    (
        [
            "Emma is vegetarian.",
            "Emma runs a marathon every spring.",
            "Emma lives in a flat in Bristol.",
            "Emma's favourite author is Ursula K. Le Guin.",
        ],
        "Does Emma eat meat?",
        0,
    ),
    (
        [
            "Emma is vegetarian.",
            "Emma runs a marathon every spring.",
            "Emma lives in a flat in Bristol.",
            "Emma's favourite author is Ursula K. Le Guin.",
        ],
        "Which city is Emma's home in?",
        2,
    ),
    (
        [
            "Emma is vegetarian.",
            "Emma runs a marathon every spring.",
            "Emma lives in a flat in Bristol.",
            "Emma's favourite author is Ursula K. Le Guin.",
        ],
        "What books does Emma enjoy?",
        3,
    ),
    (
        [
            "Emma is vegetarian.",
            "Emma runs a marathon every spring.",
            "Emma lives in a flat in Bristol.",
            "Emma's favourite author is Ursula K. Le Guin.",
        ],
        "What sport does Emma do?",
        1,
    ),
    (
        [
            "Farid drives a blue Volvo estate.",
            "Farid's wife is a architect called Lena.",
            "Farid supports Arsenal.",
        ],
        "What car does Farid have?",
        0,
    ),
    (
        [
            "Farid drives a blue Volvo estate.",
            "Farid's wife is a architect called Lena.",
            "Farid supports Arsenal.",
        ],
        "Which football team does Farid follow?",
        2,
    ),
    (
        [
            "Farid drives a blue Volvo estate.",
            "Farid's wife is a architect called Lena.",
            "Farid supports Arsenal.",
        ],
        "Who is Farid married to?",
        1,
    ),
    (
        [
            "Grace's wifi password is taped under the router.",
            "Grace waters the orchids every Sunday.",
        ],
        "Where can I find the wifi password?",
        0,
    ),
    (
        [
            "Grace's wifi password is taped under the router.",
            "Grace waters the orchids every Sunday.",
        ],
        "How often are the plants watered?",
        1,
    ),
    (
        [
            "Hiro is afraid of flying.",
            "Hiro's cat is called Mochi.",
            "Hiro takes the train to work in Kyoto.",
        ],
        "What is the name of Hiro's cat?",
        1,
    ),
    (
        [
            "Hiro is afraid of flying.",
            "Hiro's cat is called Mochi.",
            "Hiro takes the train to work in Kyoto.",
        ],
        "How does Hiro commute?",
        2,
    ),
    (
        [
            "Hiro is afraid of flying.",
            "Hiro's cat is called Mochi.",
            "Hiro takes the train to work in Kyoto.",
        ],
        "Does Hiro like planes?",
        0,
    ),
    (
        [
            "The user prefers answers in bullet points.",
            "The user is based in the Pacific time zone.",
            "The user writes Python and some Rust.",
        ],
        "Which programming languages does the user know?",
        2,
    ),
    (
        [
            "The user prefers answers in bullet points.",
            "The user is based in the Pacific time zone.",
            "The user writes Python and some Rust.",
        ],
        "How should responses be formatted?",
        0,
    ),
    (
        [
            "The user prefers answers in bullet points.",
            "The user is based in the Pacific time zone.",
            "The user writes Python and some Rust.",
        ],
        "What time zone is the user in?",
        1,
    ),
    (
        [
            "Ines moved from Porto to Berlin in 2021.",
            "Ines is training for her driving test.",
            "Ines has two brothers.",
            "Ines hates coriander.",
            "Ines works night shifts at the hospital.",
        ],
        "How many siblings does Ines have?",
        2,
    ),
    (
        [
            "Ines moved from Porto to Berlin in 2021.",
            "Ines is training for her driving test.",
            "Ines has two brothers.",
            "Ines hates coriander.",
            "Ines works night shifts at the hospital.",
        ],
        "Which herb does Ines dislike?",
        3,
    ),
    (
        [
            "Ines moved from Porto to Berlin in 2021.",
            "Ines is training for her driving test.",
            "Ines has two brothers.",
            "Ines hates coriander.",
            "Ines works night shifts at the hospital.",
        ],
        "Which city did Ines move to?",
        0,
    ),
    (
        [
            "Ines moved from Porto to Berlin in 2021.",
            "Ines is training for her driving test.",
            "Ines has two brothers.",
            "Ines hates coriander.",
            "Ines works night shifts at the hospital.",
        ],
        "When does Ines work?",
        4,
    ),
    (
        [
            "Jonas keeps his spare keys with the neighbour at number 12.",
            "Jonas is saving up for a road bike.",
        ],
        "Who has Jonas's spare keys?",
        0,
    ),
    (
        [
            "Jonas keeps his spare keys with the neighbour at number 12.",
            "Jonas is saving up for a road bike.",
        ],
        "What is Jonas saving money for?",
        1,
    ),
    (
        [
            "Kemi ordered a standing desk last week.",
            "Kemi's dentist appointment is on Thursday at 3pm.",
            "Kemi is reading a book about Roman history.",
        ],
        "When is Kemi seeing the dentist?",
        1,
    ),
    (
        [
            "Kemi ordered a standing desk last week.",
            "Kemi's dentist appointment is on Thursday at 3pm.",
            "Kemi is reading a book about Roman history.",
        ],
        "What furniture did Kemi buy?",
        0,
    ),
    (
        [
            "Luis speaks Spanish, English and a little Portuguese.",
            "Luis's favourite food is ramen.",
            "Luis had knee surgery last year.",
        ],
        "Has Luis had any operations?",
        2,
    ),
    (
        [
            "Luis speaks Spanish, English and a little Portuguese.",
            "Luis's favourite food is ramen.",
            "Luis had knee surgery last year.",
        ],
        "What does Luis like to eat?",
        1,
    ),
    # Changed facts asked about the present: the newer memory first (retrieval.present_recency).
    (
        ["Dev lives in Bristol.", "Dev enjoys bouldering at weekends.", "Dev moved to Glasgow."],
        "Where does Dev live now?",
        2,
    ),
    (
        [
            "Ines drives a red Vespa to work.",
            "Ines has two cats called Pim and Pom.",
            "Ines sold the Vespa and now cycles to work on an e-bike.",
        ],
        "How does Ines get to work these days?",
        2,
    ),
    (
        [
            "Omar's email address is omar@old.example.",
            "Omar is learning Portuguese.",
            "Omar changed his email address to omar@new.example.",
        ],
        "What is Omar's current email address?",
        2,
    ),
]


# Notes that open with "Word:" (a pasted message, a topic label) added on their own are no
# conversation turns: the word is no speaker, and a question naming it must not rank the
# label's notes above the one that answers (retrieval.speaker_prior reads turns only).
GRANNY = [
    "Granny: don't forget to bring the photo albums on Sunday",
    "Granny is allergic to penicillin.",
    "Granny's birthday is on the 2nd of July.",
    "Theo: I'll be at the station at six",
    "Theo wears size 44 running shoes.",
]
PORTO = [
    "Porto: train leaves Lisbon Oriente at 09:39, coach 4",
    "Porto: dinner booked at a tasca near the river for 8 pm",
    "Madrid: the flat has a washing machine",
    "We are staying at the Hotel Infante Sagres in Porto.",
]
LABELLED: list[tuple[list[str], str, int]] = [
    (GRANNY, "What is Granny allergic to?", 1),
    (GRANNY, "When is Granny's birthday?", 2),
    (GRANNY, "What shoe size does Theo wear?", 4),
    (PORTO, "Which hotel are we staying at in Porto?", 3),
]
CASES += LABELLED

# A question about the present ("these days", "now", "still") where only one memory is on its
# topic and newer memories are about other things: the newest-first ranking orders the memories
# of a changed fact, it must not lift the latest unrelated note (here one sharing "go" with the
# question) above a clear dense first place (retrieval.on_topic).
HOBBIES = [
    "I train at the Iron Works gym on Mill Lane.",
    "My dentist appointment is on the 3rd.",
    "My nephew turns ten in August.",
    "The spare key is with the neighbour at number 12.",
    "My passport expires in 2027.",
    "I'd love to go to Tromsø to see the northern lights.",
]
PRESENT_ONE_TOPIC: list[tuple[list[str], str, int]] = [
    (HOBBIES, "Which gym do I go to these days?", 0),
    (HOBBIES, "Where do I go to work out now?", 0),
]
CASES += PRESENT_ONE_TOPIC


# Paraphrased questions in a scope of 14 memories about one person, where BM25 alone ranks
# another memory first (one sharing a word with the question: "bags" / "suitcase ... bag",
# "flyer" / "airline lounge") while the dense channel's first place leads clearly: fused with
# plain RRF ranks, the lexical first place outvoted it; the dense channel fused score-aware
# (retrieval.dense_gap_ranks) keeps it first.
NINA = [
    "Nina reads a chapter of a novel in bed every night.",
    "Nina sleeps badly after late meetings.",
    "Nina works as an architect in Porto.",
    "Nina's dentist is Dr. Alves on Rua Augusta.",
    "Nina brushes her teeth with an electric toothbrush.",
    "Nina lost her luggage on a flight to Rome last spring.",
    "Nina's suitcase is a small blue cabin bag.",
    "Nina collects points with TAP's Miles&Go programme.",
    "Nina's favourite airline lounge is in Lisbon.",
    "Nina's brother fixes her bike when it breaks down.",
    "Nina's bike is a red city bike with a basket.",
    "Nina is allergic to cats.",
    "Nina plays padel with colleagues on Thursdays.",
    "Nina's flat has a balcony facing the river.",
]
# A later memory about the past ("As a student I lived in ...", "Years ago I worked at ...")
# is no newer value of where one lives or works: the present statement stays first.
HISTORY = [
    "I live in Valencia, ten minutes from the beach.",
    "I work at Brightwave as a data analyst.",
    "As a student I lived in Glasgow, in a flat above a chip shop.",
    "Years ago I worked at Northgate Insurance in their call centre.",
]
CASES += [
    (HISTORY, "Where do I live?", 0),
    (HISTORY, "Where do I work?", 1),
]
PARAPHRASES: list[tuple[list[str], str, int]] = [
    (NINA, "What happened to Nina's bags in Italy?", 5),
    (NINA, "Who looks after Nina's dental care?", 3),
    (NINA, "Which frequent flyer scheme does Nina belong to?", 7),
]
CASES += [
    *PARAPHRASES,
    (NINA, "Who repairs Nina's bike?", 9),
    (NINA, "Which sport does Nina play with people from work?", 12),
]


@pytest.fixture(scope="module")
def small_memory(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Memory]:
    """One home holding every case, each in its own user scope, memories added one by one."""
    home: Path = tmp_path_factory.mktemp("small-scopes")
    with Memory(settings=Settings.load(home=home), embedder=embedder) as mem:
        scopes: dict[tuple[str, ...], str] = {}
        for memories, _, _ in CASES:
            key = tuple(memories)
            if key not in scopes:
                scopes[key] = f"user-{len(scopes)}"
                for text in memories:
                    mem.add(text, user_id=scopes[key])
        mem.case_scopes = scopes  # type: ignore[attr-defined]
        yield mem


@pytest.mark.parametrize(
    ("memories", "question", "answer"),
    CASES,
    ids=[f"{i:02d}-{q[:40]}" for i, (_, q, _) in enumerate(CASES)],
)
def test_the_memory_that_answers_comes_first(
    small_memory: Memory, memories: list[str], question: str, answer: int
) -> None:
    user = small_memory.case_scopes[tuple(memories)]  # type: ignore[attr-defined]
    hits = small_memory.search(question, user_id=user, k=len(memories))
    texts = [h.record.text for h in hits]
    assert texts[0] == memories[answer], texts


def test_unrelated_adds_never_tie(small_memory: Memory) -> None:
    # Two unrelated adds are not neighbours: no window channel scores them, so no two of them
    # share a window and tie there.
    user = small_memory.case_scopes[tuple(CASES[0][0])]  # type: ignore[attr-defined]
    hits = small_memory.search("What pet does Alice have?", user_id=user, k=2)
    assert all("window" not in h.channels and "window_bm25" not in h.channels for h in hits)
    assert hits[0].score != hits[1].score


@pytest.mark.parametrize(("memories", "question", "answer"), PARAPHRASES)
def test_bm25_alone_ranks_another_memory_first(
    small_memory: Memory, memories: list[str], question: str, answer: int
) -> None:
    # What the paraphrase cases above guard: the lexical channel alone is wrong on them.
    from agentmem.models import Scope
    from agentmem.retrieval import CHANNELS, build_request

    user = small_memory.case_scopes[tuple(memories)]  # type: ignore[attr-defined]
    request = build_request(small_memory.backends, question, Scope(user_id=user), limit=5)
    first, _ = CHANNELS["bm25"](small_memory.backends, request)[0]
    assert small_memory.get(first).text != memories[answer]


# Dated questions in a scope where some memories have an event time and the one that answers
# may not: the time channel (dense search inside the window) counts a hit by how far its cosine
# trails the whole scope's best, so the one memory dated yesterday is not first for any question
# saying "yesterday" when another memory answers it; where the dated one is the answer ("What did
# I do yesterday evening?", no memory close in cosine) the window still decides.
FRIDAY = datetime(2025, 6, 13, 12, tzinfo=UTC)
DIARY: list[tuple[str, datetime | None]] = [
    ("The electrician said the wiring in the kitchen is unsafe.", None),
    ("Had dinner at Nonna's trattoria with Joe.", datetime(2025, 6, 12, 19, tzinfo=UTC)),
    ("My car insurance renews in October.", None),
    ("Picked up the dry cleaning.", datetime(2025, 6, 10, 9, tzinfo=UTC)),
    ("Bought tickets for the Radiohead concert.", datetime(2025, 6, 12, 10, tzinfo=UTC)),
]
DATED: list[tuple[str, int]] = [
    ("What did the tradesman tell me yesterday about the electrics?", 0),
    ("What did I do yesterday evening?", 1),
    ("Which concert did I get tickets for yesterday?", 4),
]


@pytest.fixture(scope="module")
def diary(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Memory]:
    home: Path = tmp_path_factory.mktemp("diary")
    with Memory(settings=Settings.load(home=home), embedder=embedder) as mem:
        for text, when in DIARY:
            mem.add(text, user_id="diary", event_time=when)
        yield mem


@pytest.mark.parametrize(("question", "answer"), DATED)
def test_a_dated_question_ranks_the_memory_that_answers_first(
    diary: Memory, question: str, answer: int
) -> None:
    hits = diary.search(question, user_id="diary", k=len(DIARY), reference_time=FRIDAY)
    assert hits[0].record.text == DIARY[answer][0], [h.record.text for h in hits]


# A day of the month is a day ("on the 5th" is 5 June, not May, which dateparser reads it as),
# and "last week" / "this week" are calendar weeks, Monday to Sunday: asked on Friday 13 June,
# last week's Monday pottery class is in "last week" and this week's Monday one is not.
CALENDAR: list[tuple[str, datetime]] = [
    ("Went to the pottery class with Lena and threw a bowl.", datetime(2025, 6, 2, 18, tzinfo=UTC)),
    ("Pottery class again, glazing the bowl from before.", datetime(2025, 6, 9, 18, tzinfo=UTC)),
    ("Dentist check-up in the morning, no cavities.", datetime(2025, 6, 5, 9, tzinfo=UTC)),
    ("Gave a talk on sourdough at the library meetup.", datetime(2025, 5, 20, 19, tzinfo=UTC)),
    ("Watched the cup final at the pub with Sam.", datetime(2025, 6, 11, 21, tzinfo=UTC)),
]
CALENDAR_QUESTIONS: list[tuple[str, int]] = [
    ("What did I do at pottery last week?", 0),
    ("What did I do on the 5th?", 2),
]


@pytest.fixture(scope="module")
def calendar(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> Iterator[Memory]:
    home: Path = tmp_path_factory.mktemp("calendar")
    with Memory(settings=Settings.load(home=home), embedder=embedder) as mem:
        for text, when in CALENDAR:
            mem.add(text, user_id="calendar", event_time=when)
        yield mem


@pytest.mark.parametrize(("question", "answer"), CALENDAR_QUESTIONS)
def test_days_of_the_month_and_calendar_weeks_pick_the_right_memory(
    calendar: Memory, question: str, answer: int
) -> None:
    hits = calendar.search(question, user_id="calendar", k=len(CALENDAR), reference_time=FRIDAY)
    assert hits[0].record.text == CALENDAR[answer][0], [h.record.text for h in hits]
