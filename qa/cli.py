"""``ludao``: index, docs, ask, eval, serve, train-reader, calibrate-reader, bench.

Commands are glue: parse options, call the library, turn library errors into CLI errors.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import replace
from pathlib import Path

import click

from .config import Settings
from .errors import LudaoError

logger = logging.getLogger("qa")


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("transformers", "sentence_transformers", "jieba", "bm25s", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def _settings(corpus: tuple[str, ...], **overrides: object) -> Settings:
    settings = Settings.load(**overrides)
    if corpus:
        settings = replace(settings, corpus=tuple(corpus))
    return settings


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
def index(
    paths: tuple[str, ...], rebuild: bool, include: tuple[str, ...], exclude: tuple[str, ...]
) -> None:
    """Build (or reuse) the index of PATHS (files or folders; default: the default corpus).

    Prints one JSON object: index counts, and under "files" every file looked at, loaded or
    skipped with the reason (unsupported, empty, binary, encrypted, broken, undecodable, ...).
    """
    try:
        from .indexing import update_index
        from .pipeline import corpus_from_settings, index_location

        settings = _settings(paths, include=include or None, exclude=exclude or None)
        encoder, index_dir = index_location(settings)
        corpus = corpus_from_settings(settings)
        update = update_index(corpus, encoder, index_dir, rebuild=rebuild)
    except LudaoError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        json.dumps(
            {
                "index_dir": str(index_dir),
                "documents": len(corpus.documents) - len(update.excluded),
                "passages": len(update.retriever),
                **update.counts(),
                "excluded_documents": update.excluded,
                "dropped_paragraphs": sum(
                    int(d.meta.get("dropped_paragraphs", 0)) for d in corpus.documents
                ),
                "files_loaded": len(corpus.report.loaded),
                "files_skipped": len(corpus.report.skipped),
                "skipped_by_reason": corpus.report.counts()["skipped_by_reason"],
                "files": [f.to_dict() for f in corpus.report.files],
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
def ask(
    question: str, corpus: tuple[str, ...], top_k: int | None, reader: str | None, as_json: bool
) -> None:
    """Answer QUESTION from the corpus."""
    from .pipeline import Pipeline

    try:
        pipeline = Pipeline.from_settings(_settings(corpus, reader=reader))
        response = pipeline.ask(question, top_k=top_k)
    except LudaoError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(response.to_dict(), ensure_ascii=False))
        return
    if response.no_answer:
        click.echo("The documents do not say. / 文档中没有找到答案。")
    elif response.answers:
        best = response.answers[0]
        click.echo(f"{best.text}  (confidence {best.score:.0%})")
    for i, hit in enumerate(response.hits, 1):
        where = f"p. {hit.passage.page}" if hit.passage.page else f"chars {hit.passage.orig_start}"
        click.echo(f"[{i}] {hit.passage.title} ({where}): {hit.passage.text[:120]}")


@cli.command(name="eval")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--corpus", "corpus", multiple=True, type=click.Path(exists=True))
@click.option("--gold-passage", is_flag=True, help="Read each question against its own paragraph.")
@click.option("--predictions", type=click.Path(dir_okay=False), default=None)
@click.option("--limit", type=click.IntRange(1), default=None)
@click.option("--top-k", type=click.IntRange(1, 50), default=5)
@click.option("--reader", default=None, help="'sentence', a reader folder or a hub id.")
@click.option("--json", "as_json", is_flag=True)
def eval_command(
    file: str,
    corpus: tuple[str, ...],
    gold_passage: bool,
    predictions: str | None,
    limit: int | None,
    top_k: int,
    reader: str | None,
    as_json: bool,
) -> None:
    """Score Ludao on FILE (SQuAD JSON or JSONL questions)."""
    from .evaluation import load_examples
    from .evaluator import evaluate, gold_passage_asker, pipeline_asker, write_predictions
    from .pipeline import Pipeline
    from .readers import reader_from_settings

    try:
        settings = _settings(corpus, reader=reader)
        examples = load_examples(file)[:limit]
        is_squad = not file.endswith(".jsonl") and all(e.context is not None for e in examples)
        if gold_passage:
            model = reader_from_settings(settings)
            ask_fn = gold_passage_asker(model)
            mode, embed, retrieval = "gold-passage", None, False
        else:
            if is_squad and not corpus:
                pipeline = _squad_pipeline(Path(file), settings)
                mode = "open-domain (file paragraphs)"
            else:
                pipeline = Pipeline.from_settings(settings)
                mode = "knowledge base"
            model = pipeline.reader
            ask_fn = pipeline_asker(pipeline, top_k)
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


def _squad_pipeline(path: Path, settings: Settings):
    """A pipeline whose corpus is the SQuAD file's own paragraphs, one passage each."""
    from .evaluation import load_squad_paragraphs
    from .indexing import Corpus, index_dir_for, open_index
    from .pipeline import Pipeline, encoder_from_settings
    from .readers import reader_from_settings
    from .schema import Passage

    passages = [
        Passage(id=pid, doc_id=pid, title=path.stem, text=text, start=0, end=len(text))
        for pid, text in load_squad_paragraphs(path)
    ]
    encoder = encoder_from_settings(settings)
    index_dir = index_dir_for([path], encoder.model_id, settings.home_dir)
    retriever = open_index(Corpus(documents=[], passages=passages), encoder, index_dir)
    return Pipeline(
        retriever=retriever,
        reader=reader_from_settings(settings),
        top_k=settings.top_k,
        reader_top_k=settings.reader_top_k,
        description={"corpus": [str(path)], "passages": len(passages)},
    )


