"""Conversation history: bounded in turns, age and number of conversations."""

from __future__ import annotations

from locara_wyoming.conversation.history import ConversationStore, Turn


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_history_keeps_the_last_turns_in_order() -> None:
    store = ConversationStore(max_turns=2, ttl_s=60, max_conversations=10)
    conversation = store.get("a")
    for n in range(3):
        conversation.turns.append(Turn(user=f"u{n}", assistant=f"a{n}"))
    messages = store.get("a").messages("system", "u3")
    assert [m["content"] for m in messages] == ["system", "u1", "a1", "u2", "a2", "u3"]


def test_interrupted_turn_is_marked() -> None:
    store = ConversationStore(max_turns=5, ttl_s=60, max_conversations=10)
    store.get("a").turns.append(Turn(user="tell me", assistant="Once upon", interrupted=True))
    assert store.get("a").messages("s", "go on")[2]["content"] == "Once upon…"


def test_conversations_expire_after_ttl() -> None:
    clock = Clock()
    store = ConversationStore(max_turns=5, ttl_s=10, max_conversations=10, clock=clock)
    store.get("a").turns.append(Turn("hi", "hello"))
    clock.now = 9.0
    assert len(store.get("a").turns) == 1  # use refreshes the age
    clock.now = 19.5
    store.get("b")
    assert len(store) == 1
    assert len(store.get("a").turns) == 0


def test_least_recently_used_conversation_is_dropped_over_the_cap() -> None:
    store = ConversationStore(max_turns=5, ttl_s=60, max_conversations=2)
    for name in ("a", "b"):
        store.get(name).turns.append(Turn(name, name))
    store.get("a")
    store.get("c")
    assert len(store) == 2
    assert len(store.get("a").turns) == 1
    assert len(store.get("b").turns) == 0


def test_forget_takes_out_that_turn_and_not_an_equal_one() -> None:
    conversation = ConversationStore(max_turns=5, ttl_s=60, max_conversations=2).get("a")
    asked_twice = [Turn("lights?", "", interrupted=True) for _ in range(2)]
    conversation.turns.extend(asked_twice)
    conversation.forget(asked_twice[1])
    conversation.forget(Turn("never kept", ""))
    assert len(conversation.turns) == 1 and conversation.turns[0] is asked_twice[0]


def test_a_full_history_lets_its_older_half_go_at_once() -> None:
    conversation = ConversationStore(max_turns=4, ttl_s=60, max_conversations=10).get("a")
    starts = []
    for n in range(9):
        conversation.add(Turn(user=f"u{n}", assistant=f"a{n}"))
        starts.append(conversation.messages("system", None)[1]["content"])
    # The prompt's first turn changes once every two turns, not at every turn.
    assert starts == ["u0", "u0", "u0", "u0", "u2", "u2", "u4", "u4", "u6"]
    assert [turn.user for turn in conversation.turns] == ["u6", "u7", "u8"]


def test_an_announcement_is_the_personas_turn_and_its_prompt_lasts_while_it_is_kept() -> None:
    conversation = ConversationStore(max_turns=2, ttl_s=60, max_conversations=10).get("a")
    conversation.add(Turn(user=None, assistant="Heating on?", extra_system_prompt="It is cold."))
    assert conversation.messages("system", "yes") == [
        {"role": "system", "content": "system\n\nIt is cold."},
        {"role": "assistant", "content": "Heating on?"},
        {"role": "user", "content": "yes"},
    ]
    # A media announcement shows no text: only its prompt counts; the latest prompt wins.
    conversation.add(Turn(user=None, assistant="", extra_system_prompt="The door bell rang."))
    assert [m["content"] for m in conversation.messages("system", None)] == [
        "system\n\nThe door bell rang.",
        "Heating on?",
    ]
    conversation.add(Turn(user="who was it", assistant="The postman."))
    conversation.add(Turn(user="thanks", assistant="You are welcome."))
    assert conversation.messages("system", None)[0]["content"] == "system", "gone with its turn"
