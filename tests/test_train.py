"""``rerankkit.train`` and ``rerankkit train`` on a tiny random BERT and a tiny BEIR folder.

Every loss trains and lowers its own loss on its rows; mined negatives never include a judged
positive; the output folder loads in ``CrossEncoderReranker`` and sentence-transformers
``CrossEncoder`` with the same scores; resuming from a checkpoint ends where an uninterrupted
run ends. Training runs are a few steps of a 2-layer, 32-wide BERT (fp32, deterministic).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from conftest import DATA, build_tiny_bert, requires_shared

pytest.importorskip("sentence_transformers")

from rerankkit.eval._datasets import load_beir
from rerankkit.eval._runs import first_stage_run
from rerankkit.train._data import parse_training_jsonl, queries_from_beir
from rerankkit.train._examples import columns_for
from rerankkit.train._losses import LOSSES, build_loss
from rerankkit.train._mining import add_negatives, mine_negatives
from rerankkit.train._trainer import CHECKPOINTS, TrainConfig, prepare, train

TOPICS = {
    "cats": "cats purr and sleep in warm sunny windows",
    "rockets": "rockets burn fuel to reach orbit around the earth",
    "bread": "bread dough rises with yeast before baking in an oven",
    "rivers": "rivers carry water and sediment down to the sea",
    "chess": "chess players move a bishop diagonally across the board",
    "violins": "violins have four strings played with a bow",
}


def _write_beir(root: Path) -> Path:
    """A tiny BEIR folder: per topic one relevant document and several distractors that share
    some words, train queries q1-q4 and test queries q5-q6."""
    corpus, queries, train, test = [], [], [], []
    for n, (topic, text) in enumerate(TOPICS.items(), start=1):
        corpus.append({"_id": f"{topic}-0", "title": topic, "text": text})
        for k in range(1, 6):
            filler = " ".join(text.split()[:k]) + f" unrelated note {k} about {topic} history"
            corpus.append({"_id": f"{topic}-{k}", "title": "", "text": filler})
        queries.append({"_id": f"q{n}", "text": f"how do {text.split()[0]} {text.split()[1]}"})
        (train if n <= 4 else test).append(f"q{n}\t{topic}-0\t1")
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (root / "qrels").mkdir(exist_ok=True)
    header = "query-id\tcorpus-id\tscore\n"
    (root / "qrels" / "train.tsv").write_text(header + "\n".join(train) + "\n")
    (root / "qrels" / "test.tsv").write_text(header + "\n".join(test) + "\n")
    return root


@pytest.fixture(scope="module")
def beir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_beir(tmp_path_factory.mktemp("beir"))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny-train-ce"), seed=3)


def _config(model: Path, data: Path, output: Path, **overrides: Any) -> TrainConfig:
    settings: dict[str, Any] = {
        "model": str(model),
        "data": str(data),
        "output": str(output),
        "ranks": (1, 6),
        "negatives": 3,
        "max_steps": 8,
        "batch_size": 4,
        "learning_rate": 2e-3,
        "warmup_ratio": 0.0,
        "max_length": 48,
        "bf16": False,
        "eval_split": None,
        "progress": False,
    }
    settings.update(overrides)
    return TrainConfig(**settings)


def _loss_on_rows(model_dir: Path | str, loss: str, rows: dict[str, list[Any]]) -> float:
    """The loss of ``model_dir`` on all ``rows``, batched by the trainer's own collator."""
    import torch
    from sentence_transformers.cross_encoder import CrossEncoder
    from sentence_transformers.cross_encoder.data_collator import CrossEncoderDataCollator

    model = CrossEncoder(str(model_dir), max_length=48)
    module = build_loss(loss, model)
    names = columns_for(loss)
    features = [
        dict(zip(names, values, strict=True))
        for values in zip(*(rows[n] for n in names), strict=True)
    ]
    batch = CrossEncoderDataCollator(preprocess_fn=model.preprocess)(features)
    labels = batch.pop("label", None)
    model.eval()
    with torch.no_grad():
        return float(module(list(batch.values()), labels))