@cli.command()
@click.option("--host", default=None, help="Default 127.0.0.1 (LUDAO_HOST).")
@click.option("--port", type=int, default=None, help="Default 7860 (LUDAO_PORT).")
@click.option("--root-path", default=None, help="Sub-path behind a reverse proxy.")
@click.option("--corpus", "corpus", multiple=True, type=click.Path(exists=True))
@click.option(
    "--watch",
    type=float,
    default=None,
    metavar="SECONDS",
    help="Reload the index when corpus files change, checking every SECONDS (LUDAO_WATCH).",
)
def serve(
    host: str | None,
    port: int | None,
    root_path: str | None,
    corpus: tuple[str, ...],
    watch: float | None,
) -> None:
    """Run the chat, the HTTP API and the embeddable widget in one server."""
    import ui

    args = []
    options = (("--host", host), ("--port", port), ("--root-path", root_path), ("--watch", watch))
    for flag, value in options:
        if value is not None:
            args += [flag, str(value)]
    for path in corpus:
        args += ["--corpus", path]
    ui.main(args)


@cli.command(name="train-reader")
@click.option("--data-dir", type=click.Path(exists=True, file_okay=False), required=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True)
@click.option("--layers", type=click.IntRange(1, 12), default=12)
@click.option("--max-length", type=int, default=256)
@click.option("--stride", type=int, default=96)
@click.option("--batch-size", type=int, default=16)
@click.option("--lr", type=float, default=1.5e-4)
@click.option("--max-steps", type=int, default=1800)
@click.option("--max-minutes", type=float, default=None, help="Anneal and stop by this time.")
@click.option("--english-fraction", type=float, default=0.2)
@click.option("--limit-examples", type=int, default=None)
@click.option("--init-from", type=click.Path(exists=True, file_okay=False), default=None)
@click.option("--seed", type=int, default=13)
@click.option("--device", default="cpu")
def train_reader_command(**options: object) -> None:
    """Fine-tune Ludao's reader on the training files of DATA_DIR (never the evaluation ones)."""
    from .training import TrainConfig, train_reader

    config = TrainConfig(
        data_dir=Path(str(options["data_dir"])),
        out_dir=Path(str(options["out_dir"])),
        num_layers=int(options["layers"]),  # type: ignore[arg-type]
        max_length=int(options["max_length"]),  # type: ignore[arg-type]
        stride=int(options["stride"]),  # type: ignore[arg-type]
        batch_size=int(options["batch_size"]),  # type: ignore[arg-type]
        learning_rate=float(options["lr"]),  # type: ignore[arg-type]
        max_steps=int(options["max_steps"]),  # type: ignore[arg-type]
        max_minutes=options["max_minutes"],  # type: ignore[arg-type]
        english_fraction=float(options["english_fraction"]),  # type: ignore[arg-type]
        limit_examples=options["limit_examples"],  # type: ignore[arg-type]
        device=str(options["device"]),
        init_from=Path(str(options["init_from"])) if options["init_from"] else None,
        seed=int(options["seed"]),  # type: ignore[arg-type]
    )
    click.echo(str(train_reader(config)))


