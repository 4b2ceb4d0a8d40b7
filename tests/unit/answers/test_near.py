"""The near-duplicate key: whitespace, casing, dates and ids do not change the question;
negations, swapped entities, changed numbers and reordered clauses always do."""

from __future__ import annotations

from typing import Any

import pytest

from relay_core.answers.near import canonical_tokens, near_digest
from relay_core.schemas.chat import ChatCompletionRequest
from relay_core.settings import Settings

SETTINGS = Settings()


def key(text: str, **fields: Any) -> str | None:
    body = {"model": "chat", "messages": [{"role": "user", "content": text}], "temperature": 0}
    return near_digest(ChatCompletionRequest.model_validate({**body, **fields}), SETTINGS)


# Near-duplicates: the same question, told apart only by what does not change it.
NEAR: list[tuple[str, str]] = [
    # whitespace
    ("What is the capital of France?", "What  is the capital of\tFrance?"),
    ("Summarize this text:\nThe cat sat.", "Summarize this text: The cat sat."),
    ("  List three primes.", "List three primes.\n\n"),
    ("Translate 'hello' to German.", "Translate 'hello'   to German."),
    ("Explain recursion in one sentence.", "Explain recursion in one sentence. "),
    # casing
    ("what is the capital of france?", "What is the capital of France?"),
    ("EXPLAIN TCP SLOW START.", "Explain TCP slow start."),
    ("Name a Python web framework.", "name a python web framework."),
    ("Is GPT-4o multimodal?", "is gpt-4o multimodal?"),
    ("Who wrote Hamlet?", "WHO WROTE HAMLET?"),
    # punctuation that separates, filler
    ("Please list three primes.", "List three primes"),
    ("Summarize the report, briefly.", "Summarize the report briefly"),
    ("Classify the sentiment: 'great product'", "Classify the sentiment 'great product'!"),
    # dates
    ("Today is 2024-05-01. Summarize the news.", "Today is 2024-06-17. Summarize the news."),
    (
        "Log from 2024-05-01T10:32:05Z: disk full. Cause?",
        "Log from 2025-01-09T23:01:00Z: disk full. Cause?",
    ),
    ("As of 05/01/2024, summarize the ticket.", "As of 12/31/2023, summarize the ticket."),
    ("Meeting on May 1, 2024: write the minutes.", "Meeting on June 3, 2024: write the minutes."),
    (
        "Report dated 1 May 2024. Extract the totals.",
        "Report dated 14 Feb 2023. Extract the totals.",
    ),
    ("Run of 2024-05-01 12:00 failed. Why?", "Run of 2024-05-02 08:30 failed. Why?"),
    ("Date: March 3rd, 2021. Classify the email.", "Date: Dec 25th, 2022. Classify the email."),
    # ids
    ("Request req_8f3a2c9d timed out. Explain.", "Request req_1b7e4f20 timed out. Explain."),
    ("Ticket INV-20391: summarize.", "Ticket INV-88412: summarize."),
    (
        "Trace 3f1c9a6e-9b1d-4c2a-8f3e-1a2b3c4d5e6f shows an error. Explain.",
        "Trace 0a9b8c7d-1e2f-4a3b-9c8d-7e6f5a4b3c2d shows an error. Explain.",
    ),
    (
        "Commit 9f86d081884c7d659a2fea failed CI. Why?",
        "Commit 1a2b3c4d5e6f7a8b9c0d1e failed CI. Why?",
    ),
    ("User usr-00451 cannot log in.", "User usr-98123 cannot log in."),
    (
        "Order ORD2024X991 shipped late: reply politely.",
        "Order ORD2023Z114 shipped late: reply politely.",
    ),
    # several at once
    (
        "Today is 2024-05-01, ticket INV-20391.  PLEASE summarize.",
        "today is 2024-05-02, ticket INV-20392. summarize",
    ),
]

