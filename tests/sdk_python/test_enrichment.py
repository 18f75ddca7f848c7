"""Notes, attributes and scoring through the official Python SDK (klozeo==0.1.4)."""

import pytest
from klozeo import (
    Klozeo,
    Lead,
    NotFoundError,
    BadRequestError,
    ScoringRuleInput,
    number_attr,
    text_attr,
)

from conftest import uid


def test_notes_create_list_update_delete(client: Klozeo, create_lead):
    lead_id = create_lead()
    first = client.create_note(lead_id, "first call")
    assert first.id.startswith("note_")
    assert first.content == "first call"
    second = client.create_note(lead_id, "second call")
    notes = client.list_notes(lead_id)
    assert [n.content for n in notes] == ["second call", "first call"]
    edited = client.update_note(first.id, "first call, edited")
    assert edited.content == "first call, edited"
    assert edited.id == first.id
    client.delete_note(second.id)
    assert [n.id for n in client.list_notes(lead_id)] == [first.id]
    with pytest.raises(NotFoundError):
        client.update_note(second.id, "gone")
    with pytest.raises(BadRequestError):
        client.create_note(lead_id, "   ")


def test_notes_of_another_account_are_not_found(client: Klozeo, client2: Klozeo, create_lead):
    lead_id = create_lead()
    note = client.create_note(lead_id, "private")
    with pytest.raises(NotFoundError):
        client2.list_notes(lead_id)
    with pytest.raises(NotFoundError):
        client2.delete_note(note.id)
    assert [n.content for n in client.list_notes(lead_id)] == ["private"]


def test_attributes_create_list_update_delete(client: Klozeo, create_lead):
    lead_id = create_lead()
    created = client.create_attribute(lead_id, text_attr("cuisine", "Italian"))
    assert created.name == "cuisine" and created.value == "Italian"
    client.create_attribute(lead_id, number_attr("seats", 40))
    attrs = {a.name: a for a in client.list_attributes(lead_id)}
    assert set(attrs) == {"cuisine", "seats"}
    assert attrs["seats"].value == 40
    client.update_attribute(lead_id, attrs["cuisine"].id, "Mediterranean")
    client.update_attribute(lead_id, attrs["seats"].id, 55)
    after = {a.name: a for a in client.list_attributes(lead_id)}
    assert after["cuisine"].value == "Mediterranean"
    assert after["cuisine"].id == attrs["cuisine"].id
    assert after["seats"].value == 55
    with pytest.raises(BadRequestError):
        client.update_attribute(lead_id, attrs["seats"].id, "not a number")
    client.delete_attribute(lead_id, attrs["cuisine"].id)
    assert [a.name for a in client.list_attributes(lead_id)] == ["seats"]
    assert [a.name for a in client.get(lead_id).attributes] == ["seats"]


def test_scoring_rules_and_recalculation(client2: Klozeo):
    # Rules change every lead of the account, so this test works on the second account and
    # removes its rules at the end.
    lead_id = client2.create(Lead(name=f"Scored {uid()}", source=f"py-score-{uid()}", rating=4.5)).id
    rule = client2.create_scoring_rule(ScoringRuleInput(name="rating", expression="rating * 10", priority=2))
    try:
        assert rule.id and rule.expression == "rating * 10" and rule.priority == 2
        assert client2.get(lead_id).score == 45.0
        assert client2.recalculate_score(lead_id) == 45.0
        assert client2.get_scoring_rule(rule.id).name == "rating"
        other = client2.create_scoring_rule(ScoringRuleInput(name="bonus", expression="rating > 4 ? 10 : 0"))
        try:
            rules = client2.list_scoring_rules()
            assert [r.name for r in rules][:2] == ["rating", "bonus"], "highest priority first"
            assert client2.recalculate_score(lead_id) == 55.0
            client2.update_scoring_rule(other.id, ScoringRuleInput(expression="rating > 4 ? 20 : 0"))
            assert client2.get_scoring_rule(other.id).expression == "rating > 4 ? 20 : 0"
            assert client2.get(lead_id).score == 65.0
        finally:
            client2.delete_scoring_rule(other.id)
        assert client2.get(lead_id).score == 45.0
        with pytest.raises(BadRequestError):
            client2.create_scoring_rule(ScoringRuleInput(name="bad", expression="rating * (10"))
    finally:
        client2.delete_scoring_rule(rule.id)
        client2.delete(lead_id)
    with pytest.raises(NotFoundError):
        client2.get_scoring_rule(rule.id)
