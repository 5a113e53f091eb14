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

from rerankkit.eval.datasets import load_beir
from rerankkit.eval.runs import first_stage_run
from rerankkit.train.data import parse_training_jsonl, queries_from_beir
from rerankkit.train.losses import LOSSES, build_loss, columns_for
from rerankkit.train.mining import add_negatives, mine_negatives
from rerankkit.train.trainer import CHECKPOINTS, TrainConfig, prepare, train

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

    from rerankkit.train.losses import hinge

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
    from rerankkit.train.model import load_student

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
    from rerankkit.cli.commands import main

    output = tmp_path / "out"
    argv = ["train", "--model", str(tiny), "--data", str(beir), "--output", str(output)]
    argv += ["--loss", "margin", "--negatives", "3", "--ranks", "1", "6", "--max-steps", "4"]
    argv += ["--batch-size", "4", "--max-length", "48", "--no-bf16", "--eval-depth", "6"]
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
    ours = CrossEncoderReranker(str(output), dtype="float32", max_length=48).score(query, docs)
    theirs = CrossEncoder(str(output), max_length=48).predict([(query, d) for d in docs])
    assert ours == pytest.approx([float(s) for s in theirs], abs=1e-5)
    before = CrossEncoderReranker(str(tiny), dtype="float32", max_length=48).score(query, docs)
    assert ours != pytest.approx(before, abs=1e-6)  # the weights did change


@pytest.mark.slow
def test_resume_continues_from_a_checkpoint(tiny: Path, beir: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    class StopAt(TrainerCallback):  # an interruption after step 2 (checkpoint-2 is saved)
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            if state.global_step == 2:
                control.should_training_stop = True
            return control

    straight = train(_config(tiny, beir, tmp_path / "straight", max_steps=4, save_steps=2))
    interrupted = _config(tiny, beir, tmp_path / "resumed", max_steps=4, save_steps=2)
    first = train(interrupted, callbacks=[StopAt()])
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
