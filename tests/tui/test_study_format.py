"""Counts read as a person writes them: "1 study", "3 studies" (the Studies area's count line
said "1 studies")."""

from tui.screens.study_format import count_text


def test_a_count_takes_its_noun_in_the_right_number():
    assert count_text(1, "study", "studies") == "1 study"
    assert count_text(0, "study", "studies") == "0 studies"
    assert count_text(3, "study", "studies") == "3 studies"
    assert count_text(1000, "study", "studies") == "1,000 studies"
