"""On/off environment variables (llmlab._env)."""

from __future__ import annotations

import pytest

from llmlab._env import FALSE_WORDS, TRUE_WORDS, env_bool, parse_bool
from llmlab.errors import ConfigurationError

NAME = "LLMLAB_TEST_SWITCH"


class TestEnvBool:
    """env_bool and its spelling table."""

    def test_the_table_is_the_documented_one(self) -> None:
        """Exactly four pairs are accepted: 1/0, true/false, yes/no, on/off."""
        assert {"1", "true", "yes", "on"} == TRUE_WORDS
        assert {"0", "false", "no", "off"} == FALSE_WORDS

    @pytest.mark.parametrize(("value", "expected"), [
        ("1", True), ("true", True), ("TRUE", True), ("Yes", True), ("on", True), (" On\n", True),
        ("0", False), ("false", False), ("False", False), ("NO", False), ("off", False),
        ("\toff ", False)])
    def test_accepted_spellings(self, monkeypatch: pytest.MonkeyPatch, value: str,
                                expected: bool) -> None:
        """Every spelling, in any case and with surrounding spaces, is read; the default is not."""
        monkeypatch.setenv(NAME, value)
        assert env_bool(NAME, not expected) is expected

    @pytest.mark.parametrize("value", [None, "", "   "])
    @pytest.mark.parametrize("default", [True, False])
    def test_unset_or_blank_is_the_default(self, monkeypatch: pytest.MonkeyPatch,
                                           value: str | None, default: bool) -> None:
        """An unset, empty or blank variable gives the default."""
        if value is None:
            monkeypatch.delenv(NAME, raising=False)
        else:
            monkeypatch.setenv(NAME, value)
        assert env_bool(NAME, default) is default

    @pytest.mark.parametrize("value", ["t", "n", "2", "enabled", "-1"])
    def test_other_words_are_refused(self, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
        """Anything else raises ConfigurationError naming the variable, value and spellings."""
        monkeypatch.setenv(NAME, value)
        with pytest.raises(ConfigurationError) as caught:
            env_bool(NAME, False)
        assert str(caught.value) == (
            f"{NAME} must be 1/0, true/false, yes/no or on/off (any case), got {value!r}")

    def test_parse_bool_answers_none_for_unknown_words(self) -> None:
        """parse_bool tells an unknown word (None) from off (False)."""
        assert parse_bool("maybe") is None and parse_bool("off") is False
