"""``ludao``: index, docs, ask, eval, serve, train-reader, calibrate-reader, bench.

Commands are glue: parse options, call the library, turn library errors into CLI errors.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

import click

from qa.config import ServeSettings
from qa.errors import LudaoError

from .common import AS_GROUPS_OPTION, ray_option, settings_for
from .docs import docs
from .training import fit_boundaries, fit_char_edges, package_reader, train_reader_command

logger = logging.getLogger("qa")


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("transformers", "sentence_transformers", "jieba", "bm25s", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    # transformers and huggingface_hub read these when first imported. Importing transformers
    # just to call its setters cost every command ~0.5 s, and the default serve path never
    # imports it otherwise (embeddings.plain_bert builds the lean paths' models).
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:  # imported already: the variables came too late
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()


@click.group()
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
def cli(verbose: int, quiet: bool) -> None:
    """Ludao (鹭岛): answers from your own documents, with citations."""
    _setup_logging(verbose, quiet)


@cli.command()
@click.argument("paths", nargs=-1, type=click.Path(exists=True))
@click.option("--rebuild", is_flag=True, help="Rebuild even if a current index exists.")
@click.option(
    "--include",
    multiple=True,
    metavar="PATTERN",
    help="Only files in folders matching this glob (relative path, e.g. '**/*.pdf'; repeatable).",
)
@click.option(
    "--exclude",
    multiple=True,
    metavar="PATTERN",
    help="Leave out files or folders matching this glob (e.g. 'drafts/*'; repeatable).",
)
@click.option(
    "--store",
    type=click.Choice(["faiss", "milvus"]),
    default=None,
    help="Vector store to fill (default LUDAO_VECTOR_STORE or faiss; milvus: LUDAO_MILVUS_URI).",
)
@ray_option("Embed new passages on a Ray cluster (after PATHS)")
@click.option(
    "--ray-workers",
    type=click.IntRange(1),
    default=None,
    help="Encoder actors on the cluster (default: one per CPU, minus one for Ray Data).",
)
def index(
    paths: tuple[str, ...],
    rebuild: bool,
    include: tuple[str, ...],
    exclude: tuple[str, ...],
    store: str | None,
    ray_address: str | None,
    ray_workers: int | None,
) -> None:
    """Build (or reuse) the index of PATHS (files or folders; default: the default corpus).

    Prints one JSON object: index counts, and under "files" every file looked at, loaded or
    skipped with the reason (unsupported, empty, binary, encrypted, broken, undecodable, ...).
    """
    try:
        from qa.corpus import corpus_from_settings
        from qa.stores import open_searcher

        settings = settings_for(
            paths, include=include or None, exclude=exclude or None, vector_store=store
        )
        corpus = corpus_from_settings(settings)
        encoder = None
        if ray_address is not None:
            from qa.cluster.embedding import ray_encoder

            encoder = ray_encoder(settings, ray_address, workers=ray_workers)
        update = open_searcher(settings, rebuild=rebuild, corpus=corpus, encoder=encoder)
        index_dir = update.location
    except LudaoError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        json.dumps(
            {
                "index_dir": str(index_dir),
                "documents": len(corpus.documents) - len(update.excluded),
                "passages": update.passages,
                **update.counts(),
                "excluded_documents": update.excluded,
                "dropped_paragraphs": sum(d.dropped_paragraphs for d in corpus.documents),
                "files_loaded": len(corpus.report.loaded),
                "files_skipped": len(corpus.report.skipped),
                "skipped_by_reason": corpus.report.counts()["skipped_by_reason"],
                "files": [f.to_dict() for f in corpus.report.files],
                **({"ray": encoder.report()} if encoder is not None else {}),
            },
            ensure_ascii=False,
        )
    )


@cli.command()
@click.argument("question")
@click.option("--corpus", "corpus", multiple=True, type=click.Path(exists=True))
@click.option("--top-k", type=click.IntRange(1, 50), default=None, help="Passages to retrieve.")
@click.option("--reader", default=None, help="'sentence', a reader folder or a hub id.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON contract of design.md.")
@click.option(
    "--after",
    multiple=True,
    metavar="QUESTION",
    help="An earlier question of the conversation, oldest first (repeatable); QUESTION may "
    "lean on it (那2020年呢？).",
)
@click.option(
    "--history-file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Earlier turns, before any --after: a JSON list or JSONL of questions or "
    '{"question", "answer"} objects.',
)
@AS_GROUPS_OPTION
def ask(
    question: str,
    corpus: tuple[str, ...],
    top_k: int | None,
    reader: str | None,
    as_json: bool,
    after: tuple[str, ...],
    history_file: str | None,
    as_groups: str | None,
) -> None:
    """Answer QUESTION from the corpus (as a follow-up of --after / --history-file turns)."""
    from qa.conversation import ask_options, conversation_turns
    from qa.pipeline import Pipeline

    try:
        pipeline = _scoped(Pipeline.from_settings(settings_for(corpus, reader=reader)), as_groups)
        turns = conversation_turns(pipeline, after, history_file, top_k=top_k)
        response = pipeline.ask(question, top_k=top_k, **ask_options(turns))
    except LudaoError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(response.to_dict(), ensure_ascii=False))
        return
    if response.interpreted_as:
        click.echo(f"理解为 Understood as: {response.interpreted_as}")
    if response.no_answer:
        click.echo("The documents do not say. / 文档中没有找到答案。")
    elif response.answers:
        best = response.answers[0]
        click.echo(f"{best.text}  (confidence {best.score:.0%})")
    for i, hit in enumerate(response.hits, 1):
        where = f"p. {hit.passage.page}" if hit.passage.page else f"chars {hit.passage.orig_start}"
        click.echo(f"[{i}] {hit.passage.title} ({where}): {hit.passage.text[:120]}")


def _scoped(pipeline: Any, as_groups: str | None) -> Any:
    """``pipeline``, or the same answering only from what ``--as-groups`` may read."""
    if as_groups is None:
        return pipeline
    from qa.access import GroupScoped, parse_groups

    return GroupScoped(pipeline, parse_groups(as_groups))


@cli.command(name="eval")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--corpus", "corpus", multiple=True, type=click.Path(exists=True))
@click.option("--gold-passage", is_flag=True, help="Read each question against its own paragraph.")
@click.option("--predictions", type=click.Path(dir_okay=False), default=None)
@click.option("--limit", type=click.IntRange(1), default=None)
@click.option("--top-k", type=click.IntRange(1, 50), default=5)
@click.option("--reader", default=None, help="'sentence', a reader folder or a hub id.")
@click.option("--json", "as_json", is_flag=True)
@click.option(
    "--questions-from",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Ask each question as worded in this parallel file (same ids), e.g. XQuAD's English "
    "questions over its Chinese paragraphs.",
)
@AS_GROUPS_OPTION
def eval_command(
    file: str,
    corpus: tuple[str, ...],
    gold_passage: bool,
    predictions: str | None,
    limit: int | None,
    top_k: int,
    reader: str | None,
    as_json: bool,
    questions_from: str | None,
    as_groups: str | None,
) -> None:
    """Score Ludao on FILE (SQuAD JSON or JSONL questions)."""
    from qa.eval.question_files import load_examples, reworded
    from qa.eval.runner import (
        evaluate,
        gold_passage_asker,
        pipeline_asker,
        squad_paragraph_pipeline,
        write_predictions,
    )
    from qa.pipeline import Pipeline
    from qa.readers import reader_from_settings

    try:
        settings = settings_for(corpus, reader=reader)
        examples = load_examples(file)[:limit]
        if questions_from:
            examples = reworded(examples, load_examples(questions_from))
        is_squad = not file.endswith(".jsonl") and all(e.context is not None for e in examples)
        if gold_passage:
            model = reader_from_settings(settings)
            ask_fn = gold_passage_asker(model)
            mode, embed, retrieval = "gold-passage", None, False
            if questions_from:
                mode += f" (questions of {Path(questions_from).name})"
        else:
            if is_squad and not corpus:
                pipeline = squad_paragraph_pipeline(Path(file), settings)
                mode = "open-domain (file paragraphs)"
            else:
                pipeline = Pipeline.from_settings(settings)
                mode = "knowledge base"
            model = pipeline.reader
            ask_fn = pipeline_asker(_scoped(pipeline, as_groups), top_k)
            embed, retrieval = settings.embedding_model, True
        report, preds = evaluate(
            examples,
            ask_fn,
            reader_name=model.name,
            embedding_model=embed,
            mode=mode,
            with_retrieval=retrieval,
        )
    except (LudaoError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    if predictions:
        write_predictions(Path(predictions), preds)
    data = report.to_dict()
    click.echo(json.dumps(data, ensure_ascii=False) if as_json else json.dumps(data, indent=2))


def _serve_options(command: Callable[..., None]) -> Callable[..., None]:
    """One option per ``ServeSettings`` field, as ``python ui.py`` has, so the two never drift."""
    for field in reversed(fields(ServeSettings)):
        kind = type(field.default)
        command = click.option(
            "--" + field.name.replace("_", "-"),
            field.name,
            type=kind if kind in (int, float) else str,
            default=None,
            help=f"{field.metadata['help']} (LUDAO_{field.name.upper()}).",
        )(command)
    return command


@cli.command()
@click.option(
    "--corpus",
    "corpus",
    multiple=True,
    type=click.Path(exists=True),
    help="File or folder to answer from (repeatable; LUDAO_CORPUS).",
)
@ray_option("Serve from Ray Serve replicas")
@click.option(
    "--replicas", type=click.IntRange(1), default=2, show_default=True, help="With --ray."
)
@_serve_options
def serve(
    corpus: tuple[str, ...], ray_address: str | None, replicas: int, **options: object
) -> None:
    """Run the chat, the HTTP API and the embeddable widget in one server.

    An option not given comes from LUDAO_<OPTION> or the [serve] table of
    $LUDAO_HOME/config.toml. With --ray, the same app runs in --replicas Ray Serve replicas
    behind Ray's proxy at --host/--port; Ctrl-C takes it down.
    """
    import ui

    try:
        server = ServeSettings.load(**options)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    if ray_address is None:
        ui.serve(settings_for(corpus), server)
        return
    from qa.cluster.connect import import_ray

    try:
        import_ray()
        from qa.cluster.serving import serve_until_stopped

        serve_until_stopped(
            ui.build_server_app,
            settings_for(corpus),
            server,
            address=ray_address,
            replicas=replicas,
        )
    except LudaoError as exc:
        raise click.ClickException(str(exc)) from exc


@cli.command()
@click.option("--corpus", "corpus", multiple=True, type=click.Path(exists=True))
@click.option("--questions", type=click.Path(exists=True), default=None)
@click.option("--repeat", type=int, default=3)
@click.option("--json", "as_json", is_flag=True)
def bench(corpus: tuple[str, ...], questions: str | None, repeat: int, as_json: bool) -> None:
    """Latency of retrieval and reading on the corpus, per stage (default: the seed questions)."""
    from qa.eval.bench import run_latency_benchmark

    result = run_latency_benchmark(settings_for(corpus), questions=questions, repeat=repeat)
    click.echo(json.dumps(result, ensure_ascii=False, indent=None if as_json else 2))


cli.add_command(docs)
for _command in (train_reader_command, package_reader, fit_boundaries, fit_char_edges):
    cli.add_command(_command)


def main() -> None:  # pragma: no cover - console entry point
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)
