"""The ``dreamer-audit`` command: explain a checkpoint outside pytest.

``dreamer-audit explain CHECKPOINT --out DIR`` loads the checkpoint, rolls it out, explains the
rollouts (with the agent, so the sanity and deletion metrics are computed) and writes into DIR:
``rollout-<episode>.png`` for the first ``--render-episodes`` episodes, ``factors.png``,
``explanation.npz`` + ``summary.json`` (:meth:`Explanation.save`) and ``index.html``
(:mod:`pytest_dreamer_audit.report.page`).

Every :class:`~pytest_dreamer_audit.errors.DreamerAuditError` ends the command with
``dreamer-audit: error: <message>`` on stderr and exit status 2, like argparse's usage errors.
Torch is imported only once a command runs, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import COMMAND_LINE, ConfigError, DreamerAuditError
from .files import atomic_text
from .report.bundle import FACTORS_FILE, TOP_STEPS_FILE, bundle_files, is_full_grid
from .report.page import INDEX_FILE, write_index
from .report.terminal import printable
from .results.claims import claims_table
from .settings import OPTIONS, AuditSettings
from .version import __version__

if TYPE_CHECKING:
    from tqdm import tqdm

__all__ = ["INDEX_FILE", "build_parser", "main", "write_index"]

PROG = "dreamer-audit"
EXIT_ERROR = 2
EXIT_INTERRUPTED = 130
"""128 + SIGINT, what a shell reports for a command stopped with Ctrl-C."""


def _argparse_type(parse: Callable[[str], Any], name: str) -> Callable[[str], Any]:
    """A settings parser whose error is reported the argparse way (exit 2 with usage)."""

    def adapted(text: str) -> Any:
        try:
            return parse(text)
        except ConfigError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    adapted.__name__ = name  # argparse names the type in "invalid <name> value"
    return adapted


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``dreamer-audit`` (sub-command ``explain``).

    The audit settings' options come from :data:`~pytest_dreamer_audit.settings.OPTIONS`, the
    table the pytest options and ini keys come from: same defaults, same validation, same help.
    """
    parser = argparse.ArgumentParser(
        prog=PROG, description="Audit trained DreamerV2 MinAtar agents outside pytest."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    explain = commands.add_parser(
        "explain",
        help="roll a checkpoint out, explain its RSSM posteriors with NMF, write figures",
        description="Roll a checkpoint out, factorize its posteriors with NMF and write "
        "rollout-<b>.png, factors.png, explanation.npz, summary.json and index.html into --out.",
    )
    add = explain.add_argument
    add(
        "checkpoint",
        type=Path,
        metavar="CHECKPOINT",
        help="the .pth checkpoint (reference or native format)",
    )
    add("--out", type=Path, required=True, metavar="DIR", help="output folder (created if missing)")
    add(
        "--force",
        action="store_true",
        help="write into an --out folder that holds other files (never over the checkpoint)",
    )
    for option in OPTIONS:
        if option.command_line:
            add(
                COMMAND_LINE.name(option.field),
                dest=option.field,
                type=_argparse_type(option.parse, option.field),
                default=option.parse(option.default),
                metavar=COMMAND_LINE.metavar(option.field, option.default),
                help=f"{option.help} (default: {option.default or 'none'})",
            )
    add("--mdp", action="store_true", help="shorthand for --pomdp false")
    add("--no-progress", action="store_true", help="no progress bar on stderr")
    explain.set_defaults(run=_explain)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``dreamer-audit``; returns the exit status (0, or 2 on any usage or audit error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except DreamerAuditError as error:
        print(f"{PROG}: error: {printable(str(error))}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print(
            f"{PROG}: interrupted; what it wrote so far may be incomplete: rerun the same command "
            "to write it again",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return status


def settings_from_args(args: argparse.Namespace) -> AuditSettings:
    """The audit settings the command line asks for."""
    values = {
        option.field: getattr(args, option.field)
        for option in OPTIONS
        if option.command_line and option.audit_setting
    }
    if args.mdp:
        if values["pomdp"] not in ("auto", "false"):
            raise ConfigError(f"--mdp contradicts --pomdp {values['pomdp']}; pass one of them")
        values["pomdp"] = "false"
    return AuditSettings(checkpoint=str(args.checkpoint), **values)


class _Stages:
    """One progress bar over a command's named stages, on stderr."""

    def __init__(self, total: int, *, disable: bool) -> None:
        from tqdm import tqdm

        self.bar: tqdm[Any] = tqdm(
            total=total, file=sys.stderr, disable=disable, unit="stage", leave=False
        )
        self.started = False

    def __call__(self, label: str) -> None:
        if self.started:
            self.bar.update(1)
        self.started = True
        self.bar.set_description(label)

    def close(self) -> None:
        if self.started:
            self.bar.update(1)
        self.bar.close()


def _explain(args: argparse.Namespace) -> int:
    from .analysis.pipeline import explain
    from .model.checkpoint import load_checkpoint
    from .model.devices import apply_threads
    from .report.bundle import write_bundle

    settings = settings_from_args(args)
    config = settings.explain_config()
    apply_threads(args.threads)
    out: Path = args.out
    previous = prepare_out(out, Path(args.checkpoint), force=args.force)
    rendered = min(settings.render_episodes, settings.episodes)
    optional = int(config.probes) + int(config.curves) + int(config.decoded)
    stages = _Stages(
        5 + config.stability_refits + optional + rendered + 2, disable=args.no_progress
    )  # load, rollouts, factorize, refits, sanity, deletion, options, save, figures, gallery
    try:
        stages("load checkpoint")
        agent = load_checkpoint(
            args.checkpoint,
            device=settings.device,
            categoricals=settings.split[0],
            classes=settings.split[1],
            spelling=COMMAND_LINE,
        )
        target = settings.check_agent(
            agent.sizes, agent.metadata.game, agent.metadata.pomdp, spelling=COMMAND_LINE
        )
        stages(f"rollouts ({settings.episodes} x {settings.steps})")
        trajectory = settings.rollouts(agent, target)
        explanation = explain(trajectory, config, agent=agent, progress=stages)
        try:
            table = claims_table(explanation, settings.claim_config())  # once, for both
            # Claim the names first: a run interrupted while writing leaves only files its
            # marker lists, so the rerun knows them as its own (and rewrites them).
            claim_out(
                out,
                previous
                | OWN_FILES
                | set(bundle_files(rendered, settings.episodes, bool(settings.imagination))),
            )
            imagined = None
            if settings.imagination:
                from .analysis.imagination import imagined_frames

                imagined = imagined_frames(agent, trajectory, 0, settings.imagination)
            written = write_bundle(
                explanation, out, rendered, progress=stages, claims=table, imagined=imagined
            )
            images = [path.name for path in written if is_full_grid(path.name)]
            write_index(out, explanation, images, checkpoint=str(args.checkpoint), claims=table)
            finish_out(out, {path.name for path in written} | OWN_FILES, previous)
        except OSError as error:
            raise ConfigError(f"cannot write into --out {out}: {error}") from None
    finally:
        stages.close()
    print(f"wrote {out / INDEX_FILE}", file=sys.stderr)
    return 0


OUT_MARKER = ".dreamer-audit-out"
"""Lists what the command wrote into an --out folder (one name a line), so that a rerun knows
the folder is its own and which of its older outputs are stale."""
OWN_FILES = frozenset({"explanation.npz", "summary.json", INDEX_FILE})


def prepare_out(out: Path, checkpoint: Path, *, force: bool) -> set[str]:
    """Check that the command may write into ``out``; the names it wrote there before.

    Raises:
        ConfigError: ``out`` is not a folder; it holds files this command did not write and
            ``--force`` is absent; or the checkpoint itself sits in ``out`` under a name the
            command writes (it never overwrites its input, ``--force`` or not).
    """
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ConfigError(f"--out {out} exists and is not a folder; pass a folder path")
    if not out.exists():
        return set()
    marker = out / OUT_MARKER
    previous = set()
    if marker.is_file() and not marker.is_symlink():
        previous = {line for line in marker.read_text().splitlines() if "/" not in line and line}
    ours = previous | {OUT_MARKER}
    if checkpoint.resolve().parent == out.resolve():
        name = checkpoint.name
        if name in OWN_FILES | {OUT_MARKER, TOP_STEPS_FILE, FACTORS_FILE} or is_full_grid(name):
            raise ConfigError(
                f"the checkpoint {checkpoint} is inside --out {out} under a name this command "
                "writes; pass another --out folder (the input is never overwritten)"
            )
    foreign = sorted(child.name for child in out.iterdir() if child.name not in ours)
    if foreign and not marker.is_file() and not force:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise ConfigError(
            f"--out {out} already holds files this command did not write ({shown}); pass an "
            "empty or new folder, or --force to write into it anyway"
        )
    return previous


def claim_out(out: Path, names: set[str]) -> None:
    """Record in the marker the names this run is about to write, before it writes them."""
    out.mkdir(parents=True, exist_ok=True)
    atomic_text(out / OUT_MARKER, "".join(f"{name}\n" for name in sorted(names)))


def finish_out(out: Path, written: set[str], previous: set[str]) -> None:
    """Remove what an earlier run wrote and this one did not (stale rollout figures), then
    record what this run wrote."""
    for name in sorted(previous - written):
        stale = out / name
        if stale.is_file() and not stale.is_symlink():
            stale.unlink()
    atomic_text(out / OUT_MARKER, "".join(f"{name}\n" for name in sorted(written)))
