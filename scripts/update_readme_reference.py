"""Rewrite the configuration reference block in README.md from the config models."""
from pathlib import Path

from xueliang.reference import BEGIN, END, config_reference

readme = Path(__file__).resolve().parents[1] / "README.md"
text = readme.read_text(encoding="utf-8")
head, _, rest = text.partition(BEGIN)
_, _, tail = rest.partition(END)
readme.write_text(head + config_reference() + tail, encoding="utf-8")
print(f"updated {readme}")
