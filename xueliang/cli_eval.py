"""`xueliang eval`: backtest the rules on labelled clips, or compare models on them side by side.

The scoring is `detectors.evaluation`'s, wired with the replay in `xueliang.backtest_wiring`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from detectors.evaluation import LabelFile
from xueliang.cli import EXIT_CONFIG, _load
from xueliang.config import ConfigError, ServiceConfig


def with_model(cfg: ServiceConfig, name: str) -> ServiceConfig:
    """The config with another registered model as the main model (at that model's own size)."""
    if name == cfg.model.name:
        return cfg
    return cfg.model_copy(update={"model": cfg.model.model_copy(update={"name": name, "imgsz": None})})


def cmd_eval(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    from detectors.evaluation import load_labels, table
    from xueliang.logs import setup_logging

    setup_logging("warning", cfg.log.format)
    try:
        labels = load_labels(Path(args.labels))
        for clip in labels.clips:
            cfg.camera(clip.camera)
    except ConfigError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return EXIT_CONFIG
    except KeyError as exc:
        print(f"{args.labels}: {exc.args[0]}", file=sys.stderr)
        return EXIT_CONFIG
    if args.model:
        return eval_compare(cfg, labels, args)
    from xueliang.backtest_wiring import evaluate

    scores = evaluate(cfg, labels)
    if args.json:
        Path(args.json).write_text(json.dumps({rule: s.as_dict() for rule, s in scores.items()}, indent=2,
                                              ensure_ascii=False))
    print(table(scores))
    return 0


def eval_compare(cfg: ServiceConfig, labels: LabelFile, args: argparse.Namespace) -> int:
    """`xueliang eval --model A --model B`: the same clips and rules with each model as the main one."""
    from bridge.events.catalogue import Catalogue
    from detectors.evaluation import compare_table
    from detectors.model_check import camera_model_problems, main_model_problems
    from detectors.model_store import ModelMissing
    from detectors.registry import Registry
    from xueliang.backtest_wiring import evaluate

    models = list(dict.fromkeys(args.model))
    catalogue = Catalogue.load(cfg.catalogue)
    for name in models:
        model = with_model(cfg, name).model
        problems = main_model_problems(cfg.data_dir, model)
        for i, cam in enumerate(cfg.cameras):
            if any(c.camera == cam.id for c in labels.clips):
                problems += camera_model_problems(cfg.data_dir, model, cam, f"cameras[{i}]", catalogue)
        if problems:
            for loc, msg in problems:
                print(f"--model {name}: {loc}: {msg}", file=sys.stderr)
            return EXIT_CONFIG
    try:
        results = {name: evaluate(with_model(cfg, name), labels) for name in models}
    except ModelMissing as exc:
        print(f"eval: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    registry = Registry(cfg.data_dir)
    sha = {m: registry.get(m).sha256 for m in models}
    if args.json:
        doc = {m: {"sha256": sha[m], "rules": {r: s.as_dict() for r, s in scores.items()}} for m, scores in results.items()}
        Path(args.json).write_text(json.dumps(doc, indent=2, ensure_ascii=False))
    print(compare_table(results, sha))
    return 0


def add_eval_parser(sub) -> None:
    s = sub.add_parser("eval", help="replay labelled clips and score each rule (precision, recall, delay)")
    s.add_argument("-c", "--config", required=True)
    s.add_argument("--labels", required=True, help="label file (YAML); see docs/eval.md")
    s.add_argument("--json", help="also write the scores as JSON here")
    s.add_argument("--model", action="append", help="compare registered models side by side, each as the main "
                   "model on the same clips (repeat: --model A --model B)")
    s.set_defaults(func=cmd_eval)
