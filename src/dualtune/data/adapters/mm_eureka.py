"""MM-Eureka RL training set (``FanqingM/MM-Eureka-Dataset``: 54,931 rows, RAP's training set) and its K12
part ``FanqingM/MMK12`` through the same adapter. No test split, no rationales (RL data: question + answer).

SOURCE:
* MM-Eureka-Dataset, as the MM-EUREKA repository README (ModalMinds/MM-EUREKA, "Data Preparation") and
  the loaders that read it describe it: ``dataset.jsonl`` at the repo root, one object a line with ``id``,
  ``conversations`` (``[{"role": "system" | "user", "content": str}, ...]``), ``answer`` (a gold that
  math-verify parses, often LaTeX) and ``image_urls`` (a list of ``file:///...`` paths); the images come in
  ``K12.zip`` and ``MMPR.zip``, whose members sit under the authors' cluster prefix
  ``.../OpenRLHF-InternVL/dataset/report_data/{K12,MMPR}/``. Unzip them so that ``K12/`` and
  ``MMPR/images/...`` sit next to ``dataset.jsonl`` (the layout siiRL's MM-Eureka recipe documents)::

      hf download FanqingM/MM-Eureka-Dataset --repo-type dataset --local-dir DIR
      cd DIR && for f in K12 MMPR; do
          unzip -q $f.zip -d tmp_$f && mv "$(find tmp_$f -type d -path "*/report_data/$f")" .; done

  then ``domain.path=DIR``. An image URL is resolved as: ``file://`` dropped; the part after
  ``/report_data/`` taken relative to the snapshot; otherwise an existing absolute path as is, else the
  path relative to the snapshot (a missing file is a counted ``missing_image_file`` skip naming the row).
* MMK12 (``domain.path=FanqingM/MMK12`` or its snapshot): hub parquet with ``id``, ``subject``, ``question``,
  ``answer``, ``image`` (as lmms-eval's mmk12 task and the MMK12 loaders read it).

Choices made here:
* question: the user turn's text (``<image>`` placeholders removed). Some user turns carry the authors'
  format instruction ("You should first think about the reasoning process ... <answer> </answer> ...
  Question: ..."); the question is then the text after that ``Question:`` marker, since dualtune's mode
  templates add their own instruction. System turns are ignored.
* answer type per row (rules in `dualtune.data.adapters.training_sets`): options are parsed from the
  question text (K12 multiple-choice items list them inline) and stripped from it when the gold is one of
  their letters; otherwise number / math / text by the gold's form. The official reward is rule-based
  (math-verify), so no judge is recorded.
* subtask: the row's own ``subject`` / ``category`` / ``source`` field (MMK12: math, physics, chemistry,
  biology); MM-Eureka rows have none, so the fallback is the image's source collection: ``K12`` or the
  MMPR source folder (``MMPR/images/<source>/...``, e.g. geoqa_plus, ai2d), else ``all``.
  ``domain.options.subtask_field`` names another column.
* ``cot`` stays empty: the loader warns with the count (CoT training has no targets).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from dualtune.data.adapters import AdapterContext, SkipRow
from dualtune.data.adapters.training_sets import (
    check_record, image_ref, list_field, local_snapshot, read_json_records, subtask_of, text_field, typed_answer)

JSONL = "dataset.jsonl"
# The columns every row of each published layout has; `read` checks them (no one REQUIRED_COLUMNS fits both).
JSONL_COLUMNS = ("id", "conversations", "answer", "image_urls")
MMK12_COLUMNS = ("id", "question", "answer", "image")
_INSTRUCTION = re.compile(r"<answer>|<think>|reasoning process", re.I)
_QUESTION_MARKER = re.compile(r"Question\s*[:：]\s*")


def read(path: str, subset, split: str):
    """Rows of ``dataset.jsonl`` in a local MM-Eureka snapshot; any other path (an MMK12 snapshot or hub
    id) goes through ``datasets.load_dataset`` like a hub parquet dataset. Either way the first row must
    have its layout's columns (`JSONL_COLUMNS` / `MMK12_COLUMNS`), else a ValueError names the columns found."""
    from dualtune.data.published import check_layout, read_hf_split  # imported late: the loader is the layer above

    root, where = Path(path), f"{path} [{subset or 'default'}/{split}]"
    if (root / JSONL).is_file() or path.rstrip("/").endswith("MM-Eureka-Dataset"):
        how = ("download FanqingM/MM-Eureka-Dataset, unzip K12.zip and MMPR.zip next to dataset.jsonl and set "
               "domain.path=<that directory> (see src/dualtune/data/adapters/mm_eureka.py)")
        records = read_json_records(local_snapshot(path, JSONL, how) / JSONL)
        return check_layout(records, JSONL_COLUMNS, f"{where} ({JSONL})", "mm_eureka")
    return check_layout(read_hf_split(path, subset, split), MMK12_COLUMNS, f"{where} (MMK12 layout)", "mm_eureka")