# --------------------------------------------------------------------------- losses


@pytest.mark.slow
@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_trains_and_lowers_its_loss(
    loss: str, tiny: Path, beir: Path, tmp_path: Path
) -> None:
    # the teacher: the packaged bi-encoder and the keyword fake, z-score fused per query (the
    # keyword fake alone gives hard negatives the positive's score: zero margins)
    teacher = ("embedding:", "keyword:") if loss == "marginmse" else ()
    config = _config(tiny, beir, tmp_path / loss, loss=loss, teacher=teacher)
    prepared = prepare(config)
    assert prepared.rows["query"], "no rows to train on"
    before = _loss_on_rows(tiny, loss, prepared.rows)
    result = train(config)
    after = _loss_on_rows(result.output, loss, prepared.rows)
    assert result.record["training"]["steps"] == 8
    assert after < before, f"{loss}: loss {before:.4f} -> {after:.4f}"


def test_margin_loss_is_the_hinge_formula() -> None:
    import torch

    from rerankkit.train._losses import hinge

    positive = torch.tensor([2.0, 0.3, -1.0, 5.0])
    negative = torch.tensor([0.0, 0.0, 1.0, 4.5])
    expected = (
        sum(
            max(0.0, 1.0 - (p - n))
            for p, n in zip([2.0, 0.3, -1.0, 5.0], [0.0, 0.0, 1.0, 4.5], strict=True)
        )
        / 4
    )
    assert float(hinge(positive, negative, 1.0)) == pytest.approx(expected)


def test_marginmse_needs_a_teacher(tiny: Path, beir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="teacher"):
        _config(tiny, beir, tmp_path, loss="marginmse")


# --------------------------------------------------------------------------- mining


def test_mined_negatives_skip_judged_positives_at_any_rank() -> None:
    rng = random.Random(7)
    for _ in range(200):
        docs = [f"d{i}" for i in range(rng.randint(1, 30))]
        run = {"q": {d: rng.random() for d in docs}}
        judged = {d: rng.choice([0, 0, 1, 2]) for d in rng.sample(docs, rng.randint(0, len(docs)))}
        first = rng.randint(1, 10)
        mined = mine_negatives(
            run,
            {"q": judged},
            ranks=(first, first + rng.randint(0, 20)),
            count=rng.randint(1, 8),
            sampling=rng.choice(["top", "random"]),
            seed=rng.randint(0, 9),
        )["q"]
        assert not {d for d in mined if judged.get(d, 0) > 0}
        assert len(mined) == len(set(mined))


def test_mining_window_and_count() -> None:
    run = {"q": {f"d{i}": float(100 - i) for i in range(1, 21)}}  # d1 best ... d20 worst
    qrels = {"q": {"d11": 1, "d12": 0}}
    assert mine_negatives(run, qrels, ranks=(10, 20), count=3) == {"q": ["d10", "d12", "d13"]}
    sampled = mine_negatives(run, qrels, ranks=(10, 20), count=3, sampling="random", seed=1)["q"]
    assert len(sampled) == 3 and "d11" not in sampled
    assert all(10 <= int(d[1:]) <= 20 for d in sampled)


@requires_shared
def test_scifact_train_negatives_never_include_a_judged_positive() -> None:
    dataset = load_beir(DATA / "scifact", split="train")
    assert (len(dataset.judged_query_ids), sum(map(len, dataset.qrels.values()))) == (807, 917)
    run = first_stage_run(dataset, "bm25", 100)
    mined = mine_negatives(run, dataset.qrels, ranks=(1, 100), count=10)
    queries = add_negatives(queries_from_beir(dataset), mined, dataset.corpus)
    positives_in_top = 0
    for query in queries:
        judged_positive = {d for d, g in dataset.qrels[query.query_id].items() if g > 0}
        assert not judged_positive & set(query.negative_ids)
        assert len(query.negative_ids) == 10
        positives_in_top += bool(judged_positive & set(list(run[query.query_id])[:10]))
    assert positives_in_top > 400  # the window held positives, and they were skipped


