"""Test doubles: tiny agents and checkpoint writers, public so users can test their audits fast.

A tiny agent has the reference architecture with small widths (a forward pass costs microseconds)
and random weights from a fixed seed, so tests of rollouts, explanations and the plugin run on a
CPU in seconds. A fake explanation (random arrays of the right shapes) tests what reads
explanations without an agent; the markup checks find HTML that a payload in a test id, label or
message turned into markup in a report.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np

from .games import game_spec
from .model.agent import AgentMetadata, DreamerAgent, build_agent
from .model.checkpoint import save_checkpoint
from .model.networks import ModelSizes
from .results.config import Layout
from .results.explanation import ExplainConfig, Explanation, TrustMetrics
from .rollout.envs import fact_names

__all__ = [
    "HEADLESS_CHROMIUM",
    "EFFECT_MARKERS",
    "FAST_INI",
    "ID_PAYLOAD",
    "LABEL_PAYLOAD",
    "MESSAGE_PAYLOAD",
    "ParsedHTML",
    "fake_explanation",
    "markup_offences",
    "parse_html",
    "report_blob",
    "rendered_fragments",
    "text_of",
    "tiny_agent",
    "tiny_sizes",
    "write_tiny_checkpoint",
]


def tiny_sizes(game: str = "freeway", *, pomdp: bool = True, **overrides: Any) -> ModelSizes:
    """Small sizes fitting ``game``: 4 categoricals x 5 classes, widths of 8 to 32."""
    spec = game_spec(game)
    sizes = ModelSizes(
        channels=len(spec.observed_channels(pomdp)),
        actions=spec.actions,
        deter=16,
        categoricals=4,
        classes=5,
        embedding=24,
        node=16,
        depth=4,
        actor_hidden=12,
        actor_layers=2,
        head_hidden=8,
        head_layers=2,
    )
    return replace(sizes, **overrides)


def tiny_agent(
    game: str = "freeway", *, pomdp: bool = True, seed: int = 0, **overrides: Any
) -> DreamerAgent:
    """A tiny agent with seeded random weights and native metadata for ``game``."""
    return build_agent(
        tiny_sizes(game, pomdp=pomdp, **overrides),
        seed=seed,
        metadata=AgentMetadata(game=game, pomdp=pomdp, training={"kind": "tiny test agent"}),
    )


def write_tiny_checkpoint(
    path: str | os.PathLike[str],
    game: str = "freeway",
    *,
    pomdp: bool = True,
    seed: int = 0,
    native: bool = True,
    **overrides: Any,
) -> Path:
    """Write a tiny agent's checkpoint (``native=False``: the plain reference format)."""
    return save_checkpoint(
        tiny_agent(game, pomdp=pomdp, seed=seed, **overrides), path, native=native
    )


HEADLESS_CHROMIUM = (
    "--headless",
    "--no-sandbox",  # root in a container
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=5000",
)
"""Chromium's flags for photographing and reading a report offline, the same in the browser
tests and ``docs/screenshot.py`` (add ``--user-data-dir``, the window size and the action)."""

FAST_INI = """
[pytest]
dreamer_episodes = 2
dreamer_steps = 6
dreamer_rank = 3
dreamer_top_k = 2
dreamer_stability_refits = 1
dreamer_render_episodes = 1
dreamer_device = cpu
"""
"""An ini file (for ``pytester.makeini``) whose audits of a tiny agent take about a second."""


