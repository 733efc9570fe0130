"""The ``dreamer-audit`` command: explain a checkpoint outside pytest.

``dreamer-audit explain CHECKPOINT --out DIR`` loads the checkpoint, rolls it out, explains the
rollouts (with the agent, so the sanity and deletion metrics are computed) and writes into DIR:
``rollout-<episode>.png`` for the first ``--render-episodes`` episodes, ``factors.png``,
``explanation.npz`` + ``summary.json`` (:meth:`Explanation.save`) and ``index.html``.

Every :class:`~pytest_dreamer_audit.errors.DreamerAuditError` ends the command with
``dreamer-audit: error: <message>`` on stderr and exit status 2, like argparse's usage errors.
Torch is imported only once a command runs, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import html
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import COMMAND_LINE, ConfigError, DreamerAuditError
from .files import atomic_text
from .report.bundle import FACTORS_FILE, TOP_STEPS_FILE, bundle_files, caption, is_full_grid
from .report.html import (
    curves_html,
    fact_table_html,
    factor_status_html,
    probe_table_html,
    randomization_html,
    score_table_html,
)
from .report.records import METRIC_NOTES
from .report.terminal import printable
from .results.claims import ClaimsTable, claims_table
from .results.explanation import TrustMetrics
from .settings import OPTIONS, AuditSettings
from .version import __version__

if TYPE_CHECKING:
    from tqdm import tqdm

    from .results.explanation import Explanation

__all__ = ["INDEX_FILE", "build_parser", "main", "write_index"]

PROG = "dreamer-audit"
INDEX_FILE = "index.html"
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
                metavar=option.field.upper(),
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
            claim_out(out, previous | OWN_FILES | set(bundle_files(rendered, settings.episodes)))
            written = write_bundle(explanation, out, rendered, progress=stages, claims=table)
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


def _format(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if not math.isfinite(value) else f"{value:.4g}"
    return str(value)


def write_index(
    directory: str | os.PathLike[str],
    explanation: Explanation,
    rollout_images: Sequence[str],
    *,
    checkpoint: str = "",
    claims: ClaimsTable | None = None,
) -> Path:
    """Write ``index.html``: what was explained, the trust metrics and the figures (and what
    the explanation claims: ``claims``, computed at the default level when not given).

    Every string from the explanation, the command line or the file system is escaped with
    :func:`html.escape`; images are referenced by their names relative to ``directory``.

    Args:
        directory: the output folder holding the PNGs.
        explanation: the explanation shown. rollout_images: file names of the rollouts' full
            grids, in display order (``top-steps.png`` and ``factors.png`` are shown too).
            checkpoint: the checkpoint path shown in the header.
    """
    e = explanation

    def esc(value: Any) -> str:
        return html.escape(str(value), quote=True)

    returns = e.returns
    facts = [
        ("checkpoint", checkpoint),
        ("game", f"{e.game} ({'POMDP' if e.pomdp else 'MDP'})"),
        ("rollouts", f"{e.episodes} x {e.steps} steps, seeds {e.seeds[0]}..{e.seeds[-1]}"),
        ("returns", f"mean {returns.mean():.3g}, min {returns.min():g}, max {returns.max():g}"),
        (
            "explanation",
            f"score {e.config.score}, layout {e.config.layout}, rank {e.rank}, "
            f"top-k {e.config.top_k}, NMF {e.config.solver}/{e.config.init}",
        ),
    ]
    metrics = "\n".join(
        f"<tr><td><code>{esc(name)}</code></td><td>{esc(_format(getattr(e.metrics, name)))}</td>"
        f"<td>{esc(METRIC_NOTES.get(name, ''))}</td></tr>"
        for name in TrustMetrics.__dataclass_fields__
    )
    header = "\n".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts)
    table = claims or claims_table(e)
    fact_table = fact_table_html(table.facts) or "<p>No valid steps.</p>"
    status_table = factor_status_html(table.factors)
    score_table = score_table_html(table.scores)
    randomization_table = randomization_html(e.randomization, e.metrics.posterior_entropy)
    probes_table = probe_table_html(e.probes) or "<p>Not run (--probes true runs them).</p>"
    curves_table = curves_html(e.curves) or "<p>Not run (--curves true draws them).</p>"

    def figure(name: str) -> str:
        return (
            f'<figure><img src="{esc(name)}" alt="{esc(caption(name, e))}">'
            f"<figcaption>{esc(name)}: {esc(caption(name, e))}</figcaption></figure>"
        )

    figures = "\n".join(figure(name) for name in rollout_images)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{esc(f"dreamer-audit: {e.game}")}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }}
.figures {{ display: flex; flex-wrap: wrap; gap: 1.5em; align-items: flex-start; }}
figure {{ margin: 0; }} figcaption {{ font-size: small; color: #555; }}
</style></head><body>
<h1>{esc(f"Explanation of {e.game}")}</h1>
<table>{header}</table>
<h2>Trust metrics</h2>
<table><tr><th>metric</th><th>value</th><th>meaning</th></tr>
{metrics}</table>
<p>Arrays: <a href="explanation.npz">explanation.npz</a>,
summary: <a href="summary.json">summary.json</a>.</p>
<h2>The most important steps</h2>
{figure(TOP_STEPS_FILE)}
<h2>Factors</h2>
{figure(FACTORS_FILE)}
<h3>What each factor's observations coincide with</h3>
{fact_table}
<h3>Which factors may claim</h3>
{status_table}
<h3>The score's top observations against each event</h3>
{score_table}
<h3>Model parameter randomization</h3>
{randomization_table or "<p>Not run (no agent).</p>"}
<h3>What the latents know beyond their controls (linear probes)</h3>
{probes_table}
<h3>Deletion and insertion curves of every head</h3>
{curves_table}
<h2>Rollouts</h2>
<div class="figures">{figures}</div>
</body></html>
"""
    target = Path(directory) / INDEX_FILE
    target.write_text(page, encoding="utf-8")
    return target