def test_copies_of_a_positive_are_never_negatives_mined_or_judged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 25, kind 6: a corpus copy of a positive under another id, mined (q1) or judged 0
    in the qrels (q2), is skipped and counted, not trained on as (q, P, 0.0)."""
    import logging

    root = _write_beir(tmp_path / "beir")
    with (root / "corpus.jsonl").open("a") as corpus:
        for topic in ("cats", "rockets"):  # same title and text as the judged positive
            corpus.write(
                json.dumps({"_id": f"{topic}-copy", "title": topic, "text": TOPICS[topic]})
            )
            corpus.write("\n")
    with (root / "qrels" / "train.tsv").open("a") as qrels:
        qrels.write("q2\trockets-copy\t0\n")
    config = _config(
        Path("unused-model"), root, tmp_path / "out", loss="margin", negatives=5, ranks=(1, 7)
    )
    with caplog.at_level(logging.WARNING, logger="rerankkit"):
        prepared = prepare(config)
    by_id = {q.query_id: q for q in prepared.queries}
    # in BM25's top 7 with q1's positive and 5 distractors: skipped, the window's next fills in
    assert "cats-copy" not in by_id["q1"].negative_ids and len(by_id["q1"].negatives) == 5
    assert "rockets-copy" not in by_id["q2"].negative_ids  # judged 0: skipped
    for query in prepared.queries:
        assert not set(query.positives) & set(query.negatives)
        assert len(query.negatives) == len(query.negative_ids)
    for row in zip(*prepared.rows.values(), strict=True):
        assert row[1] != row[2]  # (query, positive, negative): never the same passage
    assert prepared.data["counts"]["negatives_equal_to_a_positive_skipped"] == 2
    assert "skipped 2 negatives whose text equals one of their query's positives" in caplog.text


# --------------------------------------------------------------------------- data


def test_jsonl_triples_and_pairs() -> None:
    from rerankkit.errors import DatasetError

    lines = [
        '{"query": "a", "positive": "p1", "negative": "n1"}',
        '{"query": "a", "passage": "p2", "label": 2}',
        '{"query": "b", "passage": "p3", "label": 1}',
    ]
    queries = parse_training_jsonl(lines)
    assert [(q.query, q.positives, q.negatives) for q in queries] == [
        ("a", ("p1", "p2"), ("n1",)),
        ("b", ("p3",), ()),
    ]
    with pytest.raises(DatasetError, match=r"train.jsonl:1: .*label"):
        parse_training_jsonl(['{"query": "a", "passage": "p", "label": "yes"}'])
    with pytest.raises(DatasetError, match="no relevant passage"):
        parse_training_jsonl(['{"query": "a", "passage": "p", "label": 0}'])


def test_jsonl_keys_that_would_be_dropped_are_refused() -> None:
    """A list of negatives, or any other key, would be read past silently: refused by line."""
    from rerankkit.errors import DatasetError

    many = '{"query": "q", "positive": "p", "negative": "n", "negatives": ["x", "y"]}'
    with pytest.raises(DatasetError, match=r"train.jsonl:2: unknown key 'negatives'.*one line per"):
        parse_training_jsonl(['{"query": "q", "positive": "p", "negative": "m"}', many])
    with pytest.raises(DatasetError, match=r"unknown keys 'id', 'score': .*\"passage\", \"label\""):
        parse_training_jsonl(['{"query": "q", "passage": "p", "label": 1, "id": 3, "score": 2}'])


# --------------------------------------------------------------------------- model


@pytest.mark.slow
def test_plain_encoder_needs_the_new_head_opt_in(beir: Path, tmp_path: Path) -> None:
    from transformers import AutoTokenizer, BertConfig, BertModel

    from conftest import _minilm_tokenizer_dir

    encoder = tmp_path / "encoder"
    config = BertConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    BertModel(config).save_pretrained(encoder)
    AutoTokenizer.from_pretrained(_minilm_tokenizer_dir()).save_pretrained(encoder)
    with pytest.raises(ValueError, match=r"plain encoder.*new_head=True"):
        train(_config(encoder, beir, tmp_path / "refused", max_steps=1))
    result = train(_config(encoder, beir, tmp_path / "new-head", max_steps=2, new_head=True))
    assert result.record["training"]["steps"] == 2
    assert (
        "ForSequenceClassification"
        in json.loads((result.output / "config.json").read_text())["architectures"][0]
    )


def test_a_classifier_config_saved_without_its_head_needs_the_opt_in(tmp_path: Path) -> None:
    """The config names a classifier, but the checkpoint has only the encoder: the head would
    be random, so it is refused like a plain encoder (issue 11's detection)."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from conftest import _minilm_tokenizer_dir
    from rerankkit.errors import ModelLoadError
    from rerankkit.train._model import load_student

    headless = tmp_path / "headless"
    config = BertConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64
    )
    BertModel(config).save_pretrained(headless)
    AutoTokenizer.from_pretrained(_minilm_tokenizer_dir()).save_pretrained(headless)
    saved = json.loads((headless / "config.json").read_text())
    saved |= {"architectures": ["BertForSequenceClassification"], "num_labels": 1}
    (headless / "config.json").write_text(json.dumps(saved))
    with pytest.raises(ModelLoadError, match=r"classifier\.weight.*new_head=True"):
        load_student(str(headless), new_head=False, max_length=32)
    student = load_student(str(headless), new_head=True, max_length=32)
    assert student.num_labels == 1