def fake_explanation(
    *,
    game: str = "freeway",
    pomdp: bool = True,
    steps: int = 12,
    episodes: int = 3,
    categoricals: int = 4,
    classes: int = 5,
    rank: int = 3,
    top_k: int = 3,
    layout: Layout = "pooled",
    lengths: list[int] | None = None,
    seed: int = 0,
) -> Explanation:
    """An Explanation of seeded random arrays with the documented shapes (no agent, no NMF),
    for tests of what reads explanations (rendering, reports).

    ``lengths[b]`` valid steps per episode (default: all ``steps``); rows after are padding.
    """
    rng = np.random.default_rng(seed)
    spec = game_spec(game)
    channels = len(spec.observed_channels(pomdp))
    lengths = lengths or [steps] * episodes
    valid = np.arange(steps)[:, None] < np.asarray(lengths)[None, :]  # [L, B]
    logits = rng.normal(size=(steps, episodes, categoricals, classes)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    width = classes if layout == "pooled" else categoricals * classes
    prototypes = rng.random((rank, width))
    prototypes /= np.linalg.norm(prototypes, axis=1, keepdims=True)
    t, b, c = np.nonzero(np.broadcast_to(valid[..., None], (steps, episodes, categoricals)))
    if layout == "per_step":
        t, b = np.nonzero(valid)
        c = np.full_like(t, -1)
    rows = len(t)
    step_scores = rng.random((steps, episodes, categoricals)) * valid[..., None]
    obs_scores = rng.random((steps, episodes)) * valid
    obs_scores /= obs_scores.max()
    top = np.argsort(-obs_scores, axis=0)[:top_k].T.copy()  # [B, k]
    top[~valid[top, np.arange(episodes)[:, None]]] = -1
    factor_activations = rng.random((steps, episodes, rank)) * valid[..., None]
    flat = factor_activations.reshape(-1, rank).T
    best = np.argsort(-flat, axis=1)[:, :top_k]
    examples = np.stack([best // episodes, best % episodes], axis=-1)
    names = fact_names(game)
    facts = np.zeros((steps, episodes, len(names)), dtype=np.int32)
    if "move_ready" in names:
        facts[..., names.index("move_ready")] = rng.integers(0, 2, (steps, episodes))
    facts[..., names.index("sticky")] = rng.random((steps, episodes)) < 0.1
    return Explanation(
        game=game,
        pomdp=pomdp,
        seeds=tuple(range(episodes)),
        action_names=spec.action_names,
        fact_names=names,
        config=ExplainConfig(rank=rank, layout=layout, top_k=top_k),
        metrics=TrustMetrics(relative_error=0.1, explained_variance=0.9, iterations=50),
        prototypes=prototypes.astype(np.float32),
        activations=rng.random((rows, rank)).astype(np.float32),
        row_step=t,
        row_episode=b,
        row_categorical=c,
        row_scores=rng.random(rows).astype(np.float32),
        step_scores=step_scores.astype(np.float32),
        observation_scores=obs_scores.astype(np.float32),
        top_observations=top,
        factor_activations=factor_activations.astype(np.float32),
        factor_examples=examples,
        factor_stability=np.full(rank, 0.95),
        beliefs=np.zeros((0, episodes, channels, 10, 10), dtype=np.float32),
        factor_decoded=np.zeros((0, channels, 10, 10), dtype=np.float32),
        observations=rng.random((steps, episodes, channels, 10, 10)) < 0.1,
        posterior_probs=probs.astype(np.float32),
        stoch_classes=probs.argmax(-1).astype(np.int16),
        actions=rng.integers(0, spec.actions, (steps, episodes)),
        rewards=((rng.random((steps, episodes)) < 0.05) & valid).astype(np.float32),
        valid=valid,
        facts=facts,
    )


# --- markup in reports --------------------------------------------------------------------------

EFFECT_MARKERS = ("pwned",)
"""Every payload's effect contains this (case-insensitive): a title "PWNED", an id "pwned"."""
LABEL_PAYLOAD = "ckpt<img src=x onerror=document.title='PWNED-label'>"
"""A legal file name (no "/"): a checkpoint's label is its stem, so it lands in test ids."""
ID_PAYLOAD = (
    "<script>document.title='PWNED-script'</script>"
    "<img src=y onerror=\"document.body.insertAdjacentHTML('beforeend','<b id=pwned-id></b>')\">"
)
"""A parametrize id."""
MESSAGE_PAYLOAD = "<img src=z onerror=document.title='PWNED-message'>"
"""An assertion message (it reaches a pytest-html report's log)."""


class ParsedHTML(HTMLParser):
    """What a browser would run or create from a document or fragment (see :func:`parse_html`).

    Attributes:
        elements: ``(tag, attributes)`` of every start tag, in document order.
        scripts: the text inside ``<script>`` elements. text: every other text node.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, attrs))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        (self.scripts if self._in_script else self.text).append(data)


def parse_html(document: str) -> ParsedHTML:
    """Parse an HTML document or fragment (entities in text decoded)."""
    parser = ParsedHTML()
    parser.feed(document)
    parser.close()
    return parser


def _marked(value: str | None) -> bool:
    return value is not None and any(m in value.lower() for m in EFFECT_MARKERS)


def markup_offences(document: str) -> list[str]:
    """Places where a payload became markup: an element or attribute carrying a marker in its
    name, an event handler carrying one, an element whose ``id`` starts with one (what the
    payloads create), a script containing one, a ``javascript:`` URL. A marker inside text or
    an ordinary attribute value (``alt``, ``src``, an ``id`` set from a test id) is inert."""
    markup = parse_html(document)
    offences = [f"<script> containing {s[:80]!r}" for s in markup.scripts if _marked(s)]
    for tag, attributes in markup.elements:
        if _marked(tag):
            offences.append(f"element <{tag}>")
        for name, value in attributes:
            text = (value or "").strip().lower()
            if (
                _marked(name)
                or (name.startswith("on") and _marked(value))
                or (name == "id" and text.startswith(EFFECT_MARKERS))  # an element a payload made
                or (name in ("src", "href") and text.startswith("javascript:"))
            ):
                offences.append(f"<{tag} {name}={value!r}>")
    return offences


def text_of(fragment: str) -> str:
    """What a browser shows for ``fragment``: its text, entities decoded."""
    return "".join(parse_html(fragment).text)


def report_blob(report: Path) -> dict[str, Any]:
    """pytest-html 4's data: the JSON in the ``data-jsonblob`` attribute of ``report``."""
    for _tag, attributes in parse_html(report.read_text(encoding="utf-8")).elements:
        for name, value in attributes:
            if name == "data-jsonblob" and value is not None:
                blob: dict[str, Any] = json.loads(value)
                return blob
    raise AssertionError(f"{report} has no data-jsonblob attribute (not a pytest-html 4 report?)")


def rendered_fragments(blob: dict[str, Any]) -> list[tuple[str, str]]:
    """``(where, html)`` of every string of a pytest-html 4 blob that its script inserts as
    HTML: table cells, html extras, logs and table html."""
    fragments = []
    for nodeid, entries in blob["tests"].items():
        for entry in entries:
            for cell in entry.get("resultsTableRow", []):
                fragments.append((f"{nodeid}: table cell", cell))
            for extra in entry.get("extras", []):
                if extra.get("format_type") == "html":
                    fragments.append((f"{nodeid}: html extra", extra["content"]))
            fragments.append((f"{nodeid}: log", entry.get("log", "")))
            for item in entry.get("tableHtml", []):
                fragments.append((f"{nodeid}: table html", item))
    return fragments