@cli.command(name="package-reader")
@click.argument("checkpoint", type=click.Path(exists=True, file_okay=False))
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True)
@click.option("--calibrate-on", type=int, default=600, help="Held-out questions to calibrate on.")
def package_reader(checkpoint: str, out_dir: str, calibrate_on: int) -> None:
    """Calibrate a trained checkpoint on its held-out split and write the compact reader."""
    from .calibration import calibrate_and_package

    result = calibrate_and_package(Path(checkpoint), Path(out_dir), limit=calibrate_on)
    click.echo(json.dumps(result, ensure_ascii=False, indent=2))


@cli.command()
@click.option("--corpus", "corpus", multiple=True, type=click.Path(exists=True))
@click.option("--questions", type=click.Path(exists=True), default=None)
@click.option("--repeat", type=int, default=3)
@click.option("--json", "as_json", is_flag=True)
def bench(corpus: tuple[str, ...], questions: str | None, repeat: int, as_json: bool) -> None:
    """Latency of retrieval and reading on the corpus, per stage (see benchmarks/)."""
    from benchmarks.latency import run_latency_benchmark

    result = run_latency_benchmark(_settings(corpus), questions=questions, repeat=repeat)
    click.echo(json.dumps(result, ensure_ascii=False, indent=None if as_json else 2))


@cli.group()
def docs() -> None:
    """The documents of a saved index: list, remove, restore.

    A removed document's passages leave the index at once (nothing is re-embedded), and later
    `ludao index` runs of the same corpus keep it out even though its file is still there, until
    `ludao docs restore` brings it back (the next `ludao index` then embeds it again). Delete or
    move the file instead to drop it for good.
    """


def _index_dir(corpus: tuple[str, ...]) -> Path:
    """The folder `ludao index` uses for the corpus (the encoder loads no model to say so)."""
    from .pipeline import index_location

    return index_location(_settings(corpus))[1]


_CORPUS_OPTION = click.option(
    "--corpus",
    "corpus",
    multiple=True,
    type=click.Path(exists=True),
    help="The indexed files or folders, as given to `ludao index` (default: the default corpus).",
)


@docs.command(name="list")
@_CORPUS_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of a table.")
def docs_list(corpus: tuple[str, ...], as_json: bool) -> None:
    """List the indexed documents (id, source, passages, SHA-256, indexed time)."""
    from dataclasses import asdict

    from .indexing import list_documents

    try:
        listing = list_documents(_index_dir(corpus))
    except LudaoError as exc:
        raise click.ClickException(str(exc)) from exc
    if as_json:
        data = {
            "index_dir": str(listing.index_dir),
            "created": listing.created,
            "documents": [asdict(d) for d in listing.documents],
            "removed": listing.excluded,
        }
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    click.echo("id\tpassages\tsha256\tindexed\tsource")
    for d in listing.documents:
        digest = (d.sha256 or "-")[:12]
        click.echo(f"{d.id}\t{d.passages}\t{digest}\t{d.indexed or '-'}\t{d.source}")
    for e in listing.excluded:
        click.echo(f"{e.get('id')}\tremoved {e.get('removed', '')}\t{e.get('source', '')}")


@docs.command(name="remove")
@click.argument("document")
@_CORPUS_OPTION
def docs_remove(document: str, corpus: tuple[str, ...]) -> None:
    """Remove DOCUMENT (an id from `ludao docs list`, or its file's path) from the index."""
    from .indexing import remove_document

    try:
        record = remove_document(_index_dir(corpus), document)
    except LudaoError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"removed {record.id} ({record.passages} passages); `ludao docs restore` undoes it")


@docs.command(name="restore")
@click.argument("document")
@_CORPUS_OPTION
def docs_restore(document: str, corpus: tuple[str, ...]) -> None:
    """Undo `ludao docs remove DOCUMENT`; the next `ludao index` embeds it again."""
    from .indexing import restore_document

    try:
        entry = restore_document(_index_dir(corpus), document)
    except LudaoError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"restored {entry.get('id')}; run `ludao index` to put it back in the index")


def main() -> None:  # pragma: no cover - console entry point
    try:
        cli()
    except KeyboardInterrupt:
        sys.exit(130)