# Adversarial pairs: a different question, however similar it looks.
DIFFERENT: list[tuple[str, str]] = [
    # negations
    ("Is the drug safe for children?", "Is the drug not safe for children?"),
    ("I can go to the party.", "I can't go to the party."),
    ("The test passed. Explain why.", "The test never passed. Explain why."),
    ("Should I accept the offer?", "Should I not accept the offer?"),
    ("It is possible to divide by zero.", "It is impossible to divide by zero."),
    ("Is this legal?", "Is this illegal?"),
    ("List the safe options.", "List the unsafe options."),
    ("The patient has a fever. Diagnose.", "The patient has no fever. Diagnose."),
    ("Summarize the likely causes.", "Summarize the unlikely causes."),
    ("Does the function return a value?", "Doesn't the function return a value?"),
    # swapped entities
    ("Alice paid Bob. Who owes money?", "Bob paid Alice. Who owes money?"),
    ("Translate from English to French: cat", "Translate from French to English: cat"),
    ("What is the capital of France?", "What is the capital of Spain?"),
    ("Compare Python with Java.", "Compare Java with Python."),
    ("Is Paris bigger than Berlin?", "Is Berlin bigger than Paris?"),
    ("Who wrote Hamlet?", "Who wrote Macbeth?"),
    ("Compare gpt-4o and llama-3.", "Compare claude-3 and gemini-15."),
    ("What causes covid-19?", "What causes sars-2?"),
    ("Explain sha256sum.", "Explain sha512sum."),
    ("Is windows2000 supported?", "Is windows2003 supported?"),
    (
        "Compare claude-3-5-sonnet-20241022 with gpt-4o.",
        "Compare claude-3-5-haiku-20241022 with gpt-4o.",
    ),
    ("Convert the file from CSV to JSON.", "Convert the file from JSON to CSV."),
    ("The dog chased the cat. Who ran?", "The cat chased the dog. Who ran?"),
    # changed numbers
    ("What is 17 * 3?", "What is 17 * 4?"),
    ("What is 5 - 3?", "What is 5 + 3?"),
    ("List 3 primes.", "List 4 primes."),
    ("Write a 100-word summary.", "Write a 200-word summary."),
    ("Is 2.5 greater than 2.05?", "Is 2.05 greater than 2.5?"),
    ("Convert 10 km to miles.", "Convert 100 km to miles."),
    ("What was the GDP in 1990?", "What was the GDP in 1991?"),
    ("Split $1,200 among 3 people.", "Split $1,200 among 4 people."),
    ("Give me 5 ideas.", "Give me 50 ideas."),
    ("Is -5 below zero?", "Is 5 below zero?"),
    # reordered clauses
    (
        "First add 2, then multiply by 3. Start from 1.",
        "First multiply by 3, then add 2. Start from 1.",
    ),
    ("If it rains we stay, else we go.", "If it rains we go, else we stay."),
    ("Buy low, sell high.", "Sell low, buy high."),
    ("Sort ascending, then remove duplicates.", "Remove duplicates, then sort ascending."),
    ("The man bit the dog.", "The dog bit the man."),
    ("Encrypt then sign the message.", "Sign then encrypt the message."),
    ("Keep the first line and drop the last.", "Keep the last line and drop the first."),
    ("Read the file before you delete it.", "Delete the file before you read it."),
    ("A is greater than B.", "B is greater than A."),
    ("Is it raining.", "Is it raining?"),
]


@pytest.mark.parametrize(("a", "b"), NEAR)
def test_near_duplicates_share_the_key(a: str, b: str) -> None:
    assert key(a) == key(b), (canonical_tokens(a), canonical_tokens(b))


def test_recall_on_the_near_duplicate_suite() -> None:
    shared = sum(key(a) == key(b) for a, b in NEAR)
    assert shared / len(NEAR) >= 0.8  # the target; every pair above shares it


def test_the_adversarial_suite_gets_zero_hits() -> None:
    hits = [(a, b) for a, b in DIFFERENT if key(a) == key(b)]
    assert hits == []
    assert len(DIFFERENT) == 43


def test_every_other_field_must_match_exactly() -> None:
    text = "What is the capital of France?"
    assert key(text) != key(text, max_tokens=5)
    assert key(text) != key(text, model="other")
    assert key(text) != key(text, response_format={"type": "json_object"})
    two = [{"role": "system", "content": text}, {"role": "user", "content": "x"}]
    assert key("x", messages=two) != key("x")  # the roles and order of messages count


def test_only_plain_text_has_a_near_key() -> None:
    image = [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    assert key("", messages=[{"role": "user", "content": image}]) is None
    parts = [{"type": "text", "text": "What is the capital of France?"}]
    assert key("", messages=[{"role": "user", "content": parts}]) == key(
        "What is the capital of France?"
    )
