"""The README starts with the two commands and carries a configuration reference that is current."""
from tests.helpers import REPO
from xueliang.reference import BEGIN, END, config_reference


def test_readme_starts_with_the_two_commands():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("```sh", 1)[1].split("```", 1)[0]
    assert [line.split("#")[0].strip() for line in block.strip().splitlines()] == ["make demo", "make test"]


def test_readme_config_reference_is_generated_from_the_models():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    current = BEGIN + text.split(BEGIN, 1)[1].split(END, 1)[0] + END
    assert current == config_reference(), "README config reference is stale: run `make reference`"


def test_every_config_field_has_a_description():
    missing = [line for line in config_reference().splitlines()[3:-1] if line.rstrip().endswith("|  |")]
    assert not missing, missing
