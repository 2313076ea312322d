"""``python -m course_lib.pretrained train NAME`` trains a recipe; ``list`` shows the recipes."""

from __future__ import annotations

import argparse
import sys

from course_lib.pretrained.recipes import RECIPES
from course_lib.pretrained.training import CHECKPOINT_DIR_ENV_VAR, resolve_checkpoint_dir, train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.pretrained", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    trainer = commands.add_parser("train", help="train a recipe; writes checkpoints/NAME.pt and NAME.json")
    trainer.add_argument("name", choices=sorted(RECIPES))
    trainer.add_argument("--checkpoint-dir", help=f"default: ${CHECKPOINT_DIR_ENV_VAR}, else checkpoints/")
    trainer.add_argument("--device", help="cpu, cuda, ...; default: the GPU when there is one")
    trainer.add_argument("--restart", action="store_true", help="ignore a saved unfinished run")
    commands.add_parser("list", help="the recipes, and which are trained")
    args = parser.parse_args(argv)
    if args.command == "list":
        directory = resolve_checkpoint_dir()
        for recipe in RECIPES.values():
            state = "trained" if (directory / f"{recipe.name}.json").is_file() else "not trained"
            print(f"{recipe.name:24} {state:12} {recipe.summary}")
        return 0
    manifest = train(args.name, args.checkpoint_dir, args.device, restart=args.restart)
    metrics = ", ".join(f"{key} {value:.4g}" for key, value in manifest["metrics"].items())
    size, minutes = manifest["checkpoint"]["bytes"] / 1e6, manifest["wall_time_s"] / 60
    print(f"wrote {manifest['checkpoint']['file']} ({size:.1f} MB), {minutes:.1f} min: {metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