def _user_text(conversations) -> str:
    """The text of the user turn(s) of a ``conversations`` list (type-checked)."""
    if isinstance(conversations, str):
        try:
            conversations = json.loads(conversations)
        except ValueError:
            raise SkipRow("column 'conversations' is a string that holds no JSON list") from None
    if not isinstance(conversations, list) or not all(isinstance(t, dict) for t in conversations):
        raise SkipRow(f"column 'conversations' is {type(conversations).__name__}, expected a list of turns")
    parts = []
    for turn in conversations:
        if str(turn.get("role", turn.get("from", ""))).lower() not in ("user", "human"):
            continue
        content = turn.get("content", turn.get("value"))
        if isinstance(content, list):  # OpenAI-style content parts
            content = " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        if not isinstance(content, str):
            raise SkipRow(f"user turn content is {type(content).__name__}, expected a string")
        parts.append(content)
    if not parts:
        raise SkipRow("no user turn in 'conversations'")
    return "\n".join(parts)


def clean_question(text: str) -> str:
    """The question without ``<image>`` placeholders and without a leading format instruction that ends in
    a ``Question:`` marker."""
    text = text.replace("<image>", " ").strip()
    marker = _QUESTION_MARKER.search(text)
    if marker and _INSTRUCTION.search(text[:marker.start()]):
        text = text[marker.end():]
    return text.strip()


def _local_path(url: str, ctx: AdapterContext) -> str:
    """An image URL of the jsonl as a path inside the snapshot (rules in the module docstring)."""
    path = url.strip().removeprefix("file://")
    if "/report_data/" in path:
        return ctx.resolve(path.split("/report_data/", 1)[1])
    return path if Path(path).is_absolute() and Path(path).exists() else ctx.resolve(path.lstrip("/"))


def image_collection(relative: str) -> str | None:
    """The source collection of an MM-Eureka image path: ``K12``, or ``<source>`` of ``MMPR/images/<source>/``."""
    parts = Path(relative.split("/report_data/", 1)[-1].removeprefix("file://")).parts
    if "MMPR" in parts and len(parts) > parts.index("MMPR") + 3:
        return parts[parts.index("MMPR") + 2]
    return "K12" if "K12" in parts else None


def to_sample(row: dict, ctx: AdapterContext) -> dict:
    """One MM-Eureka jsonl row or MMK12 parquet row -> one schema row (rules in the module docstring)."""
    check_record(row)
    rid = text_field(row, "id")
    if "conversations" in row:
        question = clean_question(_user_text(row["conversations"]))
        urls = list_field(row, "image_urls")
        images = [{"bytes": None, "path": _local_path(u, ctx)} for u in urls]
        collections = [c for c in map(image_collection, urls) if c]
        fallback, source = (collections[0] if collections else "all"), "FanqingM/MM-Eureka-Dataset"
    elif "question" in row:
        question = clean_question(text_field(row, "question"))
        images = [image_ref(row["image"], ctx, "image")] if row.get("image") is not None else []
        fallback, source = "all", "FanqingM/MMK12"
    else:
        raise SkipRow("neither a 'conversations' (MM-Eureka jsonl) nor a 'question' (MMK12) column")
    raw_answer = text_field(row, "answer")
    question, options, answer, answer_type = typed_answer(question, raw_answer)
    meta = {"answer_raw": raw_answer}
    if fallback != "all":
        meta["collection"] = fallback
    return {"id": f"mm_eureka/{rid}", "domain": ctx.domain, "subtask": subtask_of(row, ctx, fallback=fallback),
            "images": images, "video": [], "question": question, "options": options, "answer": answer,
            "answer_type": answer_type, "cot": "", "source": source, "meta": json.dumps(meta)}