# --------------------------------------------------------------------------- output, resume, CLI


@pytest.mark.slow
def test_cli_output_round_trips_through_both_loaders(
    tiny: Path, beir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sentence_transformers.cross_encoder import CrossEncoder

    from rerankkit import CrossEncoderReranker
    from rerankkit.cli._commands import main

    output = tmp_path / "out"
    argv = ["train", "--model", str(tiny), "--data", str(beir), "--output", str(output)]
    argv += ["--loss", "margin", "--negatives", "3", "--ranks", "1", "6", "--max-steps", "4"]
    argv += ["--batch-size", "4", "--max-length", "48", "--no-bf16", "--eval-top-n", "6"]
    argv += ["--eval-dtype", "float32", "--no-progress"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "| before |" in printed and "| after |" in printed and f"wrote {output}" in printed

    record = json.loads((output / "training.json").read_text())
    assert record["training"]["steps"] == 4
    assert [s["name"] for s in record["evaluation"]["systems"]] == ["bm25", "before", "after"]
    card = (output / "README.md").read_text()
    for fact in ("margin", "max(0, margin - (s(q, d+) - s(q, d-)))", '"steps": 4', "| after |"):
        assert fact in card

    query = "how do cats purr"
    docs = [TOPICS["cats"], TOPICS["bread"], "cats history"]
    # the training length is saved (tokenizer model_max_length) and is both loaders' default
    reloaded = CrossEncoderReranker(str(output), dtype="float32")
    assert reloaded.max_length == 48
    ours = reloaded.score(query, docs)
    theirs = CrossEncoder(str(output)).predict([(query, d) for d in docs])
    assert ours == pytest.approx([float(s) for s in theirs], abs=1e-5)
    before = CrossEncoderReranker(str(tiny), dtype="float32", max_length=48).score(query, docs)
    assert ours != pytest.approx(before, abs=1e-6)  # the weights did change


def _interrupt_after(step: int) -> Any:
    """A trainer callback that stops the run after ``step`` (an interruption; with
    ``save_steps=step`` the checkpoint of that step is saved)."""
    from transformers import TrainerCallback

    class StopAt(TrainerCallback):
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if state.global_step == step:
                control.should_training_stop = True
            return control

    return StopAt()


@pytest.mark.slow
def test_resume_continues_from_a_checkpoint(tiny: Path, beir: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file

    straight = train(_config(tiny, beir, tmp_path / "straight", max_steps=4, save_steps=2))
    interrupted = _config(tiny, beir, tmp_path / "resumed", max_steps=4, save_steps=2)
    first = train(interrupted, callbacks=[_interrupt_after(2)])
    assert first.record["training"]["steps"] == 2
    assert (tmp_path / "resumed" / CHECKPOINTS / "checkpoint-2").is_dir()
    stopped = load_file(first.output / "model.safetensors")  # before the resume overwrites it
    resumed = train(interrupted, resume=True)
    assert resumed.record["training"]["steps"] == 4
    assert resumed.record["training"]["resumed"] is True

    a = load_file(straight.output / "model.safetensors")
    b = load_file(resumed.output / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert not all(torch.allclose(a[k], stopped[k], atol=1e-6) for k in a)


def test_resume_refuses_settings_other_than_the_checkpoints_run(
    tiny: Path, beir: Path, tmp_path: Path
) -> None:
    """Resuming with another loss or learning rate would mix two runs in one model and a card
    that names only the last; the checkpoints' run.json says what they were trained with."""
    from rerankkit.train._trainer import RUN_SETTINGS

    output = tmp_path / "run"
    config = _config(tiny, beir, output, max_steps=4, save_steps=2)
    train(config, callbacks=[_interrupt_after(2)])
    assert json.loads((output / CHECKPOINTS / RUN_SETTINGS).read_text())["loss"] == "bce"
    other = _config(
        tiny, beir, output, max_steps=4, save_steps=2, loss="margin", learning_rate=1e-4
    )
    with pytest.raises(ValueError, match=r"resume: .*trained with other learning_rate, loss;"):
        train(other, resume=True)
    # the evaluation settings may change on a resume
    resumed = train(config.model_copy(update={"eval_top_n": config.eval_top_n + 1}), resume=True)
    assert resumed.record["training"]["steps"] == 4


# --------------------------------------------------------------------------- bad input


def test_jsonl_refuses_contradictions_and_mixed_lines_and_keeps_grades() -> None:
    from rerankkit.errors import DatasetError

    with pytest.raises(DatasetError, match=r"train.jsonl:2: passage 'p' is given as relevant"):
        parse_training_jsonl(
            [
                '{"query": "a", "passage": "p", "label": 1}',
                '{"query": "a", "passage": "p", "label": 0}',
            ]
        )
    with pytest.raises(DatasetError, match=r"train.jsonl:1: .*relevant \(line 1\)"):
        parse_training_jsonl(['{"query": "a", "positive": "p", "negative": "p"}'])
    with pytest.raises(DatasetError, match=r"train.jsonl:1: a line is either a triple"):
        parse_training_jsonl(
            ['{"query": "a", "positive": "p", "negative": "n", "passage": "x", "label": 0}']
        )
    queries = parse_training_jsonl(
        [
            '{"query": "a", "passage": "best", "label": 3}',
            '{"query": "a", "positive": "good", "negative": "bad"}',
            '{"query": "a", "passage": "good", "label": 2}',  # again, higher: grade 2 kept
        ]
    )
    assert queries[0].positives == ("best", "good")
    assert queries[0].positive_grades() == (3, 2)


def test_jsonl_that_is_empty_or_not_text_is_named(tmp_path: Path) -> None:
    import gzip

    from rerankkit.errors import DatasetError
    from rerankkit.train._data import load_training_jsonl

    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(DatasetError, match=r"empty.jsonl: no training lines"):
        load_training_jsonl(empty)
    packed = tmp_path / "train.jsonl.gz"
    packed.write_bytes(gzip.compress(b'{"query": "a", "passage": "p", "label": 1}\n'))
    with pytest.raises(DatasetError, match=r"train.jsonl.gz:1: not UTF-8 text"):
        load_training_jsonl(packed)


def test_listwise_labels_are_the_judged_grades() -> None:
    from rerankkit.train._data import TrainQuery
    from rerankkit.train._examples import rows_for

    graded = TrainQuery("q", ("top", "ok"), ("n0",), query_id="q", grades=(3, 1))
    mined = add_negatives([graded], {"q": ["d9"]}, {"d9": "mined"})
    assert mined[0].grades == (3, 1)  # mining keeps them
    assert rows_for("listwise", mined)["labels"] == [[3.0, 1.0, 0.0, 0.0]]
    ungraded = TrainQuery("q", ("p",), ("n",))
    assert rows_for("listwise", [ungraded])["labels"] == [[1.0, 0.0]]


def test_beir_grades_reach_the_training_queries(tmp_path: Path) -> None:
    root = _write_beir(tmp_path / "graded")
    qrels = root / "qrels" / "train.tsv"
    qrels.write_text(qrels.read_text() + "q1\tcats-1\t2\nq1\tcats-2\t0\n")
    (query,) = [q for q in queries_from_beir(load_beir(root, split="train")) if q.query_id == "q1"]
    assert query.positive_grades() == (2, 1)  # highest grade first
    assert query.negative_ids == ("cats-2",)


def test_no_rows_says_why_before_a_teacher_scores(beir: Path, tmp_path: Path) -> None:
    from rerankkit.train._trainer import check_trainable

    data = tmp_path / "pairs.jsonl"
    data.write_text('{"query": "q", "passage": "p", "label": 1}\n')
    with pytest.raises(ValueError, match=r"pairs.jsonl has none \(JSONL data is never mined\)"):
        prepare(_config(Path("m"), data, tmp_path / "o", loss="margin"))
    config = _config(Path("m"), beir, tmp_path / "o", loss="listwise", negatives=0)
    with pytest.raises(ValueError, match=r"mine some \(negatives > 0, now 0\)"):
        check_trainable(config, queries_from_beir(load_beir(beir, split="train")), beir=True)


def test_check_start_refuses_harmful_or_doomed_runs(tiny: Path, beir: Path, tmp_path: Path) -> None:
    import os

    from rerankkit.train._trainer import check_start

    def refused(match: str, resume: bool | str = False, **overrides: Any) -> None:
        output = Path(overrides.pop("output", tmp_path / "new"))
        with pytest.raises(ValueError, match=match):
            check_start(_config(tiny, beir, output, **overrides), resume=resume)

    a_file = tmp_path / "a-file"
    a_file.write_text("mine")
    refused(r"output .*a-file' exists and is not a folder", output=str(a_file))
    refused(r"output .*sub' is inside .*a-file', which is a file", output=str(a_file / "sub"))
    refused(r"is the starting model's folder", output=str(tiny))
    foreign = tmp_path / "project"
    foreign.mkdir()
    (foreign / "README.md").write_text("my project")
    refused(r"rerankkit train did not write", output=str(foreign))
    assert (foreign / "README.md").read_text() == "my project"
    refused(r"resume: no checkpoint in", resume=True)
    refused(r"resume: checkpoint folder not found", resume=str(tmp_path / "nowhere"))
    # a model or data folder: the trainer failed after mining ("Unrecognized model in ...")
    refused(r"resume: .* is not a training checkpoint \(no trainer_state.json\)", resume=str(tiny))
    refused(
        r"teacher: reranker spec 'keywrd:': unknown kind", loss="marginmse", teacher=["keywrd:"]
    )
    refused(r"teacher: .*unknown option x", loss="marginmse", teacher=["keyword:?x=1"])
    refused(r"eval_data must be a BEIR folder", eval_split="test", eval_data=str(a_file))
    refused(r"eval_split 'dev': .*qrels/dev.tsv", eval_split="dev")
    refused(r"eval_split 'test' is the training split of", split="test", eval_split="test")
    refused(r"eval_split 'train' is the training split of", eval_split="train", eval_data=str(beir))
    refused(r"eval_dtype: dtype must be", eval_split="test", eval_dtype="fp64")
    with pytest.raises(ValueError, match=r"teacher is only used by loss 'marginmse'"):
        _config(tiny, beir, tmp_path / "o", teacher=["keyword:"])

    # checkpoints of an unfinished run: refused without resume; a finished run's: replaced
    earlier = tmp_path / "earlier"
    checkpoint = earlier / CHECKPOINTS / "checkpoint-4"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text("{}")
    config = _config(tiny, beir, earlier)
    with pytest.raises(ValueError, match=r"unfinished run \(newest: checkpoint-4\).*--resume"):
        check_start(config)
    assert check_start(config, resume=True) == []
    (earlier / "training.json").write_text("{}")
    os.utime(checkpoint / "trainer_state.json", (1_000_000, 1_000_000))
    assert check_start(config) == [checkpoint]
    assert checkpoint.is_dir()  # check_start deletes nothing


def test_train_checks_everything_before_mining(
    tiny: Path, beir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rerankkit.errors import ModelLoadError
    from rerankkit.train import _trainer as trainer

    def no_prepare(config: TrainConfig) -> None:
        raise AssertionError("prepare ran before the checks")

    monkeypatch.setattr(trainer, "prepare", no_prepare)
    with pytest.raises(ValueError, match="unknown kind"):
        train(_config(tiny, beir, tmp_path / "o", loss="marginmse", teacher=["keywrd:"]))
    with pytest.raises(ModelLoadError, match="cannot load starting model"):
        train(_config(tmp_path / "no-model", beir, tmp_path / "o"))
    assert not (tmp_path / "o").exists()


def test_training_json_stays_standard_json_when_the_loss_diverged(tmp_path: Path) -> None:
    from rerankkit.train._trainer import write_record

    record = {"config": {"loss": "bce"}, "training": {"train_loss": float("nan"), "steps": 3}}
    write_record(tmp_path, record)

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} is not JSON")

    text = (tmp_path / "training.json").read_text()
    assert json.loads(text, parse_constant=refuse)["training"]["train_loss"] is None
    assert "NaN" not in (tmp_path / "README.md").read_text()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--negatives", "3"], "argument --negatives: used with a BEIR folder as --data only"),
        (["--split", "dev"], "argument --split: used with a BEIR folder as --data only"),
        (["--teacher", "keyword:"], "teacher is only used by loss 'marginmse'"),
        (["--loss", "marginmse"], "loss 'marginmse' distils a teacher"),
        (["--margin", "2"], "argument --margin: only --loss margin uses it"),
        (["--warmup-ratio", "1"], "argument --warmup-ratio: input should be less than 1, got 1"),
        (["--no-eval", "--eval-data", "x"], "argument --eval-data: --no-eval turns"),
        (["--eval-split", "dev"], "argument --eval-split: "),
        (["--eval-top-n", "5"], "argument --eval-top-n: "),
        (["--no-eval", "--eval-dtype", "float16"], "argument --eval-dtype: --no-eval turns"),
        (["--first-stage", "dense"], "argument --first-stage: nothing is mined or evaluated"),
        (["--loss", "margin"], "has none (JSONL data is never mined)"),
    ],
)
def test_cli_refuses_ignored_or_unusable_options_in_one_line(
    extra: list[str],
    message: str,
    tiny: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "pairs.jsonl"
    data.write_text('{"query": "q", "passage": "p", "label": 1}\n')
    _refused_in_one_line(
        ["--model", str(tiny), "--data", str(data), *extra], message, tmp_path, capsys
    )


def _refused_in_one_line(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``rerankkit train ARGV --output OUT`` exits 2 with one line holding ``message``, before
    anything is written."""
    from rerankkit.cli._commands import main

    output = tmp_path / "out"
    assert main(["train", *argv, "--output", str(output)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "rerankkit train: error: " in err and message in err, err
    assert not output.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--negatives", "0", "--sampling", "random"], "argument --sampling: --negatives 0"),
        (["--negatives", "0", "--ranks", "1", "5"], "argument --ranks: --negatives 0 mines"),
        (["--no-eval", "--eval-top-n", "5"], "argument --eval-top-n: --no-eval turns"),
        (["--no-eval", "--eval-split", "dev"], "argument --eval-split: --no-eval turns"),
        (["--no-eval", "--negatives", "0", "--first-stage", "dense"], "argument --first-stage"),
    ],
)
def test_cli_refuses_options_a_beir_run_would_ignore(
    extra: list[str],
    message: str,
    beir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _refused_in_one_line(["--model", "m", "--data", str(beir), *extra], message, tmp_path, capsys)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            ["--negatives", "-1"],
            "argument --negatives: input should be greater than or equal to 0, got -1",
        ),
        (["--epochs", "0"], "argument --epochs: input should be greater than 0, got 0"),
        (
            ["--warmup-ratio", "1.5"],
            "argument --warmup-ratio: input should be less than 1, got 1.5",
        ),
        (["--seed", "-1"], "argument --seed: input should be greater than or equal to 0, got -1"),
        (
            ["--seed", str(2**32)],
            "argument --seed: input should be less than or equal to 4294967295",
        ),
        (
            ["--learning-rate", "nan"],
            "argument --learning-rate: input should be a finite number, got nan",
        ),
        (
            ["--batch-size", "2.5"],
            "argument --batch-size: input should be a valid integer, unable to parse string as "
            "an integer, got 2.5",
        ),
        (
            ["--ranks", "5", "2"],
            "argument --ranks: ranks must be (first, last) with 1 <= first <= last, got (5, 2)",
        ),
    ],
)
def test_cli_out_of_range_numbers_name_the_argument(
    extra: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """TrainConfig's own constraints, one line naming the option (the options come from it)."""
    argv = ["--model", "m", "--data", "d", *extra]
    _refused_in_one_line(argv, f"rerankkit train: error: {message}", tmp_path, capsys)


def test_mining_searches_only_the_sampled_training_queries(
    beir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rerankkit.train import _trainer as trainer

    searched: list[list[str]] = []

    def spy(dataset: Any, *args: Any, **kwargs: Any) -> Any:
        searched.append(dataset.judged_query_ids)
        return first_stage_run(dataset, *args, **kwargs)

    monkeypatch.setattr(trainer, "first_stage_run", spy)
    prepared = prepare(_config(Path("m"), beir, tmp_path / "o", max_queries=2))
    assert searched == [[q.query_id for q in prepared.queries]] and len(searched[0]) == 2


def test_path_arguments_are_recorded_as_strings() -> None:
    """A Path (natural from Python) is a str in the record: json.dumps failed on it after the
    whole training run, before training.json was written."""
    from rerankkit.train._trainer import training_record

    config = TrainConfig(
        model=Path("m"),
        data=Path("d"),
        output=Path("o"),
        eval_data=Path("e"),  # type: ignore[arg-type]
    )
    assert (config.model, config.data, config.output, config.eval_data) == ("m", "d", "o", "e")
    json.dumps(training_record(config, command=None, data={}, training={}), allow_nan=False)


def test_a_single_teacher_spec_string_is_refused_not_split_into_characters() -> None:
    with pytest.raises(
        TypeError, match=r"teacher must be a list of reranker specs.*\['keyword:'\]"
    ):
        TrainConfig(model="m", data="d", output="o", loss="marginmse", teacher="keyword:")  # type: ignore[arg-type]


def test_warmup_ratio_of_one_is_refused() -> None:
    # transformers reads warmup_steps=1.0 as one step, not the whole run
    with pytest.raises(ValueError, match=r"warmup_ratio\n  Input should be less than 1 "):
        TrainConfig(model="m", data="d", output="o", warmup_ratio=1.0)


def test_the_card_never_records_a_teacher_api_key() -> None:
    from rerankkit.cli._train import recorded_command
    from rerankkit.train._trainer import training_record

    spec = "cohere:rerank-v3.5?api_key=sk-secret"
    config = TrainConfig(model="m", data="d", output="o", loss="marginmse", teacher=[spec])
    record = training_record(
        config, command=recorded_command(["train", "--teacher", spec]), data={}, training={}
    )
    assert "sk-secret" not in json.dumps(record)
    assert record["config"]["teacher"] == ["cohere:rerank-v3.5?api_key=***"]
